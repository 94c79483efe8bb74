"""The django-celery-results row of a tracked job that succeeded.

Tracked tasks ignore results, so Celery does not write this row in a commit of
its own; run_tracked_job writes it inside the outcome's transaction with one
INSERT ... ON CONFLICT, where the django-db backend needs a SELECT, a savepoint
and an INSERT (docs/benchmarks.md). The columns hold what that backend stores
with `result_extended` on, encoded by the backend itself, so the admin's task
results and AsyncResult read it as usual. Failures Celery still stores itself
(store_errors_even_if_ignored).
"""

from __future__ import annotations

from typing import Any

from celery import Task, states
from django_celery_results.models import TaskResult

# The columns of a success row we write, task_id first (jobs.tracked inserts them in one statement)...
RESULT_COLUMNS = (
    "task_id",
    "status",
    "result",
    "content_type",
    "content_encoding",
    "meta",
    "traceback",
    "task_name",
    "task_args",
    "task_kwargs",
    "worker",
    "periodic_task_name",
)
# ...and what a second write of the same task's row replaces.
UPDATED_COLUMNS = [*RESULT_COLUMNS[1:], "date_done"]


def success_row(task: Task, job_id: str, result: Any, *, schedule_name: str = "") -> TaskResult:
    """The (unsaved) SUCCESS row of a job, encoded as the django-db backend would."""
    request = task.request
    backend = task.backend
    content_type, content_encoding, encoded_result = backend.encode_content(result)
    _, _, meta = backend.encode_content({**(getattr(request, "meta", None) or {}), "children": []})
    args = getattr(request, "argsrepr", None)
    kwargs = getattr(request, "kwargsrepr", None)
    _, _, args_repr = backend.encode_content(request.args if args is None else args)
    _, _, kwargs_repr = backend.encode_content(request.kwargs if kwargs is None else kwargs)
    return TaskResult(
        task_id=job_id,
        status=states.SUCCESS,
        result=encoded_result,
        content_type=content_type,
        content_encoding=content_encoding,
        meta=meta,
        traceback=None,
        task_name=task.name,
        task_args=args_repr,
        task_kwargs=kwargs_repr,
        worker=request.hostname,
        periodic_task_name=schedule_name or getattr(request, "periodic_task_name", None),
    )


def store_success_row(task: Task, job_id: str, result: Any, *, schedule_name: str = "") -> None:
    """Write the SUCCESS row with one INSERT ... ON CONFLICT (inside the caller's transaction)."""
    row = success_row(task, job_id, result, schedule_name=schedule_name)
    TaskResult.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["task_id"], update_fields=UPDATED_COLUMNS
    )
