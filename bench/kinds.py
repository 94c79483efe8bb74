"""Tasks and job kinds used only by the benchmarks (loaded through
JOB_EXTRA_MODULES=bench.kinds, in the benchmark process and its workers).

All three do nothing, so a benchmark of them measures the machinery around a
task: the broker, the result backend and the job ledger.
"""

from __future__ import annotations

from celery import shared_task

from jobs.registry import job_kind


@shared_task(name="bench.noop_bare", ignore_result=True)
def noop_bare() -> None:
    """A bare Celery task that stores no result."""
    return None


@shared_task(name="bench.noop_result")
def noop_result() -> None:
    """A bare Celery task whose result the django-db backend stores."""
    return None


@job_kind("bench.noop", label="No-op (benchmark)", queue="default", user_triggerable=False, max_attempts=1)
def noop(job) -> None:
    """A tracked job that does nothing."""
    return None
