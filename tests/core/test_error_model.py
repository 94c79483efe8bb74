"""One error model: services raise core.errors; one handler answers with one shape;
the admin shows the same message."""

import pytest
from django.contrib.messages import get_messages

from jobs.models import JobStatus
from jobs.services import job_enqueue

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_a_conflict_carries_the_active_job_next_to_detail_and_code(make_user, client_for):
    client = client_for(make_user("root", superuser=True))
    first = client.post("/api/v1/jobs/", {"kind": "jobs.prune", "params": {}}, format="json")
    again = client.post("/api/v1/jobs/", {"kind": "jobs.prune", "params": {}}, format="json")
    assert (first.status_code, again.status_code) == (202, 409)
    body = again.json()
    assert body["code"] == "conflict" and body["id"] == first.json()["id"]
    assert body["detail"] == "A job for this is already queued or running."
    assert body["status"] == "queued" and body["kind"] == "jobs.prune"


def test_invalid_input_has_detail_code_and_field_errors(make_user, client_for):
    client = client_for(make_user("root", superuser=True))
    params = client.post("/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": "x"}}, format="json").json()
    assert params["code"] == "invalid" and "seconds" in params["params"] and params["detail"]
    kind = client.post("/api/v1/jobs/", {"kind": "nope", "params": {}}, format="json").json()
    assert kind == {"detail": "Unknown job kind 'nope'.", "code": "invalid", "kind": ["Unknown job kind 'nope'."]}
    serializer = client.post("/api/v1/jobs/", {"params": {}}, format="json").json()
    assert serializer["code"] == "invalid" and serializer["detail"] == "Invalid input." and "kind" in serializer


def test_not_allowed_and_not_found_share_the_shape(make_user, client_for):
    viewer = make_user("vic", role="viewer")
    own = job_enqueue("jobs.prune", {}, owner=viewer, countdown=300)
    client = client_for(viewer)
    refused = client.post(f"/api/v1/jobs/{own.pk}/cancel/", {}, format="json")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "You do not have permission to do that.", "code": "not_allowed"}
    missing = client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_the_admin_shows_the_message_the_api_answers_with(make_user, client_for, client):
    root = make_user("root", superuser=True)
    finished = job_enqueue("jobs.prune", {}, countdown=300)
    finished.__class__.objects.filter(pk=finished.pk).update(status=JobStatus.SUCCEEDED)
    api = client_for(root).post(f"/api/v1/jobs/{finished.pk}/cancel/", {}, format="json")
    assert api.status_code == 409 and api.json() == {"detail": "The job is already succeeded.", "code": "conflict"}

    client.force_login(root)
    response = client.post(f"/admin/jobs/job/{finished.pk}/cancel/", {"reason": ""})
    assert api.json()["detail"] in [str(m) for m in get_messages(response.wsgi_request)]
