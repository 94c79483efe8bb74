"""Uniqueness holds under concurrent enqueues (the database decides)."""

import threading

import pytest
from django.db import connection

from jobs.models import ACTIVE_STATUSES, Job
from jobs.services import job_enqueue

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_enqueues_leave_one_active_job():
    barrier = threading.Barrier(20)
    results, errors = [], []

    def enqueue():
        try:
            barrier.wait()
            job = job_enqueue("tests.record", {"key": "same", "seconds": 5, "steps": 5}, countdown=300)
            results.append((str(job.pk), job.deduplicated))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=enqueue) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 20
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(1 for _, deduplicated in results if not deduplicated) == 1
    assert Job.objects.filter(unique_key="record:same", status__in=ACTIVE_STATUSES).count() == 1
    assert Job.objects.filter(unique_key="record:same").count() == 1


def test_api_answers_409_with_the_active_job(make_user, client_for):
    staff = make_user("boss", superuser=True)
    active = job_enqueue("jobs.prune", {}, countdown=300)  # waits 5 min: still active below

    response = client_for(staff).post("/api/v1/jobs/", {"kind": "jobs.prune", "params": {}}, format="json")

    assert response.status_code == 409
    assert response.json()["id"] == str(active.pk)
    assert Job.objects.filter(kind="jobs.prune").count() == 1
