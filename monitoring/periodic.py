"""Schedule observability: for each periodic task, when it last ran, when it runs
next (in its own time zone), and how its actual runs compare with the expected ones.

Actual runs are the Job rows beat created (source=schedule, schedule_name=the
task's name), so only tracked kinds have them; plain Celery tasks (the jobs
sweeper, beat's heartbeat) show their last run and run count only.

- crontab schedules: the expected slots in the window are computed from the
  crontab; a slot with no run is *missed*, a run more than
  MONITORING_SCHEDULE_LATE_SECONDS after its slot is *late*, two runs in one
  slot are *run twice*.
- interval schedules: beat re-anchors each run on the previous one, so the
  gaps between runs are judged: a gap under half the interval is *run twice*,
  a gap over 1.5 intervals counts the skipped runs as *missed*, a gap longer
  than the interval plus the tolerance is *late*.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.models import TriggerSource
from jobs.kinds import all_kinds
from jobs.models import Job, JobStatus

WINDOW = timedelta(hours=24)
PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
    IntervalSchedule.MICROSECONDS: 1e-6,
}


def tracked_task_names() -> set[str]:
    return {kind.name for kind in all_kinds()}


def _interval_seconds(task: PeriodicTask) -> float:
    return task.interval.every * PERIOD_SECONDS[task.interval.period]


def _cron_parts(task: PeriodicTask):
    return task.crontab.schedule  # a celery crontab: parsed sets of minutes, hours, days...


def crontab_slots(task: PeriodicTask, start: datetime, end: datetime) -> Iterator[datetime]:
    """The times in [start, end) the task's crontab fires, aware, in the crontab's time zone."""
    cron = _cron_parts(task)
    tz = ZoneInfo(str(task.crontab.timezone))
    day = start.astimezone(tz).date()
    last_day = end.astimezone(tz).date()
    while day <= last_day:
        if _day_matches(cron, day):
            for hour in sorted(cron.hour):
                for minute in sorted(cron.minute):
                    slot = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    if start <= slot < end:
                        yield slot
        day += timedelta(days=1)


def _day_matches(cron, day: date) -> bool:
    # Celery's crontab needs day of month AND day of week to match (0 = Sunday).
    return day.month in cron.month_of_year and day.day in cron.day_of_month and day.isoweekday() % 7 in cron.day_of_week


def task_time_zone(task: PeriodicTask) -> str:
    if task.crontab_id:
        return str(task.crontab.timezone)
    return settings.CELERY_TIMEZONE or settings.TIME_ZONE


def next_run(task: PeriodicTask, *, now: datetime) -> datetime | None:
    """When beat will send the task next (now if it is due), in the task's time zone."""
    if not task.enabled:
        return None
    tz = ZoneInfo(task_time_zone(task))
    if task.one_off and task.total_run_count:
        return None
    if task.start_time and task.start_time > now:
        return task.start_time.astimezone(tz)
    if task.interval_id:
        last = task.last_run_at
        if last is None:
            return now.astimezone(tz)
        return max(last + timedelta(seconds=_interval_seconds(task)), now).astimezone(tz)
    if task.crontab_id:
        return next(crontab_slots(task, now, now + timedelta(days=400)), None)
    return None


def describe_schedule(task: PeriodicTask) -> str:
    if task.interval_id:
        return f"every {task.interval.every} {task.interval.period}"
    if task.crontab_id:
        c = task.crontab
        return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} ({c.timezone})"
    if task.clocked_id:
        return f"once at {task.clocked.clocked_time.isoformat()}"
    if task.solar_id:
        return f"solar {task.solar.event}"
    return "unknown"


def _judge_crontab(task: PeriodicTask, runs: list[datetime], start: datetime, now: datetime, tolerance: float) -> dict:
    slots = list(crontab_slots(task, start, now))
    bounds = [*slots, now]
    late = missed = twice = 0
    for index, slot in enumerate(slots):
        in_slot = [run for run in runs if slot - timedelta(seconds=5) <= run < bounds[index + 1]]
        if not in_slot:
            if (now - slot).total_seconds() > tolerance:
                missed += 1
        elif len(in_slot) > 1:
            twice += 1
        elif (in_slot[0] - slot).total_seconds() > tolerance:
            late += 1
    return {"expected_runs": len(slots), "late": late, "missed": missed, "run_twice": twice}


