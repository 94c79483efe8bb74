"""Who may see and do what through /api/v1/jobs/."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from jobs.models import Job, JobStatus
from jobs.services import job_enqueue

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_anonymous_gets_401(api_client):
    assert api_client.get("/api/v1/jobs/").status_code == 401
    assert api_client.post("/api/v1/jobs/", {"kind": "jobs.sleep"}, format="json").status_code == 401


def test_users_see_only_their_own_jobs(make_user, client_for):
    alice, bob = make_user("alice", role="operator"), make_user("bob", role="operator")
    alices = job_enqueue("jobs.prune", {}, owner=alice, countdown=300)

    as_bob = client_for(bob)
    assert as_bob.get(f"/api/v1/jobs/{alices.pk}/").status_code == 404
    assert as_bob.post(f"/api/v1/jobs/{alices.pk}/cancel/", {}, format="json").status_code == 404
    assert as_bob.get("/api/v1/jobs/").json()["results"] == []
    assert client_for(alice).get(f"/api/v1/jobs/{alices.pk}/").status_code == 200
    assert [j["id"] for j in client_for(make_user("root", superuser=True)).get("/api/v1/jobs/").json()["results"]] == [
        str(alices.pk)
    ]


def test_viewer_cannot_cancel_or_trigger(make_user, client_for):
    viewer = make_user("vic", role="viewer")
    own = job_enqueue("jobs.prune", {}, owner=viewer, countdown=300)
    client = client_for(viewer)
    assert client.post(f"/api/v1/jobs/{own.pk}/cancel/", {}, format="json").status_code == 403
    assert client.post("/api/v1/jobs/", {"kind": "jobs.sleep", "params": {}}, format="json").status_code == 403
    assert Job.objects.get(pk=own.pk).status == JobStatus.QUEUED


def test_non_staff_cancel_all_is_403(make_user, client_for):
    response = client_for(make_user("op", role="operator")).post("/api/v1/jobs/cancel-all/", {}, format="json")
    assert response.status_code == 403


def test_staff_cancel_all_of_a_kind(make_user, client_for):
    staff = make_user("lead", superuser=True)
    sleeps = [job_enqueue("jobs.sleep", {"seconds": 1, "steps": 1}, countdown=300) for _ in range(3)]
    prune = job_enqueue("jobs.prune", {}, countdown=300)
    response = client_for(staff).post("/api/v1/jobs/cancel-all/", {"kind": "jobs.sleep"}, format="json")
    assert response.json() == {"cancelled": 3}
    assert all(Job.objects.get(pk=j.pk).status == JobStatus.CANCELLED for j in sleeps)
    assert Job.objects.get(pk=prune.pk).status == JobStatus.QUEUED


def test_bad_parameters_get_field_errors(make_user, client_for):
    client = client_for(make_user("root", superuser=True))
    response = client.post(
        "/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": "lots", "steps": 0}}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["params"]) == {"seconds", "steps"}
    unknown = client.post("/api/v1/jobs/", {"kind": "nope.nothing", "params": {}}, format="json")
    assert unknown.status_code == 400 and "Unknown job kind" in unknown.json()["kind"][0]


def test_sleep_kind_is_staff_only(make_user, client_for):
    operator = make_user("op", role="operator")
    kinds = [k["name"] for k in client_for(operator).get("/api/v1/jobs/kinds/").json()]
    assert "jobs.sleep" not in kinds
    staff_kinds = {
        k["name"]: k for k in client_for(make_user("root", superuser=True)).get("/api/v1/jobs/kinds/").json()
    }
    schema = staff_kinds["jobs.sleep"]["params_schema"]
    assert schema["properties"]["steps"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10000,
        "description": "Progress reports.",
        "default": 10,
    }


def test_trigger_is_throttled(make_user, client_for, monkeypatch):
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "trigger", "3/minute")
    client = client_for(make_user("root", superuser=True))
    codes = [
        client.post("/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 0}}, format="json").status_code
        for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]


def test_retry_creates_a_linked_job_and_audits(make_user, client_for):
    operator = make_user("op", role="operator")
    failed = job_enqueue("jobs.prune", {}, owner=operator, countdown=300)
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, is_dead_letter=True, error="boom")

    response = client_for(operator).post(f"/api/v1/jobs/{failed.pk}/retry/", {"reason": "fixed"}, format="json")

    assert response.status_code == 202
    new = Job.objects.get(pk=response.json()["id"])
    assert new.retry_of_id == failed.pk and new.params == failed.params and new.status == JobStatus.QUEUED
    failed.refresh_from_db()
    assert not failed.is_dead_letter
    entry = failed.audit_entries.get(action="job.retry")
    assert (entry.actor_label, entry.source, entry.reason) == ("op", "api", "fixed")
