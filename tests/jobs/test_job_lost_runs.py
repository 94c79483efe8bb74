"""Worker loss is not the job's fault: a job whose worker died runs again whatever
its max_attempts, up to the poison-pill limit JOB_MAX_LOST_RUNS (issue 11, item 6)."""

import os
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobExecution, JobStatus
from jobs.services import job_enqueue
from jobs.sweeper import jobs_sweep
from tests.jobs.test_job_crash_recovery import FAST_HEARTBEAT, pid_alive, sweep_until
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

LOST = JobExecution.Outcome.WORKER_LOST


@pytest.fixture
def fast_sweeper(settings):
    settings.JOB_STALE_AFTER_SECONDS = 4


def running_in_new_process(job, *, not_pid=None):
    return wait_for(
        lambda: (j := Job.objects.get(pk=job.pk)).status == JobStatus.RUNNING and j.worker_pid != not_pid and j,
        timeout=60,
        what="job running",
    )


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_job_with_one_attempt_runs_again(no_session_worker, fast_sweeper):
    worker = WorkerProcess(name="lost-once", concurrency=1, env=FAST_HEARTBEAT).start()
    try:
        job = job_enqueue("jobs.sleep", {"seconds": 3, "steps": 6})
        assert job.max_attempts == 1
        running = running_in_new_process(job)
        os.kill(running.worker_pid, 9)  # SIGKILL the pool process, as the OOM killer would
        wait_for(lambda: not pid_alive(running.worker_pid), timeout=10)
        sweep_until(lambda: Job.objects.get(pk=job.pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 90)
    finally:
        worker.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.lost_runs == 1
    assert not job.is_dead_letter
    outcomes = list(job.executions.order_by("started_at").values_list("outcome", flat=True))
    assert outcomes == [LOST, JobExecution.Outcome.SUCCEEDED]


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_job_that_keeps_killing_its_worker_becomes_a_dead_letter(no_session_worker, fast_sweeper, settings):
    settings.JOB_MAX_LOST_RUNS = 2
    worker = WorkerProcess(name="poison", concurrency=1, env=FAST_HEARTBEAT).start()
    killed = []
    try:
        job = job_enqueue("jobs.sleep", {"seconds": 60, "steps": 60})
        for lost in (1, 2):
            running = running_in_new_process(job, not_pid=killed[-1] if killed else None)
            os.kill(running.worker_pid, 9)
            killed.append(running.worker_pid)
            # The re-run may be claimed at once, so wait for the count, not for a status.
            sweep_until(lambda n=lost: Job.objects.get(pk=job.pk).lost_runs == n, 60)
    finally:
        worker.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.is_dead_letter
    assert "killed its worker 2 times" in job.error
    assert job.lost_runs == 2
    executions = list(job.executions.order_by("started_at"))
    assert [e.outcome for e in executions] == [LOST, LOST]
    assert [e.worker_pid for e in executions] == killed


def stale_running_job(kind, params, *, lost_runs=0, attempts=1):
    job = job_enqueue(kind, params, publish=False)
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        claim_token=uuid.uuid4(),
        attempts=attempts,
        lost_runs=lost_runs,
        started_at=long_ago,
        heartbeat_at=long_ago,
        worker="gone@host",
        worker_pid=4242,
    )
    return job


@pytest.mark.django_db
def test_poison_pill_limit_defaults_to_three_and_is_overridable_per_kind(settings):
    assert settings.JOB_MAX_LOST_RUNS == 3
    settings.JOB_STALE_AFTER_SECONDS = 5
    default_kind = stale_running_job("jobs.sleep", {"seconds": 1}, lost_runs=1, attempts=2)
    strict_kind = stale_running_job("tests.fragile", {"key": "a"})

    report = jobs_sweep()

    assert report.recovered == 1 and report.failed_lost == 1
    default_kind.refresh_from_db()
    assert default_kind.status == JobStatus.RETRYING and default_kind.lost_runs == 2  # 2 of 3: runs again
    strict_kind.refresh_from_db()
    assert strict_kind.status == JobStatus.FAILED and strict_kind.is_dead_letter
    assert strict_kind.error.endswith("killed its worker 1 time.")
    assert strict_kind.executions.get().outcome == LOST