def _judge_interval(task: PeriodicTask, runs: list[datetime], start: datetime, now: datetime, tolerance: float) -> dict:
    every = _interval_seconds(task)
    late = missed = twice = 0
    for earlier, later in itertools.pairwise(runs):
        gap = (later - earlier).total_seconds()
        if gap < every / 2:
            twice += 1
        elif gap >= 1.5 * every:
            missed += max(round(gap / every) - 1, 1)
        elif gap > every + tolerance:
            late += 1
    if runs:
        overdue = (now - runs[-1]).total_seconds() - every
        if overdue > tolerance:
            missed += max(math.floor(overdue / every), 1)
    expected = math.floor((now - max(start, runs[0] if runs else start)).total_seconds() / every) + (1 if runs else 0)
    return {"expected_runs": expected, "late": late, "missed": missed, "run_twice": twice}


def schedule_report(task: PeriodicTask, *, now: datetime | None = None, tracked: set[str] | None = None) -> dict:
    """Everything known about one periodic task's runs in the last 24 hours."""
    now = now or timezone.now()
    tracked = tracked if tracked is not None else tracked_task_names()
    tz = ZoneInfo(task_time_zone(task))
    upcoming = next_run(task, now=now)
    report = {
        "id": task.pk,
        "name": task.name,
        "task": task.task,
        "enabled": task.enabled,
        "schedule": describe_schedule(task),
        "timezone": str(tz),
        "tracked": task.task in tracked,
        "last_run_at": task.last_run_at.astimezone(tz).isoformat() if task.last_run_at else None,
        "next_run_at": upcoming.isoformat() if upcoming else None,
        "total_run_count": task.total_run_count,
        "window_hours": int(WINDOW.total_seconds() // 3600),
        "expected_runs": None,
        "actual_runs": None,
        "late": None,
        "missed": None,
        "run_twice": None,
        "expired": None,
        "failed": None,
        "last_job": None,
    }
    if not report["tracked"]:
        report["state"] = "disabled" if not task.enabled else ("untracked" if task.last_run_at else "never_run")
        return report
    scheduled = Job.objects.filter(source=TriggerSource.SCHEDULE, schedule_name=task.name)
    jobs = list(
        scheduled.filter(created_at__gte=now - WINDOW)
        .order_by("created_at")
        .values("id", "created_at", "status", "error")
    )
    runs = [job["created_at"] for job in jobs]
    start = _window_start(task, scheduled, runs, now)
    tolerance = float(settings.MONITORING_SCHEDULE_LATE_SECONDS)
    if not task.enabled:
        judged = {"expected_runs": 0, "late": 0, "missed": 0, "run_twice": 0}
    elif task.crontab_id:
        judged = _judge_crontab(task, runs, start, now, tolerance)
    elif task.interval_id:
        judged = _judge_interval(task, runs, start, now, tolerance)
    else:
        judged = {"expected_runs": None, "late": 0, "missed": 0, "run_twice": 0}
    report.update(judged)
    report["actual_runs"] = len(jobs)
    report["expired"] = sum(
        1 for job in jobs if job["status"] == JobStatus.CANCELLED and job["error"].startswith("Expired")
    )
    report["failed"] = sum(1 for job in jobs if job["status"] == JobStatus.FAILED)
    last = jobs[-1] if jobs else None
    report["last_job"] = (
        {"id": str(last["id"]), "status": last["status"], "created_at": last["created_at"].astimezone(tz).isoformat()}
        if last
        else None
    )
    report["state"] = _state(task, report)
    return report


def _window_start(task: PeriodicTask, scheduled, runs: list[datetime], now: datetime) -> datetime:
    """Where expectations start: the window's start, unless the task is younger than the
    window (no run before it), then its first run; never before its start_time."""
    start = now - WINDOW
    if task.start_time and task.start_time > start:
        start = task.start_time
    if runs and not scheduled.filter(created_at__lt=now - WINDOW).exists():
        # include the slot the first run belongs to, even if it ran a little late
        start = max(start, runs[0] - timedelta(seconds=settings.MONITORING_SCHEDULE_LATE_SECONDS))
    if not runs and task.last_run_at is None:
        start = now  # never ran at all: nothing to compare yet
    return start


def _state(task: PeriodicTask, report: dict) -> str:
    if not task.enabled:
        return "disabled"
    if report["missed"]:
        return "missed"
    if report["run_twice"]:
        return "run_twice"
    if report["late"]:
        return "late"
    if not report["actual_runs"] and not task.last_run_at:
        return "never_run"
    return "ok"


def schedules_overview(*, now: datetime | None = None) -> list[dict]:
    """Every periodic task's report, by name."""
    now = now or timezone.now()
    tracked = tracked_task_names()
    tasks = PeriodicTask.objects.select_related("interval", "crontab", "clocked", "solar").order_by("name")
    return [schedule_report(task, now=now, tracked=tracked) for task in tasks]
