"""Variant d of bench/jobs_throughput.py: a Celery app with Celery's own defaults
plus only `task_acks_late` and `worker_prefetch_multiplier = 1`.

No Django (the worker runs without DJANGO_SETTINGS_MODULE, so Celery's Django
fixup stays off), no result backend, no task events, no compression, Redis's
default priority steps, the default queue `celery`. It shows what our own
configuration (config/settings.py) costs on the same broker and machine.

Worker: `celery -A bench.celery_defaults worker -c 2 -l WARNING`, with
BENCH_DEFAULTS_BROKER_URL pointing at the benchmark's Redis database.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "celery"  # Celery's default queue name
UNACKED_HASH = "unacked"  # kombu's default
PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's default for Redis
SEP = "\x06\x16"  # kombu's default

# set_as_current=False: importing this in the benchmark process (to control the
# worker) must not replace the project's app as Celery's current app.
app = Celery(
    "bench_defaults",
    broker=os.environ.get("BENCH_DEFAULTS_BROKER_URL", "redis://127.0.0.1:6379/9"),
    set_as_current=False,
)
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1


@app.task(name="bench.noop_defaults")
def noop_defaults() -> None:
    """A task that does nothing."""
    return None


def queue_names() -> list[str]:
    """The Redis lists of the default queue, one per default priority step."""
    return [QUEUE if step == 0 else f"{QUEUE}{SEP}{step}" for step in PRIORITY_STEPS]
