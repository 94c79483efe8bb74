"""Free text and numeric parameters have a maximum: a `reason` of 10,000 characters or a
retention of a billion days answers 400 with the field, instead of filling the audit log
or overflowing a date in the worker."""

import pytest

from jobs.models import Job

pytestmark = [pytest.mark.services, pytest.mark.django_db]

LONG = "x" * 10_000


@pytest.fixture
def staff_client(make_user, client_for):
    return client_for(make_user("root", superuser=True))


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("jobs.prune", {"succeeded_days": 10**9}, "succeeded_days"),
        ("jobs.prune", {"failed_days": 10**12}, "failed_days"),
        ("monitoring.cleanup_temp_files", {"older_than_hours": 10**12}, "older_than_hours"),
    ],
)
def test_prune_and_cleanup_parameters_have_a_maximum(staff_client, kind, params, field):
    response = staff_client.post("/api/v1/jobs/", {"kind": kind, "params": params}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["params"]
    assert not Job.objects.exists()


def test_reason_fields_have_a_maximum_length(staff_client):
    trigger = staff_client.post("/api/v1/jobs/", {"kind": "jobs.prune", "params": {}, "reason": LONG}, format="json")
    assert trigger.status_code == 400 and "reason" in trigger.json()
    assert not Job.objects.exists()
    job_id = staff_client.post("/api/v1/jobs/", {"kind": "jobs.prune", "params": {}}, format="json").json()["id"]
    cancel = staff_client.post(f"/api/v1/jobs/{job_id}/cancel/", {"reason": LONG}, format="json")
    assert cancel.status_code == 400 and "reason" in cancel.json()
    assert Job.objects.get(pk=job_id).status == "queued"
    scan = staff_client.post("/api/v1/monitoring/scan/", {"reason": LONG}, format="json")
    assert scan.status_code == 400 and "reason" in scan.json()


def test_the_admin_run_form_limits_the_reason(make_user, client):
    client.force_login(make_user("root", superuser=True))
    response = client.post("/admin/jobs/job/run/", {"kind": "jobs.prune", "reason": LONG})
    assert response.status_code == 200 and b"at most 500 characters" in response.content
    assert not Job.objects.exists()
