"""Fuzz every operation of our OpenAPI schema with schemathesis, in process, as a staff
user and as an ordinary user: whatever the generated path, query and body, the answer
is never a 5xx. Bounded (FUZZ_MAX_EXAMPLES per operation) so it runs in about a minute;
the number of requests tried is printed (run with -s to see it)."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.slow]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))


@pytest.fixture
def in_process_app(monkeypatch, settings):
    """The WSGI app, called in this test's transaction (as Django's test client does, the
    connection is not closed at the end of each request)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    for scope in list(SimpleRateThrottle.THROTTLE_RATES):
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "1000000/minute")
    settings.ALLOWED_HOSTS = ["localhost"]  # schemathesis' WSGI transport sends Host: localhost
    settings.MONITORING_WORKER_PING_TIMEOUT = 0.05
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = False  # generated hosts must not be connected to
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _schema(app) -> schemathesis.specs.openapi.schemas.OpenApiSchema:
    document = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app
    return schema


def test_no_operation_answers_a_server_error(in_process_app, make_user):
    staff = make_user("fuzz-staff", superuser=True)
    clerk = make_user("fuzz-clerk", role="ap_clerk")
    identities = {
        user.username: {"Authorization": f"Token {Token.objects.create(user=user).key}"} for user in (staff, clerk)
    }
    schema = _schema(in_process_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    tried: dict[str, int] = {}
    answers: dict[int, int] = {}
    server_errors: list[str] = []

    def fuzz(operation):
        label = f"{operation.method.upper()} {operation.path}"
        # A 5xx the operation documents is an answer, not a crash (health: 503 when a check fails).
        documented = {int(code) for code in operation.definition.raw.get("responses", {}) if str(code).isdigit()}

        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def exercise(case):
            for name, headers in identities.items():
                response = case.call(headers=headers)
                tried[label] = tried.get(label, 0) + 1
                answers[response.status_code] = answers.get(response.status_code, 0) + 1
                if response.status_code >= 500 and response.status_code not in documented:
                    server_errors.append(
                        f"{label} as {name}: {response.status_code} "
                        f"{case.formatted_path} query={case.query} body={str(case.body)[:200]}"
                    )

        exercise()

    for operation in operations:
        fuzz(operation)

    total = sum(tried.values())
    print(
        f"\nfuzz: {total} requests over {len(tried)} operations ({MAX_EXAMPLES} examples each, 2 users); "
        f"answers {dict(sorted(answers.items()))}"
    )
    assert server_errors == []
    # The requests reached the views: many were accepted, not all refused at the door.
    assert sum(n for code, n in answers.items() if 200 <= code < 300) > total // 10
    assert len(tried) == len(operations)
