"""/health/ for load balancers (public, no details) and the authenticated API (one entry per check)."""

from __future__ import annotations

import pytest
from django.test import Client

from monitoring.tasks import beat_heartbeat

CHECKS = ["database", "migrations", "broker", "cache", "storage", "disk", "workers", "beat"]


@pytest.mark.django_db
def test_public_health_page_shows_only_check_names_and_verdicts(settings):
    settings.SECRET_KEY = "a-very-secret-key-for-this-test-only"
    response = Client().get("/health/?format=json")
    body = response.json()
    assert response.status_code == 503  # no worker and no beat heartbeat in this test
    assert body["status"] == "error"
    assert list(body["checks"]) == CHECKS
    assert set(body["checks"].values()) <= {"ok", "error"}
    assert body["checks"]["workers"] == "error" and body["checks"]["database"] == "ok"
    text = response.content.decode()
    for secret_looking in ("redis://", "postgres", "127.0.0.1", settings.SECRET_KEY, "Traceback"):
        assert secret_looking not in text


@pytest.mark.django_db
def test_public_health_page_is_html_for_browsers_and_never_cached():
    response = Client().get("/health/", HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("text/html")
    assert "unhealthy" in response.content.decode()
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert "No Celery worker" not in response.content.decode()  # error details are for logged-in users


@pytest.mark.django_db
def test_health_api_needs_login(api_client):
    assert api_client.get("/api/v1/monitoring/health/").status_code == 401


@pytest.mark.django_db
def test_health_api_lists_every_check_with_its_error_and_answers_503(make_user, client_for):
    client = client_for(make_user("viewer-1", role="viewer"))
    response = client.get("/api/v1/monitoring/health/")
    assert response.status_code == 503
    body = response.json()
    assert [check["name"] for check in body["checks"]] == CHECKS
    failing = {check["name"]: check["error"] for check in body["checks"] if not check["ok"]}
    assert set(failing) == {"workers", "beat"}
    assert failing["beat"].startswith("No beat heartbeat recorded yet")


@pytest.mark.worker
@pytest.mark.services
@pytest.mark.django_db
def test_health_api_answers_200_when_everything_is_up(celery_worker, make_user, client_for):
    beat_heartbeat()
    client = client_for(make_user("staff-1", staff=True))
    response = client.get("/api/v1/monitoring/health/")
    assert response.status_code == 200, response.json()
    assert response.json()["healthy"] is True
    assert Client().get("/health/?format=json").json() == {"status": "ok", "checks": dict.fromkeys(CHECKS, "ok")}
