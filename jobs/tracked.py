"""Running a tracked job on a worker: claim, heartbeat, progress, outcome.

The Job row is the truth. A worker runs a job's body only after claiming it
with a conditional update (queued/retrying -> running), so a second delivery
of the same message (Redis visibility timeout, reject-on-worker-lost, a
sweeper republish) finds it claimed or finished and is dropped.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import threading
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any

from celery import Task
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, F, Field, When
from django.utils import timezone

from core.models import TriggerSource
from jobs.durability import commit_without_waiting_for_disk, relaxed_from
from jobs.errors import JobCancelled, JobLost, JobParamsInvalid
from jobs.kinds import JobKind, get_kind
from jobs.models import Job, JobExecution, JobStatus
from jobs.results import RESULT_COLUMNS, UPDATED_COLUMNS, store_success_row, success_row
from jobs.services import job_enqueue, job_publish
from jobs.worker_health import database_unavailable

logger = logging.getLogger(__name__)


class TrackedTask(Task):
    """Celery task class of every job kind.

    Calling `apply_async`/`delay` on it from code or from beat goes through
    job_enqueue, so scheduled runs are Job rows from the moment they are sent.
    """

    def apply_async(
        self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None, shadow=None, **options
    ):
        if args:
            raise TypeError(f"{self.name} takes keyword parameters only (its job parameters), got {args!r}.")
        headers = options.get("headers") or {}
        schedule_name = headers.get("periodic_task_name") or options.get("periodic_task_name") or ""
        job = job_enqueue(
            self.name,
            kwargs or {},
            source=TriggerSource.SCHEDULE if schedule_name else TriggerSource.SYSTEM,
            schedule_name=schedule_name,
            priority=options.get("priority"),
            countdown=options.get("countdown"),
            eta=options.get("eta"),
            expires=options.get("expires"),
        )
        return self.AsyncResult(str(job.pk))


class JobContext:
    """Handed to a job's function: progress reporting and cancellation."""

    def __init__(self, job: Job, token: uuid.UUID, kind: JobKind):
        self.job = job
        self.token = token
        self.kind = kind
        self._last_write = 0.0

    @property
    def id(self) -> str:
        return str(self.job.pk)

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Report progress; raises JobCancelled here once a cancel was requested.

        Writes are throttled to one per JOB_PROGRESS_WRITE_INTERVAL seconds
        (always written when done reaches total).
        """
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last_write < settings.JOB_PROGRESS_WRITE_INTERVAL:
            return
        self._last_write = now
        fields: dict[str, Any] = {"progress_done": max(0, int(done)), "heartbeat_at": timezone.now()}
        if total is not None:
            fields["progress_total"] = max(0, int(total))
        if message is not None:
            fields["progress_message"] = str(message)[:300]
        with commit_without_waiting_for_disk():
            updated = Job.objects.filter(
                pk=self.job.pk, claim_token=self.token, cancel_requested_at__isnull=True
            ).update(**fields)
        if not updated:
            self._raise_why_not()

    def check_cancelled(self) -> None:
        """Raise JobCancelled if a cancel was requested (for loops without progress)."""
        state = Job.objects.filter(pk=self.job.pk).values("claim_token", "cancel_requested_at").first()
        if state is None or state["claim_token"] != self.token or state["cancel_requested_at"]:
            self._raise_why_not()

    def _raise_why_not(self) -> None:
        state = Job.objects.filter(pk=self.job.pk).values("claim_token", "cancel_requested_at").first()
        if state is None:
            raise JobLost("The job row was deleted.")
        if state["cancel_requested_at"]:
            raise JobCancelled("Cancel requested")
        raise JobLost("Another worker took this job over.")


class _Heartbeat:
    """One thread per worker process that keeps `heartbeat_at` fresh for the
    jobs this process runs, so the sweeper can tell a slow job from a dead worker."""

    def __init__(self) -> None:
        self._running: dict[uuid.UUID, uuid.UUID] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def add(self, job_id, token) -> None:
        with self._lock:
            self._running[job_id] = token
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="job-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, job_id) -> None:
        with self._lock:
            self._running.pop(job_id, None)

    def _loop(self) -> None:
        while True:
            time.sleep(settings.JOB_HEARTBEAT_SECONDS)
            with self._lock:
                running = list(self._running.items())
            if not running:
                continue
            try:
                now = timezone.now()
                with commit_without_waiting_for_disk():
                    for job_id, token in running:
                        Job.objects.filter(pk=job_id, claim_token=token).update(heartbeat_at=now)
            except Exception:  # the heartbeat must never kill the worker
                logger.exception("Job heartbeat failed")
            finally:
                # One beat every few seconds: no idle connection held between beats.
                connection.close()


heartbeat = _Heartbeat()


def run_tracked_job(*, task: Task, job_id: str | None, params: dict) -> Any:
    """Body of every tracked Celery task: claim the job, run it, record the outcome."""
    if job_id is None:
        adopted = _adopt(task, params)
        job_id = str(adopted.pk) if adopted is not None else None
    try:
        claimed = _claim(job_id, hostname=task.request.hostname or "") if job_id else None
    except (OperationalError, InterfaceError) as exc:
        # Not the job's fault, and acking would lose it: requeue, unacked.
        database_unavailable(exc, job_id=job_id)
    if claimed is None:
        raise Ignore()
    job, token = claimed
    kind = get_kind(job.kind)
    context = JobContext(job, token, kind)
    heartbeat.add(job.pk, token)
    try:
        try:
            result = kind.func(context, **job.params)
        finally:
            heartbeat.remove(job.pk)
    except JobCancelled:
        _finish(
            job,
            token,
            JobStatus.CANCELLED,
            outcome=JobExecution.Outcome.CANCELLED,
            error="Cancelled while running" + _cancel_suffix(job),
        )
        task.update_state(state="REVOKED")
        raise Ignore() from None
    except JobLost:
        logger.warning("Job %s was taken over by another worker; this run's outcome is dropped", job.pk)
        raise Ignore() from None
    except SoftTimeLimitExceeded as exc:
        _fail(job, token, f"Timed out: the job ran longer than its limit of {kind.soft_time_limit} s.", exc)
        raise
    except kind.retry_on as exc:
        # Runs lost with a dead worker do not count against the job's attempts.
        if job.attempts - job.lost_runs < job.max_attempts and _schedule_retry(job, token, kind, exc):
            raise Ignore() from None
        _fail(job, token, f"{_describe(exc)} (gave up after {job.attempts} attempts)", exc)
        raise
    except Exception as exc:
        _fail(job, token, _describe(exc), exc)
        raise
    result = _jsonable(result)
    _finish(job, token, JobStatus.SUCCEEDED, outcome=JobExecution.Outcome.SUCCEEDED, result=result, task=task)
    return result


def _adopt(task: Task, params: dict) -> Job | None:
    """A message sent around job_enqueue (beat admin's "run now", Flower, a bare
    send_task): record it as a job now, under the message's task id."""
    schedule_name = (task.request.headers or {}).get("periodic_task_name") or ""
    try:
        job = job_enqueue(
            task.name,
            params,
            source=TriggerSource.SCHEDULE if schedule_name else TriggerSource.SYSTEM,
            schedule_name=schedule_name,
            job_id=task.request.id,
            publish=False,
        )
    except JobParamsInvalid as exc:
        logger.error("Task %s %s sent with invalid parameters %s: %s", task.name, task.request.id, params, exc)
        return None
    if job.deduplicated:
        logger.info("Job %s dropped: job %s with the same unique key is active", task.request.id, job.pk)
        return None
    return job


