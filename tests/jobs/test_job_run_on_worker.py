"""A job triggered through the API runs on a real worker process."""

import pytest

from jobs.models import Job, JobStatus
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_sleep_job_runs_on_worker_and_shows_progress(celery_worker, make_user, client_for):
    staff = make_user("ops", staff=True, role="operator")
    client = client_for(staff)

    response = client.post("/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 3, "steps": 6}}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"

    # Progress is visible through the API while the job runs.
    def running_with_progress():
        data = client.get(f"/api/v1/jobs/{job_id}/").json()
        return data if data["status"] == "running" and 0 < data["progress"]["done"] < 6 else None

    seen = wait_for(running_with_progress, timeout=20)
    assert seen["progress"]["total"] == 6
    assert seen["worker"] == celery_worker.hostname

    final = wait_for(lambda: (d := client.get(f"/api/v1/jobs/{job_id}/").json())["status"] == "succeeded" and d)
    assert final["result"]["steps"] == 6
    assert final["result"]["slept_seconds"] >= 3
    assert final["attempts"] == 1
    assert final["progress"] == {"done": 6, "total": 6, "percent": 100}
    assert final["actual_duration"] >= 3
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert list(job.executions.values_list("outcome", flat=True)) == ["succeeded"]
