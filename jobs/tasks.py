"""Tasks of the job core. Thin: they call services."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache
from rest_framework import serializers

from jobs.registry import job_kind
from jobs.retention import jobs_prune
from jobs.sweeper import jobs_sweep

SWEEP_LOCK_SECONDS = 120


class SleepParams(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=3600, default=1.0, help_text="Total time to sleep.")
    steps = serializers.IntegerField(min_value=1, max_value=10000, default=10, help_text="Progress reports.")


@job_kind(
    "jobs.sleep",
    label="Sleep (diagnostic)",
    description="Sleeps in `steps` slices, reporting progress after each. For smoke tests and benchmarks.",
    queue="default",
    params=SleepParams,
    staff_only=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_attempts=1,
)
def sleep(job, *, seconds: float, steps: int) -> dict:
    """The built-in diagnostic job."""
    started = time.monotonic()
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        job.progress(step, steps, f"slept {step} of {steps} slices")
    return {"slept_seconds": round(time.monotonic() - started, 3), "steps": steps}


class PruneParams(serializers.Serializer):
    succeeded_days = serializers.IntegerField(
        min_value=0, max_value=36500, required=False, help_text="Keep successes this long (at most 100 years)."
    )
    failed_days = serializers.IntegerField(
        min_value=0, max_value=36500, required=False, help_text="Keep failures this long (at most 100 years)."
    )


@job_kind(
    "jobs.prune",
    label="Delete old jobs and results",
    queue="maintenance",
    priority=8,
    params=PruneParams,
    staff_only=True,
    soft_time_limit=3000,
    time_limit=3300,
    unique_key="jobs.prune",
)
def prune(job, *, succeeded_days: int | None = None, failed_days: int | None = None) -> dict:
    """Retention: delete finished jobs and task results past their age."""
    return jobs_prune(succeeded_days=succeeded_days, failed_days=failed_days, progress=job.progress).as_dict()


@shared_task(
    name="jobs.sweep", queue="maintenance", ignore_result=True, acks_late=False, soft_time_limit=100, time_limit=110
)
def sweep() -> dict | None:
    """Recover lost jobs and publish waiting ones. Untracked on purpose: it is
    what keeps tracking honest, and must not depend on it."""
    if not cache.add("jobs:sweep-lock", "1", SWEEP_LOCK_SECONDS):
        return None  # another sweep is still running
    try:
        return jobs_sweep().as_dict()
    finally:
        cache.delete("jobs:sweep-lock")
