"""Operator actions of monitoring: start a compliance scan, run a schedule now.

Each one checks the actor's permission and is audited, whether it comes from
the admin, the API or manage.py.
"""

from __future__ import annotations

import json
import logging
import uuid
from functools import partial

from django.db import transaction
from django_celery_beat.models import PeriodicTask

from core.actors import Actor, require_permission
from core.audit import audit_record
from core.errors import NotAllowed
from jobs.kinds import get_kind
from jobs.models import Job
from jobs.services import job_enqueue, job_trigger
from monitoring.models import ScanRun
from monitoring.periodic import tracked_task_names

logger = logging.getLogger(__name__)

SCAN_KIND = "monitoring.compliance_scan"


def scan_trigger(*, actor: Actor, mode: str = ScanRun.Mode.FULL, reason: str = "") -> Job:
    """Start a compliance scan as a job (or return the one already running: `job.deduplicated`)."""
    require_permission(actor.user, "monitoring.run_scan")
    return job_trigger(kind=SCAN_KIND, params={"mode": mode}, actor=actor, reason=reason)


@transaction.atomic
def schedule_run_now(*, task: PeriodicTask, actor: Actor, reason: str = "") -> dict:
    """Send a periodic task now, outside its schedule (staff). Tracked kinds become a Job
    (linked to the schedule by name); plain tasks are sent to Celery as they are."""
    require_permission(actor.user, "django_celery_beat.change_periodictask", staff=True)
    kwargs = json.loads(task.kwargs or "{}")
    if task.task in tracked_task_names():
        kind = get_kind(task.task)
        if actor.user is not None and not kind.may_trigger(actor.user) and not actor.user.is_superuser:
            raise NotAllowed(f"You may not start {task.task} jobs.")
        job = job_enqueue(task.task, kwargs, owner=actor.user, source=actor.source, schedule_name=task.name)
        audit_record(actor=actor, action="schedule.run_now", job=job, target=task, reason=reason,
                     details={"task": task.task, "job": str(job.pk), "deduplicated": job.deduplicated})
        return {"schedule": task.name, "task": task.task, "job_id": str(job.pk), "deduplicated": job.deduplicated}
    from celery import current_app

    args = json.loads(task.args or "[]")
    options = {"queue": task.queue} if task.queue else {}
    task_id = str(uuid.uuid4())
    transaction.on_commit(partial(current_app.send_task, task.task, args=args, kwargs=kwargs, task_id=task_id,
                                  **options))
    audit_record(actor=actor, action="schedule.run_now", target=task, reason=reason,
                 details={"task": task.task, "task_id": task_id})
    return {"schedule": task.name, "task": task.task, "task_id": task_id, "job_id": None, "deduplicated": False}