_CLAIM_SQL = """
    UPDATE {table}
       SET status = %s, claim_token = %s, attempts = attempts + 1, started_at = %s, heartbeat_at = %s,
           next_attempt_at = NULL, worker = %s, worker_pid = %s
      {relaxed}
     WHERE id = %s
       AND status IN (%s, %s)
       AND (expires_at IS NULL OR expires_at >= %s)
       AND COALESCE(CASE WHEN status = %s THEN next_attempt_at ELSE not_before END, %s) <= %s
    RETURNING {columns}"""


def _claim(job_id, *, hostname: str) -> tuple[Job, uuid.UUID] | None:
    """Take the job for this worker, or None when it must not run here now.

    One conditional UPDATE ... RETURNING claims the job and loads it; only when
    it matches nothing is the row read again to say why (a duplicate delivery,
    expired, or an early copy of a delayed job).
    """
    now = timezone.now()
    token = uuid.uuid4()
    # The SQL's parameters in order; each name says which field's type prepares the value.
    values = [
        ("status", JobStatus.RUNNING),
        ("claim_token", token),
        ("started_at", now),
        ("heartbeat_at", now),
        ("worker", hostname[:200]),
        ("worker_pid", os.getpid()),
        ("id", job_id),
        ("status", JobStatus.QUEUED),
        ("status", JobStatus.RETRYING),
        ("expires_at", now),
        ("status", JobStatus.RETRYING),
        ("started_at", now),
        ("started_at", now + timedelta(seconds=1)),
    ]
    params = [_concrete(name).get_db_prep_value(value, connection) for name, value in values]
    claimed = list(Job.objects.raw(_claim_sql(connection.vendor), params))  # one round trip, no disk wait
    if claimed:
        return claimed[0], token
    _explain_unclaimed(job_id, now)
    return None


def _concrete(name: str) -> Field:
    field = Job._meta.get_field(name)
    assert isinstance(field, Field)  # every claim column is a concrete field
    return field


@functools.cache
def _claim_sql(vendor: str) -> str:
    fields = [field for field in Job._meta.get_fields() if isinstance(field, Field) and field.concrete]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    return _CLAIM_SQL.format(table=Job._meta.db_table, relaxed=relaxed_from(), columns=columns)


def _explain_unclaimed(job_id, now) -> None:
    state = Job.objects.filter(pk=job_id).values("status", "expires_at").first()
    if state is None:
        logger.warning("Job %s has no row; message dropped", job_id)
    elif state["status"] not in (JobStatus.QUEUED, JobStatus.RETRYING):
        logger.info("Job %s is %s; duplicate delivery dropped", job_id, state["status"])
    elif state["expires_at"] and now > state["expires_at"]:
        Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RETRYING]).update(
            status=JobStatus.CANCELLED, finished_at=now, error="Expired before it could start."
        )
    else:
        # An early copy (e.g. a republish); the sweeper publishes it when due.
        Job.objects.filter(pk=job_id).update(published_at=None)


def _finish(
    job: Job,
    token,
    status: str,
    *,
    outcome: str,
    result: Any = None,
    error: str = "",
    trace: str = "",
    dead_letter: bool = False,
    task: Task | None = None,
) -> None:
    """Record the outcome, its execution record and (on success, given the task)
    the django-celery-results row in one durable commit."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "finished_at": now, "heartbeat_at": now, "claim_token": None}
    if status == JobStatus.SUCCEEDED:
        # A job that reported a total ends at 100 %.
        fields.update(
            result=result,
            error="",
            traceback="",
            is_dead_letter=False,
            progress_done=Case(When(progress_total__gt=0, then=F("progress_total")), default=F("progress_done")),
        )
    else:
        fields.update(error=error[:10000], traceback=trace[:50000], is_dead_letter=dead_letter)
    if status == JobStatus.SUCCEEDED and task is not None and connection.vendor == "postgresql":
        _finish_succeeded(job, token, now, result, task)
        return
    with transaction.atomic():
        if Job.objects.filter(pk=job.pk, claim_token=token).update(**fields):
            _record_execution(job, now, outcome, error)
            if task is not None:
                store_success_row(task, str(job.pk), result, schedule_name=job.schedule_name)


# The success path of _finish in one statement (PostgreSQL): the same conditional
# UPDATE, execution record and result row, committed together and durably in one
# round trip, where the ORM needs BEGIN, three statements and COMMIT.
_FINISH_SQL = """
    WITH done AS (
        UPDATE {job} SET status = %s, finished_at = %s, heartbeat_at = %s, claim_token = NULL, result = %s,
               error = '', traceback = '', is_dead_letter = false,
               progress_done = CASE WHEN progress_total > 0 THEN progress_total ELSE progress_done END
         WHERE id = %s AND claim_token = %s
     RETURNING id
    ), execution AS (
        INSERT INTO {execution} (job_id, attempt, worker, worker_pid, started_at, finished_at, outcome, error)
        SELECT id, %s, %s, %s, %s, %s, %s, '' FROM done
    )
    INSERT INTO {result} ({result_columns}, date_created, date_started, date_done)
    SELECT {result_values}, %s, NULL, %s FROM done
    ON CONFLICT (task_id) DO UPDATE SET {result_updates}"""


@functools.cache
def _finish_sql() -> str:
    from django_celery_results.models import TaskResult

    return _FINISH_SQL.format(
        job=Job._meta.db_table,
        execution=JobExecution._meta.db_table,
        result=TaskResult._meta.db_table,
        result_columns=", ".join(RESULT_COLUMNS),
        result_values=", ".join(["%s"] * len(RESULT_COLUMNS)),
        result_updates=", ".join(f"{column} = EXCLUDED.{column}" for column in UPDATED_COLUMNS),
    )


def _finish_succeeded(job: Job, token, now, result: Any, task: Task) -> None:
    row = success_row(task, str(job.pk), result, schedule_name=job.schedule_name)
    params = [
        JobStatus.SUCCEEDED,
        now,
        now,
        Job._meta.get_field("result").get_db_prep_value(result, connection),
        job.pk,
        token,
        job.attempts,
        job.worker,
        job.worker_pid,
        job.started_at,
        now,
        JobExecution.Outcome.SUCCEEDED,
        *(getattr(row, column) for column in RESULT_COLUMNS),
        now,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_finish_sql(), params)


def _fail(job: Job, token, message: str, exc: BaseException) -> None:
    logger.error("Job %s (%s) failed: %s", job.pk, job.kind, message)
    _finish(
        job,
        token,
        JobStatus.FAILED,
        outcome=JobExecution.Outcome.FAILED,
        error=message,
        trace="".join(traceback.format_exception(exc)),
        dead_letter=True,
    )


def _schedule_retry(job: Job, token, kind: JobKind, exc: BaseException) -> bool:
    """Put the job back as `retrying` with exponential backoff and jitter."""
    # Up to 50 % added jitter spreads retries of many jobs failing together,
    # while each delay stays longer than the one before.
    delay = min(kind.backoff_max, kind.backoff_base * 2 ** (job.attempts - 1)) * random.uniform(1.0, 1.5)
    now = timezone.now()
    next_at = now + timedelta(seconds=delay)
    message = f"{_describe(exc)} (attempt {job.attempts} of {job.max_attempts}; retrying in {delay:.1f} s)"
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, claim_token=token).update(
            status=JobStatus.RETRYING,
            next_attempt_at=next_at,
            claim_token=None,
            published_at=None,
            error=message,
            heartbeat_at=now,
        )
        if not updated:
            return False
        _record_execution(job, now, JobExecution.Outcome.RETRY, message)
    logger.warning("Job %s (%s): %s", job.pk, job.kind, message)
    job.status, job.next_attempt_at = JobStatus.RETRYING, next_at
    job_publish(job=job)
    return True


def _record_execution(job: Job, finished_at, outcome: str, error: str = "") -> None:
    JobExecution.objects.create(
        job=job,
        attempt=job.attempts,
        worker=job.worker,
        worker_pid=job.worker_pid,
        started_at=job.started_at or finished_at,
        finished_at=finished_at,
        outcome=outcome,
        error=error[:2000],
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _cancel_suffix(job: Job) -> str:
    entry = job.audit_entries.filter(action="job.cancel").order_by("-created_at").first()
    if entry is None:
        return "."
    return f" (cancelled by {entry.actor_label}" + (f": {entry.reason})." if entry.reason else ").")


def _jsonable(value: Any) -> Any:
    """Results are stored as JSON; anything else is stored as its string form."""
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return str(value)
