"""Writes of the job core: enqueue, publish, cancel, terminate, retry.

Every operator action goes through one function here that checks permission,
is atomic and writes an audit row; the admin, the API and manage.py all call
the same function.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

from celery import current_app
from celery.app.task import Task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from core.actors import Actor, require_permission
from core.audit import audit_entry, audit_record
from core.db import insert_together
from core.errors import Invalid, NotAllowed
from core.models import AuditEntry, TriggerSource, model_label
from core.saves import audited_save, invalid_from
from jobs.durability import relaxed_from
from jobs.errors import JobNotAllowed, JobParamsInvalid, JobSubjectNotFound
from jobs.kinds import JobKind, find_kind, get_kind
from jobs.models import ACTIVE_STATUSES, Job, JobStatus

logger = logging.getLogger(__name__)

# Publishing must fail fast when the broker is down: the job stays queued and the
# sweeper publishes it later, so a web request never waits long on Redis.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

# After a failed publish this process does not ask the broker again for
# JOB_PUBLISH_RETRY_AFTER_SECONDS: a frozen Redis costs one socket timeout, not one
# per request; the jobs wait in their rows and the sweeper publishes them.
_broker_down_until = 0.0


def job_enqueue(
    kind: str,
    params: dict | None = None,
    *,
    owner=None,
    subject=None,
    unique_key: str | None = None,
    priority: int | None = None,
    countdown: float | None = None,
    eta: datetime | None = None,
    expires: datetime | float | None = None,
    source: str = TriggerSource.SYSTEM,
    schedule_name: str = "",
    retry_of: Job | None = None,
    job_id: str | None = None,
    publish: bool = True,
) -> Job:
    """Record a job and publish it when the caller's transaction commits.

    Returns the new Job, or the already active one with the same unique key
    (then `job.deduplicated` is True). Raises JobParamsInvalid for bad
    parameters. Never raises because the broker is down.
    """
    job = _new_job(
        get_kind(kind),
        params,
        owner=owner,
        subject=subject,
        unique_key=unique_key,
        priority=priority,
        countdown=countdown,
        eta=eta,
        expires=expires,
        source=source,
        schedule_name=schedule_name,
        retry_of=retry_of,
        job_id=job_id,
    )
    if job.unique_key:
        existing = _insert_unless_active(job)
        if existing is not None:
            existing.deduplicated = True
            return existing
    else:
        job.save(force_insert=True)
    job.deduplicated = False
    if publish:
        transaction.on_commit(partial(job_publish, job=job))
    return job


def job_enqueue_many(
    kind: str,
    params_list: Iterable[dict],
    *,
    owner=None,
    priority: int | None = None,
    source: str = TriggerSource.SYSTEM,
) -> list[Job]:
    """Record many jobs of one kind with one INSERT per 1,000 and publish them
    together (one broker connection) when the caller's transaction commits.

    Returns one Job per parameter set, in order; where the unique key is held
    by an active job, that job (with `deduplicated` True), as job_enqueue does.
    """
    job_kind = get_kind(kind)
    validated = [job_kind.validate(params) for params in params_list]
    jobs = [
        _new_job(job_kind, params, owner=owner, subject=subject, priority=priority, source=source, validated=True)
        for params, subject in zip(validated, _subjects_of(job_kind, validated), strict=True)
    ]
    with transaction.atomic():
        # Rows whose unique key is taken are skipped by the database, not raised.
        Job.objects.bulk_create(jobs, batch_size=1000, ignore_conflicts=any(job.unique_key for job in jobs))
        inserted = _existing_ids([job.pk for job in jobs])
        holders = _active_holders({job.unique_key for job in jobs if job.pk not in inserted})
        answer = []
        for job in jobs:
            if job.pk in inserted:
                job.deduplicated = False
                answer.append(job)
            elif job.unique_key in holders:
                holder = holders[job.unique_key]
                holder.deduplicated = True
                answer.append(holder)
            else:  # the holder finished meanwhile
                answer.append(
                    job_enqueue(kind, job.params, owner=owner, priority=priority, source=source, publish=False)
                )
        fresh = [job for job in answer if not job.deduplicated]
        transaction.on_commit(partial(job_publish_many, jobs=fresh))
    return answer


def _new_job(
    job_kind: JobKind,
    params: dict | None,
    *,
    owner=None,
    subject=None,
    unique_key=None,
    priority=None,
    countdown=None,
    eta=None,
    expires=None,
    source=TriggerSource.SYSTEM,
    schedule_name="",
    retry_of=None,
    job_id=None,
    validated=False,
) -> Job:
    """An unsaved Job of a kind, with validated parameters (`validated`: the caller validated them)."""
    params = params if validated and params is not None else job_kind.validate(params)
    subject = subject if subject is not None else _subject_of(job_kind, params)
    now = timezone.now()
    if isinstance(expires, int | float):
        expires = now + timedelta(seconds=expires)
    job = Job(
        id=job_id or uuid.uuid4(),
        kind=job_kind.name,
        queue=job_kind.queue,
        priority=job_kind.priority if priority is None else priority,
        params=params,
        source=source,
        owner=owner if owner is not None and getattr(owner, "pk", None) else None,
        unique_key=unique_key or job_kind.unique_key_for(params),
        max_attempts=job_kind.max_attempts,
        not_before=eta or (now + timedelta(seconds=countdown) if countdown else None),
        expires_at=expires,
        schedule_name=schedule_name,
        retry_of=retry_of,
    )
    if subject is not None:
        job.subject_type = model_label(subject)
        job.subject_id = str(subject.pk)
        job.subject_label = str(subject)[:200]
    return job


def _existing_ids(ids: list) -> set:
    found: set = set()
    for start in range(0, len(ids), 1000):
        found.update(Job.objects.filter(pk__in=ids[start : start + 1000]).values_list("pk", flat=True))
    return found


def _active_holders(keys: set) -> dict[str, Job]:
    keys.discard(None)
    if not keys:
        return {}
    return {job.unique_key or "": job for job in Job.objects.filter(unique_key__in=keys, status__in=ACTIVE_STATUSES)}


def _insert_unless_active(job: Job) -> Job | None:
    """Insert the job, or return the active job holding its unique key.

    The database's conditional unique constraint decides, so concurrent
    callers cannot both win.
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                job.save(force_insert=True)
            return None
        except IntegrityError:
            active = Job.objects.filter(unique_key=job.unique_key, status__in=ACTIVE_STATUSES).first()
            if active is not None:
                return active
            # The holder finished between our insert and our read: try again.
    raise JobNotAllowed(f"Could not enqueue {job.kind}: unique key {job.unique_key!r} is contended.")


def _subjects_of(kind: JobKind, params_list: list[dict]) -> list:
    """The subjects of many jobs of one kind, read with one query per 1,000 (None where not found:
    _new_job then asks again, one at a time)."""
    if kind.subject is None:
        return [None] * len(params_list)
    keys = [params.get(kind.subject.param) for params in params_list]
    wanted = list({key for key in keys if key is not None})
    found: dict = {}
    for start in range(0, len(wanted), 1000):
        found.update(kind.subject.everything().in_bulk(wanted[start : start + 1000]))
    return [found.get(key) for key in keys]


def _subject_of(kind: JobKind, params: dict):
    if kind.subject is None:
        return None
    return kind.subject.resolve(params)


def job_publish(*, job: Job) -> bool:
    """Send the job's message to the broker; False (job left queued) if that fails."""
    return job_publish_many(jobs=[job]) == 1


def job_publish_many(*, jobs: Iterable[Job]) -> int:
    """Send the jobs' messages over one broker connection; how many were sent.

    Stops at the first broker failure: the rest stay queued with no
    `published_at`, for the sweeper. Delays longer than JOB_MAX_BROKER_COUNTDOWN
    wait in the row instead of the broker (Redis redelivers long-delayed
    messages; docs/jobs.md "What protects a job"); the sweeper publishes them when due.
    """
    global _broker_down_until
    sent = []
    job = None
    if time.monotonic() < _broker_down_until:
        logger.info(
            "Not publishing now: the broker failed less than %s s ago; the sweeper will publish",
            settings.JOB_PUBLISH_RETRY_AFTER_SECONDS,
        )
        return 0
    try:
        with current_app.producer_or_acquire() as producer:
            for job in jobs:
                if _send(job, producer):
                    sent.append(job.pk)
    except Exception as exc:  # the broker may fail in many ways; the rows are the truth
        logger.warning(
            "Could not publish job %s (%s): %s; the sweeper will retry",
            job.pk if job else "?",
            job.kind if job else "?",
            exc,
        )
        _broker_down_until = time.monotonic() + settings.JOB_PUBLISH_RETRY_AFTER_SECONDS
    for start in range(0, len(sent), 1000):
        _mark_published(sent[start : start + 1000])
    return len(sent)


def _mark_published(ids: list) -> None:
    """Set published_at in one statement that does not wait for the disk: if a
    database crash forgets it, the sweeper publishes again and the claim drops the copy."""
    pk = Job._meta.pk
    placeholders = ", ".join(["%s"] * len(ids))
    sql = f"UPDATE {Job._meta.db_table} SET published_at = %s {relaxed_from()} WHERE id IN ({placeholders})"  # noqa: S608 (no input in it)
    params = [Job._meta.get_field("published_at").get_db_prep_value(timezone.now(), connection)]
    params += [pk.get_db_prep_value(value, connection) for value in ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _send(job: Job, producer) -> bool:
    """Publish one job's message, unless its start is too far ahead for the broker."""
    start_at = job.next_attempt_at if job.status == JobStatus.RETRYING else job.not_before
    countdown = max(0.0, (start_at - timezone.now()).total_seconds()) if start_at else 0.0
    if countdown > settings.JOB_MAX_BROKER_COUNTDOWN:
        return False
    Task.apply_async(
        current_app.tasks[job.kind],
        args=[str(job.pk)],
        task_id=str(job.pk),
        queue=job.queue,
        priority=job.priority,
        countdown=countdown or None,
        producer=producer,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )
    return True


def job_start_time(*, run_at: datetime | None = None, countdown: float | None = None) -> datetime | None:
    """When a job started by hand should start: `run_at` (aware) or `countdown`
    seconds from now, or None for now. Raises JobParamsInvalid (field errors under
    "run_at" / "countdown") for both at once, a time in the past beyond
    JOB_START_SKEW_SECONDS, or a delay over JOB_MAX_START_DELAY_DAYS."""
    now = timezone.now()
    longest = timedelta(days=settings.JOB_MAX_START_DELAY_DAYS)
    if run_at is not None and countdown is not None:
        raise JobParamsInvalid({"non_field_errors": ["Give run_at or countdown, not both."]})
    if countdown is not None:
        if countdown < 0:
            raise JobParamsInvalid({"countdown": ["The countdown cannot be negative."]})
        if countdown > longest.total_seconds():
            raise JobParamsInvalid({"countdown": [f"At most {settings.JOB_MAX_START_DELAY_DAYS} days ahead."]})
        return now + timedelta(seconds=countdown) if countdown else None
    if run_at is None:
        return None
    if timezone.is_naive(run_at):
        raise JobParamsInvalid({"run_at": ["Give a time zone (e.g. 2026-03-01T09:00:00+01:00 or ...Z)."]})
    if run_at < now - timedelta(seconds=settings.JOB_START_SKEW_SECONDS):
        raise JobParamsInvalid({"run_at": ["The start time is in the past."]})
    if run_at > now + longest:
        raise JobParamsInvalid({"run_at": [f"At most {settings.JOB_MAX_START_DELAY_DAYS} days ahead."]})
    return run_at if run_at > now else None


def job_trigger(
    *,
    kind: str,
    params: dict | None,
    actor: Actor,
    priority: int | None = None,
    reason: str = "",
    run_at: datetime | None = None,
    countdown: float | None = None,
) -> Job:
    """Start a job by hand (API, admin, command), checked and audited; `run_at` or
    `countdown` delays its start (validated by job_start_time).

    The job's subject is looked up through the same visibility selector as the
    object's own pages, before anything is written: an object the caller may
    not see is answered exactly like one that does not exist.
    """
    job_kind = get_kind(kind)
    if actor.user is not None and not job_kind.may_trigger(actor.user):
        raise NotAllowed(f"You may not start {kind} jobs.")
    params = job_kind.validate(params)
    start_at = job_start_time(run_at=run_at, countdown=countdown)
    subject = None
    if job_kind.subject is not None:
        subject = job_kind.subject.resolve(params, actor.user)
        if subject is None:
            raise JobSubjectNotFound(
                f"There is no {job_kind.subject.noun} with id {params.get(job_kind.subject.param)!r}."
            )
    if job_kind.authorize is not None and actor.user is not None:
        job_kind.authorize(user=actor.user, subject=subject, params=params)

    def audited(job: Job) -> AuditEntry:
        details = {"kind": kind, "params": job.params}
        if start_at is not None:
            details["run_at"] = start_at.isoformat()
        return audit_entry(actor=actor, action="job.trigger", job=job, target=job, reason=reason, details=details)

    job = _new_job(
        job_kind,
        params,
        owner=actor.user,
        subject=subject,
        priority=priority,
        source=actor.source,
        eta=start_at,
        validated=True,
    )
    if job.unique_key is None and connection.vendor == "postgresql":
        # The job row and its audit entry in one statement: one round trip and one
        # durable commit instead of BEGIN, two INSERTs and COMMIT; published once committed.
        insert_together(job, audited(job))
        job.deduplicated = False
        transaction.on_commit(partial(job_publish, job=job))
        return job
    with transaction.atomic():
        job = job_enqueue(
            kind, params, owner=actor.user, subject=subject, priority=priority, source=actor.source, eta=start_at
        )
        if not job.deduplicated:
            audited(job).save()
    return job


def job_cancel(*, job: Job, actor: Actor, reason: str = "") -> Job:
    """Cancel a job: a queued one never starts; a running one stops at its next progress call."""
    require_permission(actor.user, "jobs.cancel_job")
    now = timezone.now()
    with transaction.atomic():
        stopped = Job.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RETRYING]).update(
            status=JobStatus.CANCELLED, finished_at=now, error=_cancel_message(actor, reason)
        )
        if not stopped:
            requested = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested_at=now)
            if not requested:
                raise JobNotAllowed(f"The job is already {Job.objects.get(pk=job.pk).status}.")
        audit_record(actor=actor, action="job.cancel", job=job, target=job, reason=reason)
    job.refresh_from_db()
    return job


