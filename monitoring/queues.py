"""Queues: how many messages wait in Redis, and how long the oldest job has waited.

The length comes from the broker (one Redis list per queue and priority step);
the age of the oldest waiting job from the Job rows, since a Redis message
carries no enqueue time we could read cheaply. A job waits from when it became
due: its creation, its requested start (`not_before`), or its next retry.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.broker import queue_lengths_by_priority
from jobs.models import Job, JobStatus

logger = logging.getLogger(__name__)


def broker_queue_lengths() -> tuple[dict[str, dict[int, int]], str | None]:
    """Messages per queue and priority step, and an error message if the broker did not answer."""
    lengths: dict[str, dict[int, int]] = {}
    try:
        for queue in settings.JOB_QUEUES:
            lengths[queue] = queue_lengths_by_priority(queue)
    except Exception as exc:  # Redis down or frozen: the rest of the page still renders
        logger.warning("Could not read queue lengths: %s", exc)
        return {}, f"The broker did not answer: {type(exc).__name__}."
    return lengths, None


def oldest_waiting_since(*, now: datetime | None = None) -> dict[str, dict]:
    """Per queue: when its oldest due job started waiting, and how many jobs are due, delayed, running."""
    now = now or timezone.now()
    due_queued = Q(status=JobStatus.QUEUED) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    due_retry = Q(status=JobStatus.RETRYING) & Q(next_attempt_at__lte=now)
    rows = (
        Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.RUNNING])
        .values("queue")
        .annotate(
            oldest_queued=Min(Coalesce("not_before", "created_at"), filter=due_queued),
            oldest_retry=Min("next_attempt_at", filter=due_retry),
            waiting=Count("id", filter=due_queued | due_retry),
            delayed=Count(
                "id", filter=Q(status__in=[JobStatus.QUEUED, JobStatus.RETRYING]) & ~(due_queued | due_retry)
            ),
            running=Count("id", filter=Q(status=JobStatus.RUNNING)),
        )
    )
    result = {}
    for row in rows:
        candidates = [value for value in (row["oldest_queued"], row["oldest_retry"]) if value is not None]
        result[row["queue"]] = {
            "waiting_since": min(candidates) if candidates else None,
            "waiting_jobs": row["waiting"],
            "delayed_jobs": row["delayed"],
            "running_jobs": row["running"],
        }
    return result


def queue_overview(*, now: datetime | None = None) -> dict:
    """Every queue: length in the broker (total and per priority step), the age of the
    oldest waiting job, and the job counts behind it."""
    now = now or timezone.now()
    lengths, error = broker_queue_lengths()
    waiting = oldest_waiting_since(now=now)
    queues = []
    for queue in settings.JOB_QUEUES:
        by_priority = lengths.get(queue)
        info = waiting.get(queue, {})
        since = info.get("waiting_since")
        queues.append(
            {
                "name": queue,
                "length": sum(by_priority.values()) if by_priority is not None else None,
                "by_priority": {str(step): count for step, count in by_priority.items()} if by_priority else {},
                "oldest_waiting_since": since.isoformat() if since else None,
                "oldest_waiting_age_seconds": round(max((now - since).total_seconds(), 0.0), 3) if since else None,
                "waiting_jobs": info.get("waiting_jobs", 0),
                "delayed_jobs": info.get("delayed_jobs", 0),
                "running_jobs": info.get("running_jobs", 0),
            }
        )
    return {"checked_at": now.isoformat(), "broker_error": error, "queues": queues}
