"""Cancel: a queued job never starts; a running one stops at its next progress
call; staff can terminate a stuck one."""

import time

import pytest

from jobs.models import Job, JobStatus
from jobs.services import job_enqueue
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator(make_user):
    return make_user("operator1", staff=True, role="operator")


def test_cancelled_queued_job_never_starts(celery_worker, operator, client_for):
    # The message is in the broker (held by the worker until its countdown ends).
    job = job_enqueue("jobs.sleep", {"seconds": 0.1, "steps": 1}, owner=operator, countdown=2)
    wait_for(lambda: Job.objects.get(pk=job.pk).published_at, what="published")

    response = client_for(operator).post(f"/api/v1/jobs/{job.pk}/cancel/", {"reason": "not needed"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    time.sleep(4)  # well past the countdown: the worker received the message and dropped it
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.started_at is None and job.attempts == 0
    assert not job.executions.exists()
    assert job.audit_entries.get().reason == "not needed"


def test_cancel_running_job_stops_at_next_progress(celery_worker, operator, client_for):
    client = client_for(operator)
    job_id = client.post(
        "/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 30, "steps": 300}}, format="json"
    ).json()["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).progress_done > 0, what="running with progress")

    asked_at = time.monotonic()
    response = client.post(f"/api/v1/jobs/{job_id}/cancel/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True

    job = wait_for(lambda: (j := Job.objects.get(pk=job_id)).status == JobStatus.CANCELLED and j, timeout=10)
    # one progress interval (1 s write throttle + a 0.1 s step) plus polling slack
    assert time.monotonic() - asked_at < 3
    assert job.progress_done < 300
    assert "Cancelled while running" in job.error
    assert list(job.executions.values_list("outcome", flat=True)) == ["cancelled"]


def test_staff_terminates_a_stuck_job(celery_worker, operator, client_for):
    client = client_for(operator)
    # One slice of 60 s: no progress call, so a plain cancel would not stop it.
    job_id = client.post(
        "/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 60, "steps": 1}}, format="json"
    ).json()["id"]
    running = wait_for(lambda: (j := Job.objects.get(pk=job_id)).status == JobStatus.RUNNING and j)
    pool_pid = running.worker_pid
    assert pool_pid in celery_worker.child_pids()

    response = client.post(f"/api/v1/jobs/{job_id}/cancel/", {"terminate": True}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    wait_for(lambda: pool_pid not in celery_worker.child_pids(), timeout=10, what="pool process killed")
    time.sleep(1)
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELLED  # a redelivery did not revive it
    # The worker lives on and serves the next job.
    next_id = client.post(
        "/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 0.1, "steps": 1}}, format="json"
    ).json()["id"]
    wait_for(lambda: Job.objects.get(pk=next_id).status == JobStatus.SUCCEEDED, timeout=20)


def test_terminate_is_staff_only(make_user, client_for):
    owner = make_user("clerk", role="operator")
    job = job_enqueue("jobs.sleep", {"seconds": 1, "steps": 1}, owner=owner, countdown=60)
    response = client_for(owner).post(f"/api/v1/jobs/{job.pk}/cancel/", {"terminate": True}, format="json")
    assert response.status_code == 403
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED
