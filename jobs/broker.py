"""Direct reads of the Redis broker: queue lengths and unacked messages.

Kombu keeps one Redis list per queue and priority step ("invoices",
"invoices:1", ... "invoices:9" with our `sep` ":") and a hash "unacked" of
messages delivered to a worker but not yet acknowledged.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

UNACKED_HASH = "unacked"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def broker_client() -> redis.Redis:
    return _client(settings.CELERY_BROKER_URL)


def priority_queue_names(queue: str) -> list[str]:
    """The Redis list of each priority step of a queue, highest priority first."""
    options: dict[str, Any] = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    sep = options.get("sep", "\x06\x16")
    return [queue if step == 0 else f"{queue}{sep}{step}" for step in options["priority_steps"]]


def queue_length(queue: str) -> int:
    """Messages waiting in a queue, all priorities together."""
    with broker_client().pipeline() as pipe:
        for name in priority_queue_names(queue):
            pipe.llen(name)
        return sum(pipe.execute())


def queue_lengths_by_priority(queue: str) -> dict[int, int]:
    options: dict[str, Any] = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    steps: list[int] = options["priority_steps"]
    with broker_client().pipeline() as pipe:
        for name in priority_queue_names(queue):
            pipe.llen(name)
        return dict(zip(steps, pipe.execute(), strict=True))


def unacked_task_ids() -> set[str]:
    """Task ids of messages a worker holds unacked (running, prefetched or delayed)."""
    ids: set[str] = set()
    for raw in broker_client().hvals(UNACKED_HASH):
        try:
            payload = json.loads(raw)[0]
            ids.add(payload["headers"]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            continue
    return ids
