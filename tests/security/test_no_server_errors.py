"""Hostile input answers a JSON 4xx, never a 500 or an HTML error page."""

import base64
from urllib.parse import quote

import pytest

from jobs.models import Job

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def _forged_cursor(text: str) -> str:
    return quote(base64.b64encode(text.encode()).decode())


def _assert_json_4xx(response, expected: int):
    assert response.status_code == expected, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert response.json()


def test_deeply_nested_json_at_the_token_endpoint_is_a_400(api_client):
    body = "[" * 100_000 + "]" * 100_000
    response = api_client.post("/api/v1/auth/token/", body, content_type="application/json")
    _assert_json_4xx(response, 400)
    nested_object = '{"username":' * 50_000 + '"x"' + "}" * 50_000
    _assert_json_4xx(api_client.post("/api/v1/auth/token/", nested_object, content_type="application/json"), 400)


def test_deeply_nested_json_from_a_user_is_a_400(make_user, client_for):
    client = client_for(make_user("root", superuser=True))
    body = '{"kind": "jobs.prune", "params": ' + '{"a":' * 50_000 + "1" + "}" * 50_001
    _assert_json_4xx(client.post("/api/v1/jobs/", body, content_type="application/json"), 400)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["/api/v1/jobs/", "/api/v1/monitoring/alerts/", "/api/v1/monitoring/scans/", "/api/v1/monitoring/violations/"],
)
@pytest.mark.parametrize(
    "cursor", ["p=not-a-date", "p=2026-13-45T99:99:99", "o=5&p=" + "9" * 400, "r=1&p=%00", "p=" + "x" * 5000]
)
def test_a_forged_cursor_is_a_404_not_a_500(make_user, client_for, url, cursor):
    client = client_for(make_user("root", superuser=True))
    response = client.get(f"{url}?cursor={_forged_cursor(cursor)}")
    assert response.status_code in (400, 404), (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")


def test_unknown_kind_in_the_admin_run_page_is_a_404(make_user, client):
    client.force_login(make_user("root", superuser=True))
    response = client.get("/admin/jobs/job/run/?kind=nope.nothing")
    assert response.status_code == 404
    response = client.post("/admin/jobs/job/run/", {"kind": "x" * 10_000})
    assert response.status_code == 404


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_limit_is_a_json_413(make_user, client_for, content_type):
    client = client_for(make_user("root", superuser=True))
    if content_type == "application/json":
        body = '{"kind": "jobs.prune", "params": {}, "reason": "' + "x" * (6 * 1024 * 1024) + '"}'
    else:
        body = "kind=jobs.prune&reason=" + "x" * (6 * 1024 * 1024)
    response = client.post("/api/v1/jobs/", body, content_type=content_type)
    _assert_json_4xx(response, 413)
    assert "MiB" in response.json()["detail"] and response.json()["code"] == "too_large"
    assert not Job.objects.exists()


def test_a_body_over_the_limit_is_a_json_413_for_anonymous_clients_too(api_client):
    body = '{"username": "' + "x" * (6 * 1024 * 1024) + '", "password": "y"}'
    _assert_json_4xx(api_client.post("/api/v1/auth/token/", body, content_type="application/json"), 413)


@pytest.mark.parametrize("url", ["/api/v1/jobs/", "/api/v1/invoices/"])
@pytest.mark.parametrize("value", ["0257-04-02T05:06:02+17:31", "0001-01-01T00:00:00+05:00"])
def test_a_date_filter_with_an_offset_postgresql_refuses_is_not_a_500(make_user, client_for, url, value):
    # Found by tests/security/test_fuzz_api.py: PostgreSQL refuses offsets beyond +-15:59.
    client = client_for(make_user("root", superuser=True))
    response = client.get(url, {"created_after": value})
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])
    assert client.get(url, {"created_after": "2026-01-01T00:00:00+02:00"}).status_code == 200
