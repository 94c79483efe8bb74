"""Shared fixtures: real services, real worker processes, users of each role.

PostgreSQL and Redis are required when REQUIRE_SERVICES=1 (CI): a missing
service fails the run instead of skipping tests.
"""

from __future__ import annotations

import os
import socket

import pytest
import redis
from django.conf import settings

from tests.support.workers import WorkerProcess

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _redis_problem() -> str | None:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis at {settings.REDIS_URL} does not answer ({exc})"
    return None


def _database_problem() -> str | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return None
    try:
        socket.create_connection((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)), timeout=1).close()
    except OSError as exc:
        return f"The database at {db.get('HOST')}:{db.get('PORT')} does not answer ({exc})"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = [p for p in (_redis_problem(), _database_problem()) if p]
    if problems and REQUIRE_SERVICES:
        pytest.exit("REQUIRE_SERVICES=1 and a service is missing: " + "; ".join(problems), returncode=1)
    session.config.service_problems = problems
    if not problems:
        # Messages left by an earlier run would be delivered to this run's workers.
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = getattr(config, "service_problems", [])
    if not problems:
        return
    skip = pytest.mark.skip(reason="; ".join(problems))
    for item in items:
        if "services" in item.keywords or "worker" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """SQLite only: make its folder, and remove a previous run's test database and its
    WAL files, which a killed worker may have left behind (a fresh file beside an old
    WAL is an I/O error)."""
    from pathlib import Path

    test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and test_name:
        Path(test_name).parent.mkdir(parents=True, exist_ok=True)  # var/ is not in a fresh clone
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{test_name}{suffix}").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (throttles, cached medians)."""
    from django.core.cache import cache

    from jobs import selectors

    cache.clear()
    selectors._local_medians.clear()
    yield


@pytest.fixture(autouse=True)
def _broker_not_marked_down():
    """A test that froze or stopped a broker must not keep the next test from publishing."""
    from jobs import services

    services._broker_down_until = 0.0
    yield


@pytest.fixture(scope="session")
def _session_worker(django_db_setup, django_db_blocker):
    """The shared worker process (started on first use, stopped at the end)."""
    worker = WorkerProcess(name="session", concurrency=2, env={"JOB_HEARTBEAT_SECONDS": "1"})
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker(_session_worker):
    """One real `celery worker` process on every queue, shared by the session.

    Tests that use it must use `transactional_db`, so that the rows they
    write are committed and visible to the worker.
    """
    if _session_worker.process is None or _session_worker.process.poll() is not None:
        _session_worker.start()
    return _session_worker


@pytest.fixture
def no_session_worker(request):
    """For tests that must control which worker gets a job: the shared worker (if
    running) is stopped for the test. It is started again by the next test that
    asks for it, not here: restarting it now would let it pick up this test's
    leftover messages while the database is being flushed."""
    shared = request.getfixturevalue("_session_worker")
    shared.stop()
    broker_url = settings.CELERY_BROKER_URL  # before a test points it at a broker of its own
    yield
    # Nothing consumes the shared broker now: drop what this test left queued.
    redis.Redis.from_url(broker_url).flushdb()


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, role: str | None = None, staff: bool = False, superuser: bool = False):
        from django.contrib.auth.models import Group

        from core.roles import ensure_roles

        ensure_roles()  # transactional tests flush the groups the migration made
        user = django_user_model.objects.create_user(
            username=username, password="pw-" + username, is_staff=staff or superuser, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(api_client):
    """An API client logged in (by token) as the given user."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def login(user):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return login