def job_terminate(*, job: Job, actor: Actor, reason: str = "") -> Job:
    """Stop a stuck running job now: kill its worker process and mark it cancelled (staff)."""
    require_permission(actor.user, "jobs.terminate_job", staff=True)
    with transaction.atomic():
        ended = Job.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(
            status=JobStatus.CANCELLED,
            finished_at=timezone.now(),
            cancel_requested_at=timezone.now(),
            claim_token=None,  # the dying process must not write its outcome
            error=_cancel_message(actor, reason, verb="Terminated"),
        )
        if not ended:
            raise JobNotAllowed(f"The job is already {Job.objects.get(pk=job.pk).status}.")
        audit_record(actor=actor, action="job.terminate", job=job, target=job, reason=reason)
    try:
        current_app.control.revoke(str(job.pk), terminate=True, signal="SIGKILL")
    except Exception as exc:
        logger.warning("Could not broadcast terminate for job %s: %s", job.pk, exc)
    job.refresh_from_db()
    return job


def job_retry(*, job: Job, actor: Actor, reason: str = "") -> Job:
    """Run a failed or cancelled job again as a new job linked by retry_of."""
    require_permission(actor.user, "jobs.retry_job")
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobNotAllowed(f"Only failed or cancelled jobs can be retried; this one is {job.status}.")
    with transaction.atomic():
        new_job = job_enqueue(
            job.kind,
            job.params,
            owner=job.owner,
            subject=job.subject_object(),
            unique_key=job.unique_key,
            priority=job.priority,
            source=actor.source,
            retry_of=job,
        )
        Job.objects.filter(pk=job.pk).update(is_dead_letter=False)
        audit_record(
            actor=actor, action="job.retry", job=job, target=job, reason=reason, details={"new_job": str(new_job.pk)}
        )
    return new_job


def job_cancel_many(*, jobs: QuerySet, actor: Actor, reason: str = "") -> int:
    """Cancel every active job of a selection; returns how many."""
    count = 0
    for job in jobs.filter(status__in=ACTIVE_STATUSES).iterator():
        try:
            job_cancel(job=job, actor=actor, reason=reason)
            count += 1
        except JobNotAllowed:
            continue  # it finished meanwhile
    return count


def job_cancel_all(*, actor: Actor, kind: str | None = None, reason: str = "") -> int:
    """Cancel every active job, or every active job of one kind (staff only)."""
    require_permission(actor.user, "jobs.cancel_job", staff=True)
    jobs = Job.objects.filter(status__in=ACTIVE_STATUSES)
    if kind:
        jobs = jobs.filter(kind=kind)
    count = job_cancel_many(jobs=jobs, actor=actor, reason=reason)
    audit_record(actor=actor, action="job.cancel_all", reason=reason, details={"kind": kind, "count": count})
    return count


def _cancel_message(actor: Actor, reason: str, verb: str = "Cancelled") -> str:
    who = getattr(actor.user, "username", None) or actor.source
    return f"{verb} by {who}" + (f": {reason}" if reason else "")


