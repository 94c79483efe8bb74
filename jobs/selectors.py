"""Reads of the job core: who sees which jobs, and how long a job will take."""

from __future__ import annotations

import statistics
import time

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from jobs.models import ACTIVE_STATUSES, Job, JobStatus

DURATION_SAMPLE = 50
DURATION_CACHE_SECONDS = 60
# Every job answer shows its kind's median, so each process also keeps the medians it
# read for a few seconds: a cache round trip saved per answer, for an estimate that
# is at most this much older than the shared cache's.
DURATION_LOCAL_SECONDS = 5.0
_local_medians: dict[str, tuple[float, float]] = {}  # kind -> (when read, median; 0.0 = none)


def jobs_visible_to(user) -> QuerySet[Job]:
    """Staff see every job; everyone else only the jobs they own. `None` is a trusted
    system caller (a command run without --as): every job. The one answer for the
    API, the admin and the `jobs` command."""
    jobs = Job.objects.select_related("owner")
    if user is None or user.is_staff:
        return jobs
    return jobs.filter(owner=user)


def kind_median_duration(kind: str) -> float | None:
    """Median run time in seconds of the last succeeded jobs of a kind: this process's
    copy while it is younger than DURATION_LOCAL_SECONDS, else the shared cache's."""
    now = time.monotonic()
    held = _local_medians.get(kind)
    if held is not None and now - held[0] < DURATION_LOCAL_SECONDS:
        return held[1] or None
    median = _shared_median_duration(kind)
    _local_medians[kind] = (now, median)
    return median or None


def _shared_median_duration(kind: str) -> float:
    """The kind's median from the shared cache, computed from the database when absent (0.0: no runs)."""
    key = f"jobs:median-duration:{kind}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    rows = (
        Job.objects.filter(kind=kind, status=JobStatus.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:DURATION_SAMPLE]
    )
    durations = [(end - start).total_seconds() for start, end in rows if start and end]
    median = statistics.median(durations) if durations else 0.0
    cache.set(key, median, DURATION_CACHE_SECONDS)
    return median


def job_estimated_duration(job: Job) -> float | None:
    """Expected total run time in seconds (median of recent runs of the kind)."""
    return kind_median_duration(job.kind)


def job_time_left(job: Job, *, now=None) -> float | None:
    """Seconds until the job is expected to finish, or None when unknown.

    Blends the job's own progress rate with the kind's median run time,
    trusting the progress rate more as more of the work is done.
    """
    if job.status not in ACTIVE_STATUSES:
        return None
    median = kind_median_duration(job.kind)
    if job.status != JobStatus.RUNNING or not job.started_at:
        return median
    now = now or timezone.now()
    elapsed = max((now - job.started_at).total_seconds(), 0.0)
    by_median = max(median - elapsed, 0.0) if median else None
    if job.progress_total and job.progress_done:
        fraction = min(job.progress_done / job.progress_total, 1.0)
        by_rate = elapsed * (1 - fraction) / fraction
        if by_median is None:
            return by_rate
        return fraction * by_rate + (1 - fraction) * by_median
    return by_median


def job_actual_duration(job: Job, *, now=None) -> float | None:
    """Seconds the job has run (so far, if still running)."""
    if not job.started_at:
        return None
    end = job.finished_at or (now or timezone.now())
    return max((end - job.started_at).total_seconds(), 0.0)
