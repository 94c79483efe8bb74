"""The sweeper: makes sure no job is lost, whatever happened to a worker or the broker.

Runs every 30 s (beat) and:
1. re-runs jobs whose worker stopped sending heartbeats (killed, out of
   memory, machine gone), whatever their attempt limit, until a job has lost
   JOB_MAX_LOST_RUNS runs (a poison pill: then it is a dead letter);
2. publishes jobs whose message never reached the broker (it was down), and
   delayed jobs that are now due;
3. republishes queued jobs whose message vanished (a Redis restarted without
   persistence) when their queue is empty;
4. ends queued jobs that expired before they could start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.broker import queue_length, unacked_task_ids
from jobs.kinds import get_kind
from jobs.models import Job, JobExecution, JobStatus
from jobs.services import job_publish, job_publish_many

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    recovered: int = 0
    failed_lost: int = 0
    published: int = 0
    republished: int = 0
    expired: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def jobs_sweep(*, queue_lengths=None) -> SweepReport:
    """One pass of the sweeper. `queue_lengths(queue) -> int` reads the broker."""
    report = SweepReport()
    now = timezone.now()
    _recover_lost(now, report)
    _expire(now, report)
    _publish_due(now, report)
    _republish_vanished(now, report, queue_lengths or broker_queue_length)
    if any(report.as_dict().values()):
        logger.info("Sweeper: %s", report.as_dict())
    return report


def _recover_lost(now, report: SweepReport) -> None:
    stale_before = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before).iterator():
        with transaction.atomic():
            _recover_one(job, now, report)


def _recover_one(job: Job, now, report: SweepReport) -> None:
    """Run the job again, or fail it (over its hard time limit, or a poison pill
    that killed its worker JOB_MAX_LOST_RUNS times); record the lost run.

    Losing the worker is not the job's fault, so max_attempts does not apply.
    """
    owned = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, claim_token=job.claim_token)
    kind_limit = _hard_time_limit(job)
    ran_for = (now - job.started_at).total_seconds() if job.started_at else 0
    lost_runs = job.lost_runs + 1
    lost = f"The worker {job.worker or '?'} running attempt {job.attempts} stopped responding."

    def dead_letter(error: str) -> int:
        return owned.update(
            status=JobStatus.FAILED,
            claim_token=None,
            finished_at=now,
            is_dead_letter=True,
            lost_runs=lost_runs,
            error=error,
        )

    if kind_limit and ran_for > kind_limit:
        changed = dead_letter(f"Killed: the job ran longer than its hard time limit of {kind_limit} s.")
        report.failed_lost += changed
    elif lost_runs < _lost_runs_limit(job):
        changed = owned.update(
            status=JobStatus.RETRYING,
            claim_token=None,
            next_attempt_at=now,
            lost_runs=lost_runs,
            published_at=None,
            error=f"{lost} Running it again.",
        )
        report.recovered += changed
    else:
        times = f"{lost_runs} time" + ("" if lost_runs == 1 else "s")
        changed = dead_letter(f"{lost} Gave up: the job killed its worker {times}.")
        report.failed_lost += changed
        if changed:
            logger.error("Job %s (%s) is a dead letter: it killed its worker %s", job.pk, job.kind, times)
    if changed:
        _record_lost_execution(job, now)


def _record_lost_execution(job: Job, now) -> None:
    JobExecution.objects.create(
        job=job,
        attempt=job.attempts,
        worker=job.worker,
        worker_pid=job.worker_pid,
        started_at=job.started_at or now,
        finished_at=job.heartbeat_at or now,
        outcome=JobExecution.Outcome.WORKER_LOST,
        error="No heartbeat from the worker.",
    )


def _lost_runs_limit(job: Job) -> int:
    try:
        return get_kind(job.kind).lost_runs_limit()
    except Exception:  # a kind no longer registered
        return settings.JOB_MAX_LOST_RUNS


def _hard_time_limit(job: Job) -> int | None:
    try:
        return get_kind(job.kind).time_limit
    except Exception:
        return None


def _expire(now, report: SweepReport) -> None:
    report.expired += Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RETRYING], expires_at__lt=now).update(
        status=JobStatus.CANCELLED, finished_at=now, error="Expired before it could start."
    )


def _publish_due(now, report: SweepReport) -> None:
    horizon = now + timedelta(seconds=settings.JOB_MAX_BROKER_COUNTDOWN)
    due = Job.objects.filter(published_at__isnull=True).filter(
        Q(status=JobStatus.QUEUED, not_before__isnull=True)
        | Q(status=JobStatus.QUEUED, not_before__lte=horizon)
        | Q(status=JobStatus.RETRYING, next_attempt_at__lte=horizon)
    )
    # One broker connection for the batch; it stops at the first failure (broker still down).
    report.published += job_publish_many(jobs=due.order_by("priority", "created_at")[:5000].iterator())


def _republish_vanished(now, report: SweepReport, queue_lengths) -> None:
    waited_since = now - timedelta(seconds=settings.JOB_QUEUED_REPUBLISH_AFTER_SECONDS)
    candidates = Job.objects.filter(status=JobStatus.QUEUED, published_at__lt=waited_since).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    )
    empty_queues: dict[str, bool] = {}
    for job in candidates.order_by("created_at")[:1000].iterator():
        if job.queue not in empty_queues:
            try:
                empty_queues[job.queue] = queue_lengths(job.queue) == 0
            except Exception as exc:
                logger.warning("Sweeper cannot read queue %s: %s", job.queue, exc)
                return
        # Messages are waiting (or reserved by a busy worker): this job's may be
        # among them. An empty queue with an old queued job means it was lost.
        if empty_queues[job.queue] and _nobody_reserved(job) and job_publish(job=job):
            report.republished += 1


def _nobody_reserved(job: Job) -> bool:
    """True unless a worker holds this message unacked (prefetched or delayed)."""
    try:
        return str(job.pk) not in unacked_task_ids()
    except Exception:
        return False


def broker_queue_length(queue: str) -> int:
    return queue_length(queue)
