"""What a worker does with a delivery: claim and run it once, or drop it.

The task body runs in this process through Celery's tracer (`task.apply`), on
the test database, exactly as a worker process runs it after taking the message.
"""

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs.models import Job, JobStatus
from jobs.services import job_enqueue, job_enqueue_many

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def deliver(job: Job):
    """Run the job's message body as a worker would (the tests enqueue with
    publish=False, so no worker process takes the same job meanwhile)."""
    return current_app.tasks[job.kind].apply(args=[str(job.pk)], task_id=str(job.pk))


def test_a_delivery_runs_the_job_once_and_stores_its_result_row():
    job = job_enqueue("jobs.sleep", {"seconds": 0, "steps": 2}, publish=False)

    deliver(job)
    deliver(job)  # a second copy of the message (redelivery, republish)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert job.progress_done == job.progress_total == 2
    assert job.executions.count() == 1
    row = TaskResult.objects.get(task_id=str(job.pk))
    assert row.status == "SUCCESS"
    assert row.task_name == "jobs.sleep"
    assert '"steps": 2' in row.result


def test_an_expired_job_is_cancelled_not_run():
    job = job_enqueue(
        "jobs.sleep", {"seconds": 0, "steps": 1}, expires=timezone.now() - timedelta(seconds=5), publish=False
    )

    deliver(job)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.error == "Expired before it could start."
    assert job.attempts == 0 and not job.executions.exists()


def test_an_early_copy_of_a_delayed_job_waits_for_the_sweeper():
    job = job_enqueue("jobs.sleep", {"seconds": 0, "steps": 1}, countdown=300, publish=False)
    Job.objects.filter(pk=job.pk).update(published_at=timezone.now())

    deliver(job)

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.attempts == 0
    assert job.published_at is None  # the sweeper publishes it again when due


def test_a_retrying_job_runs_when_its_next_attempt_is_due():
    job = job_enqueue("jobs.sleep", {"seconds": 0, "steps": 1}, publish=False)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RETRYING, attempts=1, next_attempt_at=timezone.now())

    deliver(job)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 2


def test_enqueue_many_returns_one_job_per_parameter_set_and_respects_unique_keys():
    holder = job_enqueue("tests.record", {"key": "taken", "seconds": 0, "steps": 1}, countdown=300)
    params = [{"key": key, "seconds": 0, "steps": 1} for key in ("a", "taken", "b", "a")]

    jobs = job_enqueue_many("tests.record", params)

    assert [job.params["key"] for job in jobs] == ["a", "taken", "b", "a"]
    assert [job.deduplicated for job in jobs] == [False, True, False, True]
    assert jobs[1].pk == holder.pk
    assert jobs[3].pk == jobs[0].pk
    assert Job.objects.filter(kind="tests.record").count() == 3
    fresh = Job.objects.filter(pk__in=[jobs[0].pk, jobs[2].pk])
    assert all(job.published_at is not None for job in fresh)  # published on commit


def test_enqueue_many_rejects_the_whole_batch_on_bad_parameters():
    from jobs.errors import JobParamsInvalid

    with pytest.raises(JobParamsInvalid):
        job_enqueue_many("jobs.sleep", [{"seconds": 0}, {"seconds": "soon"}])
    assert not Job.objects.filter(kind="jobs.sleep").exists()
