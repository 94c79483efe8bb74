#!/usr/bin/env python
"""Healthcheck of the beat container: exit 0 if beat sent a periodic task recently.

Beat has no control channel to ping, so this looks at what it leaves behind:
django-celery-beat writes each task's `last_run_at` to the database when it
syncs (every 3 minutes). The job sweep is due every 30 seconds, so a working
beat always has a recent `last_run_at`; a hung beat, or one that lost its
database, does not.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

# Run as `python deploy/beat_healthcheck.py`: the project root must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_MAX_AGE_SECONDS = 600


def beat_problem(*, latest_run: datetime | None, now: datetime, max_age_seconds: int) -> str | None:
    """What is wrong with beat given its most recent run, or None when it is alive."""
    if latest_run is None:
        return "beat has not sent any enabled periodic task yet"
    age = (now - latest_run).total_seconds()
    if age > max_age_seconds:
        return f"beat sent no periodic task for {age:.0f} s (limit {max_age_seconds} s)"
    return None


def latest_periodic_run() -> datetime | None:
    """The newest `last_run_at` over the enabled periodic tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django_celery_beat.models import PeriodicTask

    return (
        PeriodicTask.objects.filter(enabled=True, last_run_at__isnull=False)
        .order_by("-last_run_at")
        .values_list("last_run_at", flat=True)
        .first()
    )


def main(argv: list[str] | None = None) -> int:
    """Print the verdict; the exit status is what Docker reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MAX_AGE_SECONDS,
        help="Seconds since the last sent task after which beat counts as dead.",
    )
    args = parser.parse_args(argv)
    from django.utils import timezone

    problem = beat_problem(latest_run=latest_periodic_run(), now=timezone.now(), max_age_seconds=args.max_age)
    print(problem or "beat is sending periodic tasks")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
