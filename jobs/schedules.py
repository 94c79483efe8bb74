"""Default periodic tasks. Each app lists its own in `<app>/schedules.py` as
DEFAULT_SCHEDULES; `manage.py ensure_schedules` creates the missing ones and
never touches a schedule that already exists (the admin owns it then)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    task: str
    every_seconds: int | None = None
    crontab: dict | None = None  # {"minute": "0", "hour": "3"}
    kwargs: dict = field(default_factory=dict)
    # Drop a run that could not start in time, so missed runs do not pile up.
    expire_seconds: int | None = None
    description: str = ""


DEFAULT_SCHEDULES = [
    DefaultSchedule(
        "jobs: sweep lost and waiting jobs",
        "jobs.sweep",
        every_seconds=30,
        expire_seconds=25,
        description="Re-runs jobs whose worker died and publishes jobs the broker never got.",
    ),
    DefaultSchedule(
        "jobs: delete old jobs and results",
        "jobs.prune",
        crontab={"minute": "17", "hour": "3"},
        expire_seconds=3600,
        description="Retention (JOB_RETENTION_* settings).",
    ),
]


def default_schedules() -> list[DefaultSchedule]:
    """DEFAULT_SCHEDULES of every installed project app that has a schedules module."""
    found: list[DefaultSchedule] = []
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.schedules")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedules":
                raise
            continue
        found.extend(getattr(module, "DEFAULT_SCHEDULES", []))
    return found


def schedules_ensure() -> list[str]:
    """Create the default periodic tasks that are missing; return their names."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

    created = []
    with transaction.atomic():
        for schedule in default_schedules():
            if PeriodicTask.objects.filter(name=schedule.name).exists():
                continue
            task = PeriodicTask(
                name=schedule.name,
                task=schedule.task,
                kwargs=json.dumps(schedule.kwargs),
                expire_seconds=schedule.expire_seconds,
                description=schedule.description,
            )
            if schedule.every_seconds:
                task.interval, _ = IntervalSchedule.objects.get_or_create(
                    every=schedule.every_seconds, period=IntervalSchedule.SECONDS
                )
            else:
                task.crontab, _ = CrontabSchedule.objects.get_or_create(**schedule.crontab)
            task.save()
            created.append(schedule.name)
        if created:
            PeriodicTasks.update_changed()
    return created