@transaction.atomic
def schedule_run_now(*, task: PeriodicTask, actor: Actor, reason: str = "") -> dict:
    """Send a periodic task now, outside its schedule (staff), from the beat admin or the API.
    Tracked kinds become a Job (linked to the schedule by name) if the actor may start
    that kind; plain tasks are sent to Celery as they are. Audited either way."""
    require_permission(actor.user, "django_celery_beat.change_periodictask", staff=True)
    kwargs = json.loads(task.kwargs or "{}")
    kind = find_kind(task.task)
    if kind is not None:
        if actor.user is not None and not kind.may_trigger(actor.user) and not actor.user.is_superuser:
            raise NotAllowed(f"You may not start {task.task} jobs.")
        job = job_enqueue(task.task, kwargs, owner=actor.user, source=actor.source, schedule_name=task.name)
        audit_record(
            actor=actor,
            action="schedule.run_now",
            job=job,
            target=task,
            reason=reason,
            details={"task": task.task, "job": str(job.pk), "deduplicated": job.deduplicated},
        )
        return {"schedule": task.name, "task": task.task, "job_id": str(job.pk), "deduplicated": job.deduplicated}
    args = json.loads(task.args or "[]")
    options = {"queue": task.queue} if task.queue else {}
    task_id = str(uuid.uuid4())
    transaction.on_commit(
        partial(current_app.send_task, task.task, args=args, kwargs=kwargs, task_id=task_id, **options)
    )
    audit_record(
        actor=actor,
        action="schedule.run_now",
        target=task,
        reason=reason,
        details={"task": task.task, "task_id": task_id},
    )
    return {"schedule": task.name, "task": task.task, "task_id": task_id, "job_id": None, "deduplicated": False}


# What an operator sets on a schedule (django-celery-beat's form); run bookkeeping
# (last_run_at, total_run_count, date_changed) is beat's own.
SCHEDULE_FIELDS = (
    "name",
    "task",
    "enabled",
    "description",
    "interval",
    "crontab",
    "solar",
    "clocked",
    "start_time",
    "one_off",
    "args",
    "kwargs",
    "expires",
    "expire_seconds",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "headers",
)


def schedule_check(*, task: str, args: str | None, kwargs: str | None) -> None:
    """What django-celery-beat's model does not check itself: a task name, `args` a JSON list and
    `kwargs` a JSON object (a task is called with them). Invalid with the field errors."""
    errors = {}
    if not (task or "").strip():
        errors["task"] = ["Name the task to run."]
    for name, text, kind, label in (("args", args, list, "list"), ("kwargs", kwargs, dict, "object")):
        try:
            value = json.loads(text or ("[]" if kind is list else "{}"))
        except ValueError as exc:
            errors[name] = [f"Unable to parse JSON: {exc}"]
            continue
        if not isinstance(value, kind):
            errors[name] = [f"Must be a JSON {label}."]
    if errors:
        message = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        raise Invalid(message, field_errors=errors)


def schedule_save(*, actor: Actor, schedule: PeriodicTask | None = None, reason: str = "", **fields) -> PeriodicTask:
    """Create or change a periodic task (staff): schedule_check, then the model's own checks
    (exactly one of interval / crontab / solar / clocked); Invalid says what is wrong.
    Audited as schedule.create / schedule.change; beat re-reads it."""
    require_permission(
        actor.user,
        "django_celery_beat.change_periodictask" if schedule else "django_celery_beat.add_periodictask",
        staff=True,
    )
    target = schedule or PeriodicTask()
    schedule_check(
        task=fields.get("task", target.task),
        args=fields.get("args", target.args),
        kwargs=fields.get("kwargs", target.kwargs),
    )
    return audited_save(
        target,
        actor=actor,
        action="schedule.change" if schedule else "schedule.create",
        fields=fields,
        allowed=SCHEDULE_FIELDS,
        reason=reason,
        details={"task": fields.get("task", target.task), "enabled": fields.get("enabled", target.enabled)},
    )


def schedule_timing(*, interval: dict | None = None, crontab: dict | None = None) -> dict:
    """The schedule fields of a periodic task from plain values ({"every", "period"} or the
    crontab's fields and timezone), reusing an equal schedule row; Invalid when they make none."""
    try:
        if interval is not None:
            IntervalSchedule(**interval).full_clean(validate_unique=False)
            found, _ = IntervalSchedule.objects.get_or_create(**interval)
            return {"interval": found, "crontab": None, "solar": None, "clocked": None}
        if crontab is not None:
            CrontabSchedule(**crontab).full_clean(validate_unique=False)
            found, _ = CrontabSchedule.objects.get_or_create(**crontab)
            return {"interval": None, "crontab": found, "solar": None, "clocked": None}
    except ValidationError as exc:
        raise invalid_from(exc) from None
    except TypeError as exc:  # a key the schedule does not have
        raise Invalid(f"Not a schedule: {exc}.") from None
    raise Invalid("A schedule needs an interval or a crontab.")
