"""A worker whose database does not answer must not take jobs it cannot run.

Two parts, both in the worker:

- In the pool process, a claim that fails because the database is unreachable
  rejects the message back to its queue (never acks it) after a short backoff
  (`database_unavailable`).
- In the main process, a consumer bootstep probes the database every
  WORKER_DB_CHECK_SECONDS. While it does not answer, the worker stops consuming
  its queues and reports itself unhealthy through the `apintake_health` inspect
  command (read by the `workers` health check and the workers endpoint); once
  it answers, the worker consumes again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import bootsteps
from celery.exceptions import Reject
from celery.worker.control import inspect_command
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

_state: dict[str, Any] = {"healthy": True, "problem": None, "since": None}
_state_lock = threading.Lock()


def database_unavailable(exc: BaseException, *, job_id) -> None:
    """Called by a pool process whose claim could not reach the database: wait a
    little (so the message does not spin), then put the message back, unacked."""
    logger.error(
        "Cannot reach the database to claim job %s (%s: %s); the message goes back to its queue",
        job_id,
        type(exc).__name__,
        exc,
    )
    time.sleep(settings.WORKER_DB_CHECK_SECONDS)
    raise Reject(f"database unreachable: {type(exc).__name__}", requeue=True) from exc


def database_answers() -> str | None:
    """None if a fresh connection to the database answers SELECT 1, else why not."""
    from django.db import connection

    params = connection.get_connection_params()
    if connection.vendor == "postgresql":
        params["connect_timeout"] = max(1, int(settings.WORKER_DB_CHECK_SECONDS))
    try:
        # A connection of its own: the main process must not hold one its pool children inherit.
        raw = connection.get_new_connection(params)
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        finally:
            raw.close()
    except Exception as exc:
        # The full message (it names the host) goes to the worker's log only.
        logger.debug("Database probe failed: %s", exc)
        return type(exc).__name__
    return None


@inspect_command()
def apintake_health(state) -> dict:
    """This worker's own view of whether it can run jobs."""
    with _state_lock:
        return dict(_state)


class DatabaseWatch(bootsteps.StartStopStep):
    """Stops consuming while the database does not answer, and starts again after."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_entry = None
        self.paused_queues: list[str] = []

    def start(self, consumer) -> None:
        self.consumer = consumer
        self.timer_entry = consumer.timer.call_repeatedly(settings.WORKER_DB_CHECK_SECONDS, self.check, priority=10)

    def stop(self, consumer) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    def check(self) -> None:
        problem = database_answers()
        with _state_lock:
            was_healthy = _state["healthy"]
            if problem:
                _state.update(
                    healthy=False,
                    problem=f"Cannot reach the database ({problem}); not consuming.",
                    since=_state["since"] if not was_healthy else timezone.now().isoformat(),
                )
            else:
                _state.update(healthy=True, problem=None, since=None)
        if problem and was_healthy:
            self._pause(problem)
        elif not problem and not was_healthy:
            self._resume()

    def _pause(self, problem: str) -> None:
        queues = [queue.name for queue in self.consumer.task_consumer.queues] if self.consumer.task_consumer else []
        logger.error(
            "The database does not answer (%s): this worker stops consuming %s until it does",
            problem,
            ", ".join(queues) or "its queues",
        )
        for name in queues:
            self.consumer.cancel_task_queue(name)
        self.paused_queues = queues

    def _resume(self) -> None:
        logger.warning("The database answers again: consuming %s", ", ".join(self.paused_queues))
        for name in self.paused_queues:
            self.consumer.add_task_queue(name)
        self.paused_queues = []
