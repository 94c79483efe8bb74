"""Retention deletes old finished jobs in batches and keeps the rest."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs.models import Job, JobStatus
from jobs.retention import jobs_prune

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def make_jobs(count, status, age_days):
    finished = timezone.now() - timedelta(days=age_days)
    jobs = Job.objects.bulk_create(
        [Job(kind="jobs.sleep", queue="default", status=status, finished_at=finished) for _ in range(count)]
    )
    TaskResult.objects.bulk_create([TaskResult(task_id=str(j.pk), status="SUCCESS") for j in jobs])
    return jobs


def test_prune_deletes_old_in_batches_and_keeps_young():
    make_jobs(25, JobStatus.SUCCEEDED, age_days=30)
    make_jobs(4, JobStatus.CANCELLED, age_days=30)
    young = make_jobs(5, JobStatus.SUCCEEDED, age_days=1)
    failed_keep = make_jobs(3, JobStatus.FAILED, age_days=30)  # failures are kept longer
    make_jobs(6, JobStatus.FAILED, age_days=100)
    running = Job.objects.create(kind="jobs.sleep", queue="default", status=JobStatus.RUNNING)

    with CaptureQueriesContext(connection) as queries:
        report = jobs_prune(succeeded_days=14, failed_days=90, batch_size=7)

    assert report.jobs_deleted == 35
    remaining = set(Job.objects.values_list("pk", flat=True))
    assert remaining == {j.pk for j in young + failed_keep} | {running.pk}
    assert TaskResult.objects.count() == len(young) + len(failed_keep)
    job_deletes = [q for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "jobs_job"')]
    assert len(job_deletes) == 6  # ceil(29 / 7) + ceil(6 / 7): bounded batches, never one huge delete
