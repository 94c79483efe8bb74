"""Declaring a job kind. A kind is declared once, next to its task, with `@job_kind(...)`:

    @job_kind("jobs.sleep", queue="default", params=SleepParams, staff_only=True)
    def sleep(job, *, seconds, steps):
        ...

The decorator registers a Celery task of that name whose only argument is the
job id; the worker loads the Job row and calls the function with a JobContext
and the validated parameters. Kinds are looked up in jobs.kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task

from jobs.kinds import JobKind, register_kind
from jobs.tracked import TrackedTask, run_tracked_job


def job_kind(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Declare a tracked job kind and register its Celery task."""

    def register(func: Callable[..., Any]):
        kind = JobKind(name=name, func=func, **options)
        register_kind(kind)

        def run(task, job_id: str | None = None, **params: Any) -> Any:
            return run_tracked_job(task=task, job_id=job_id, params=params)

        run.__name__ = func.__name__
        run.__doc__ = func.__doc__
        run.__module__ = func.__module__
        return shared_task(
            name=name,
            base=TrackedTask,
            bind=True,
            queue=kind.queue,
            priority=kind.priority,
            soft_time_limit=kind.soft_time_limit,
            time_limit=kind.time_limit,
            acks_late=True,
            reject_on_worker_lost=True,
            # The Job row records the start, and run_tracked_job writes the SUCCESS
            # result row in the same commit as the outcome; Celery itself writes only
            # failures. Each separate result write would cost a durable commit
            # (docs/benchmarks.md).
            track_started=False,
            ignore_result=True,
            store_errors_even_if_ignored=True,
        )(run)

    return register
