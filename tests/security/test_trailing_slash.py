"""An API URL answers the same with or without its trailing slash: no 500 (APPEND_SLASH
cannot redirect a POST in DEBUG) and no redirect that drops the body (production)."""

import pytest
from django.test import override_settings

from jobs.models import Job

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.mark.parametrize("debug", [False, True])
def test_post_without_trailing_slash_triggers_the_job(make_user, client_for, debug):
    client = client_for(make_user("root", superuser=True))
    with override_settings(DEBUG=debug):
        response = client.post("/api/v1/jobs", {"kind": "jobs.prune", "params": {}}, format="json")
    assert response.status_code == 202, response.content[:300]
    assert Job.objects.filter(kind="jobs.prune").count() == 1


@pytest.mark.parametrize("debug", [False, True])
def test_token_without_trailing_slash(make_user, api_client, debug):
    make_user("alice")
    with override_settings(DEBUG=debug):
        response = api_client.post("/api/v1/auth/token", {"username": "alice", "password": "pw-alice"}, format="json")
    assert response.status_code == 200 and response.json()["token"]


def test_detail_action_and_non_router_paths_without_slash(make_user, client_for):
    root = make_user("root", superuser=True)
    client = client_for(root)
    job_id = client.post("/api/v1/jobs/", {"kind": "jobs.prune", "params": {}}, format="json").json()["id"]
    assert client.get(f"/api/v1/jobs/{job_id}").json()["id"] == job_id
    assert client.post(f"/api/v1/jobs/{job_id}/cancel", {}, format="json").status_code == 200
    assert client.get("/api/v1/monitoring/queues").status_code == 200
    # The canonical form still works, and an unknown path is still a 404, not a redirect.
    assert client.get(f"/api/v1/jobs/{job_id}/").status_code == 200
    assert client.get("/api/v1/no-such-thing").status_code == 404
