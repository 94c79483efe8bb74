"""Reads for the status endpoint and the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs.models import Job, JobStatus
from jobs.selectors import job_time_left
from monitoring.models import Alert, AlertStatus, HealthSnapshot, PolicyRule, ScanRun
from monitoring.periodic import next_run

SCAN_TASK = "monitoring.compliance_scan"


def monitoring_status(*, now: datetime | None = None) -> dict:
    """The compliance monitoring status, exactly the fields of GET /api/v1/monitoring/status/.

    Monitoring is active when a compliance scan schedule is enabled and at least one
    policy rule is enabled. `last_scan_time` is when the latest scan started.
    """
    now = now or timezone.now()
    last = ScanRun.objects.order_by("-started_at").first()
    schedules = list(PeriodicTask.objects.filter(task=SCAN_TASK, enabled=True).select_related("interval", "crontab"))
    upcoming = [when for when in (next_run(task, now=now) for task in schedules) if when is not None]
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "is_monitoring_active": bool(schedules) and PolicyRule.objects.filter(enabled=True).exists(),
        "last_scan_time": last.started_at.isoformat() if last else None,
        "last_scan_status": last.status if last else None,
        "violations_found_last_scan": last.violations_found if last else None,
        "records_scanned_last_scan": last.records_scanned if last else None,
        "total_scans_today": ScanRun.objects.filter(started_at__gte=midnight).count(),
        "next_scheduled_scan": min(upcoming).isoformat() if upcoming else None,
    }


def running_jobs(*, limit: int = 20) -> list[dict]:
    """Jobs running now, oldest first, with progress and time left."""
    jobs = Job.objects.filter(status=JobStatus.RUNNING).order_by("started_at")[:limit]
    now = timezone.now()
    return [
        {
            "id": str(job.pk),
            "kind": job.kind,
            "queue": job.queue,
            "worker": job.worker,
            "subject": job.subject_label,
            "message": job.progress_message,
            "percent": job.progress_percent,
            "done": job.progress_done,
            "total": job.progress_total,
            "running_seconds": round((now - job.started_at).total_seconds(), 1) if job.started_at else None,
            "time_left_seconds": _round(job_time_left(job, now=now)),
        }
        for job in jobs
    ]


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def open_alerts(*, limit: int = 50) -> list[Alert]:
    return list(Alert.objects.filter(status=AlertStatus.FIRING).select_related("rule").order_by("-fired_at")[:limit])


def latest_scans(*, limit: int = 10) -> list[ScanRun]:
    return list(ScanRun.objects.order_by("-started_at")[:limit])


def hourly_job_counts(*, now: datetime | None = None, hours: int = 24) -> list[dict]:
    """Finished jobs per hour for the last `hours` hours (oldest first): succeeded and failed."""
    now = now or timezone.now()
    current_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    start = current_hour - timedelta(hours=hours - 1)
    rows = (
        Job.objects.filter(finished_at__gte=start, finished_at__lte=now)
        .annotate(hour=TruncHour("finished_at", tzinfo=timezone.get_current_timezone()))
        .values("hour")
        .annotate(
            succeeded=Count("id", filter=Q(status=JobStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
        )
        .order_by("hour")
    )
    by_hour = {timezone.localtime(row["hour"]).replace(minute=0): row for row in rows}
    buckets = []
    for offset in range(hours):
        hour = start + timedelta(hours=offset)
        row = by_hour.get(hour, {})
        buckets.append({"hour": hour, "succeeded": row.get("succeeded", 0), "failed": row.get("failed", 0)})
    return buckets


def health_history(*, now: datetime | None = None, hours: int = 24) -> list[HealthSnapshot]:
    now = now or timezone.now()
    return list(HealthSnapshot.objects.filter(created_at__gte=now - timedelta(hours=hours)).order_by("created_at"))
