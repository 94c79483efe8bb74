"""Maintenance done on a schedule: health and worker snapshots, temporary file
clean-up, and the system report."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from jobs.models import Job, JobStatus
from monitoring.health import health_report
from monitoring.models import (
    Alert,
    AlertStatus,
    HealthSnapshot,
    PolicyRule,
    ScanRun,
    SystemReport,
    ViolationStatus,
    WorkerSnapshot,
)
from monitoring.queues import queue_overview
from monitoring.workers import workers_overview

logger = logging.getLogger(__name__)


def _prune_before() -> datetime:
    return timezone.now() - timedelta(days=settings.MONITORING_HISTORY_DAYS)


def health_snapshot_record() -> HealthSnapshot:
    """Run the health checks, keep the verdicts as history, drop history past MONITORING_HISTORY_DAYS."""
    report = health_report()
    snapshot = HealthSnapshot.objects.create(
        healthy=report.healthy, duration_ms=report.duration_ms, checks=[check.as_dict() for check in report.checks]
    )
    HealthSnapshot.objects.filter(created_at__lt=_prune_before()).delete()
    return snapshot


def worker_snapshot_record() -> list[WorkerSnapshot]:
    """Ask every worker (waiting the whole timeout, so new workers are found) and keep one row per worker."""
    overview = workers_overview(discover=True)
    snapshots = []
    for worker in overview["workers"]:
        previous = (
            WorkerSnapshot.objects.filter(hostname=worker["hostname"], online=True).order_by("-created_at").first()
        )
        processed = worker.get("processed") or 0
        delta = None
        if previous is not None and worker["online"] and processed >= previous.processed:
            delta = processed - previous.processed  # a restarted worker counts from zero again
        snapshots.append(
            WorkerSnapshot.objects.create(
                hostname=worker["hostname"][:200],
                online=worker["online"],
                pid=worker.get("pid"),
                concurrency=worker.get("concurrency"),
                queues=worker.get("queues") or [],
                active=worker.get("active_count") or 0,
                processed=processed,
                processed_since_last=delta,
            )
        )
    WorkerSnapshot.objects.filter(created_at__lt=_prune_before()).delete()
    return snapshots


# --- temporary files ------------------------------------------------------------------------


def temporary_directories() -> list[Path]:
    """Where temporary files live: VAR_DIR/tmp, MEDIA_ROOT/tmp, and what an interrupted
    storage health check may leave (MEDIA_ROOT/health_check_storage_test)."""
    media = Path(settings.MEDIA_ROOT)
    return [Path(settings.VAR_DIR) / "tmp", media / "tmp", media / "health_check_storage_test"]


@dataclass
class CleanupResult:
    files_deleted: int = 0
    bytes_freed: int = 0
    directories_removed: int = 0
    errors: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def temp_files_cleanup(*, older_than: timedelta) -> CleanupResult:
    """Delete files in the temporary directories not modified for `older_than`, then empty
    sub-directories. Symbolic links are removed, never followed."""
    cutoff = (timezone.now() - older_than).timestamp()
    result = CleanupResult()
    for root in temporary_directories():
        if not root.is_dir() or root.is_symlink():
            continue
        for directory, subdirectories, files in os.walk(root, topdown=False, followlinks=False):
            for name in files + [d for d in subdirectories if (Path(directory) / d).is_symlink()]:
                path = Path(directory) / name
                try:
                    info = path.lstat()
                    if info.st_mtime < cutoff:
                        path.unlink()
                        result.files_deleted += 1
                        result.bytes_freed += info.st_size
                except OSError as exc:
                    logger.warning("Could not delete temporary file %s: %s", path, exc)
                    result.errors += 1
            if Path(directory) != root:
                try:
                    Path(directory).rmdir()  # only succeeds when empty
                    result.directories_removed += 1
                except OSError:
                    pass
    return result


# --- system report ----------------------------------------------------------------------------


def system_report_data(*, hours: int, now: datetime | None = None) -> dict:
    """Jobs, queues, workers, health, alerts, compliance and disk over the last `hours`."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    finished = Job.objects.filter(finished_at__gte=since, finished_at__lte=now)
    by_kind = list(
        finished.values("kind")
        .annotate(
            succeeded=Count("id", filter=Q(status=JobStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
            cancelled=Count("id", filter=Q(status=JobStatus.CANCELLED)),
        )
        .order_by("kind")
    )
    health = health_report()
    disk = shutil.disk_usage(_existing(Path(settings.MEDIA_ROOT)))
    last_scan = ScanRun.objects.order_by("-started_at").first()
    return {
        "generated_at": now.isoformat(),
        "period_hours": hours,
        "since": since.isoformat(),
        "jobs": {
            "by_kind": by_kind,
            "total_finished": sum(r["succeeded"] + r["failed"] + r["cancelled"] for r in by_kind),
            "failed": sum(r["failed"] for r in by_kind),
            "dead_letters_total": Job.objects.filter(is_dead_letter=True).count(),
            "dead_letters_new": finished.filter(is_dead_letter=True).count(),
        },
        "queues": queue_overview(now=now)["queues"],
        "workers": [
            {
                "hostname": w["hostname"],
                "online": w["online"],
                "processed": w.get("processed"),
                "concurrency": w.get("concurrency"),
            }
            for w in workers_overview()["workers"]
        ],
        "health": health.as_dict(),
        "alerts": {
            "fired": Alert.objects.filter(fired_at__gte=since).count(),
            "resolved": Alert.objects.filter(resolved_at__gte=since).count(),
            "firing": [
                {"rule": a.rule.name, "key": a.key, "message": a.message, "since": a.fired_at.isoformat()}
                for a in Alert.objects.filter(status=AlertStatus.FIRING).select_related("rule")[:50]
            ],
        },
        "compliance": {
            "scans": ScanRun.objects.filter(started_at__gte=since).count(),
            "failed_scans": ScanRun.objects.filter(started_at__gte=since, status=ScanRun.Status.FAILED).count(),
            "last_scan": {
                "status": last_scan.status,
                "started_at": last_scan.started_at.isoformat(),
                "violations_found": last_scan.violations_found,
            }
            if last_scan
            else None,
            "open_violations": [
                {"rule": row["name"], "open": row["open"]}
                for row in PolicyRule.objects.annotate(
                    open=Count("violations", filter=Q(violations__status=ViolationStatus.OPEN))
                ).values("name", "open")
            ],
        },
        "disk": {"free_mb": round(disk.free / 1024 / 1024), "total_mb": round(disk.total / 1024 / 1024)},
    }


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def system_report_create(*, hours: int = 12) -> SystemReport:
    """Build, store and (when ADMIN_EMAILS is set) email the system report."""
    data = system_report_data(hours=hours)
    text = render_to_string("monitoring/report.txt", {"data": data})
    report = SystemReport.objects.create(period_hours=hours, data=data, text=text)
    recipients = [address for _, address in settings.ADMINS]
    if recipients:
        html = render_to_string("monitoring/report_email.html", {"data": data, "report": report})
        try:
            mail_admins(f"System report, last {hours} h", text, html_message=html, fail_silently=False)
            report.emailed_to = recipients
        except Exception as exc:  # the stored report is what matters; say why it was not mailed
            logger.warning("System report %s could not be emailed: %s", report.pk, exc)
            report.email_error = f"{type(exc).__name__}: {exc}"[:2000]
        report.save(update_fields=["emailed_to", "email_error"])
    return report
