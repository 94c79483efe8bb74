"""A job whose worker is SIGKILLed is run again within the bound, never twice at once."""

import itertools
import os
import time

import pytest
import redis
from django.conf import settings

from jobs.models import Job, JobExecution, JobStatus
from jobs.services import job_enqueue
from jobs.sweeper import jobs_sweep
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The bound the issue sets; the test settings below make recovery much faster.
RECOVERY_BOUND_SECONDS = 120
FAST_HEARTBEAT = {"JOB_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
def fast_sweeper(settings):
    settings.JOB_STALE_AFTER_SECONDS = 5


def sweep_until(predicate, timeout):
    """Run the sweeper every second, as beat does every 30 s, until predicate holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs_sweep()
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError("not recovered in time")


def marks(key):
    rows = redis.Redis.from_url(settings.REDIS_URL).lrange(f"tests:record:{key}", 0, -1)
    return [row.decode().split() for row in rows]


def assert_never_concurrent(job):
    executions = list(job.executions.order_by("started_at"))
    for earlier, later in itertools.pairwise(executions):
        assert later.started_at >= earlier.finished_at, (earlier, later)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("what_dies", ["pool process", "whole worker"])
def test_job_survives_a_killed_worker(no_session_worker, fast_sweeper, what_dies):
    key = what_dies.replace(" ", "-")
    first = WorkerProcess(name="doomed", concurrency=1, env=FAST_HEARTBEAT).start()
    job = job_enqueue("tests.record", {"key": key, "seconds": 4, "steps": 8})
    running = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).status == JobStatus.RUNNING and j)
    killed_pid = running.worker_pid

    if what_dies == "pool process":
        os.kill(killed_pid, 9)  # the main process survives and requeues the message
        survivor = first
    else:
        first.kill()
        survivor = WorkerProcess(name="survivor", concurrency=1, env=FAST_HEARTBEAT).start()
    killed_at = time.monotonic()
    try:
        sweep_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, timeout=RECOVERY_BOUND_SECONDS)
        recovered_in = time.monotonic() - killed_at
    finally:
        survivor.stop()
        first.stop()

    job.refresh_from_db()
    assert recovered_in < RECOVERY_BOUND_SECONDS
    assert job.attempts == 2
    outcomes = list(job.executions.order_by("started_at").values_list("outcome", flat=True))
    assert outcomes == [JobExecution.Outcome.WORKER_LOST, JobExecution.Outcome.SUCCEEDED]
    assert_never_concurrent(job)
    # The body's own marks: the first run never ended, the second started after it died.
    recorded = marks(key)
    assert [m[0] for m in recorded] == ["start", "start", "end"]
    assert int(recorded[0][1]) == killed_pid and not pid_alive(killed_pid)
    assert int(recorded[1][1]) == int(recorded[2][1]) != killed_pid
