"""Which queue a task goes to: one source, the job kind's `queue`.

config.settings names `route_task` as Celery's only router, so a message sent
by name (beat, "run now", Flower, send_task) lands where the kind says, and a
plain task (the sweeper, the beat heartbeat) where its own declaration says.
"""

from __future__ import annotations

from celery import current_app

from jobs.kinds import find_kind


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router: {"queue": the kind's queue}, or the queue a plain task declares, or None."""
    kind = find_kind(name)
    if kind is not None:
        return {"queue": kind.queue}
    declared = getattr(task, "queue", None) or getattr(current_app.tasks.get(name), "queue", None)
    return {"queue": declared} if declared else None
