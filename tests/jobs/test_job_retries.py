"""Transient errors retry with growing delays; bad input fails at once."""

import itertools

import pytest
import redis
from django.conf import settings
from django_celery_results.models import TaskResult

from jobs.models import Job, JobStatus
from jobs.services import job_enqueue
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_transient_error_retries_with_growing_delays_then_succeeds(celery_worker):
    job = job_enqueue("tests.flaky", {"key": "net", "fail_times": 3})

    job = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).status == JobStatus.SUCCEEDED and j, timeout=30)

    assert job.attempts == 4
    assert job.result == {"calls": 4}
    assert list(job.executions.order_by("started_at").values_list("outcome", flat=True)) == [
        "retry",
        "retry",
        "retry",
        "succeeded",
    ]
    times = [float(t) for t in redis.Redis.from_url(settings.REDIS_URL).lrange("tests:flaky:net:times", 0, -1)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.5  # backoff_base
    assert gaps[0] < gaps[1] < gaps[2]


def test_retrying_job_shows_next_attempt(celery_worker):
    job = job_enqueue("tests.flaky", {"key": "slow", "fail_times": 1})
    seen = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).status == JobStatus.RETRYING and j, interval=0.02)
    assert seen.next_attempt_at is not None
    assert "ConnectionError: simulated network error 1" in seen.error
    assert "attempt 1 of 5" in seen.error


def test_bad_input_fails_at_once_without_retry(celery_worker):
    job = job_enqueue("tests.bad_input", {"key": "x"})

    job = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).status == JobStatus.FAILED and j, timeout=20)

    assert job.attempts == 1
    assert job.error == "ValueError: The invoice total is not a number: 'abc'"
    assert job.is_dead_letter
    assert "Traceback" in job.traceback
    assert int(redis.Redis.from_url(settings.REDIS_URL).get("tests:bad:x")) == 1
    # The job page links to the django-celery-results row, which Celery writes for failures.
    row = wait_for(lambda: TaskResult.objects.filter(task_id=str(job.pk)).first(), timeout=10)
    assert row.status == "FAILURE"
    assert "The invoice total is not a number" in row.result
