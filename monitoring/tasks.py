"""Monitoring job kinds (queue "maintenance"). Thin: each calls one service.

The beat heartbeat is a plain Celery task on purpose: it is what tells us that
beat (and the maintenance worker) are alive, so it must not depend on the
tracking it helps to watch.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from jobs.registry import job_kind
from monitoring.alerts import alerts_evaluate
from monitoring.backup import config_backup_write
from monitoring.compliance import compliance_scan_run, scan_outcome
from monitoring.maintenance import (
    health_snapshot_record,
    system_report_create,
    temp_files_cleanup,
    worker_snapshot_record,
)
from monitoring.models import Heartbeat, ScanRun


@shared_task(
    name="monitoring.beat_heartbeat",
    queue="maintenance",
    ignore_result=True,
    acks_late=False,
    soft_time_limit=20,
    time_limit=30,
)
def beat_heartbeat() -> None:
    """Record that beat sent this task just now (read by the `beat` health check)."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"beat_at": timezone.now()})


class ScanParams(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=ScanRun.Mode.choices,
        default=ScanRun.Mode.INCREMENTAL,
        help_text="incremental: only what changed since the last scan; full: everything.",
    )


@job_kind(
    "monitoring.compliance_scan",
    label="Compliance scan",
    queue="maintenance",
    priority=6,
    params=ScanParams,
    permission="monitoring.run_scan",
    unique_key="monitoring.compliance_scan",
    soft_time_limit=1800,
    time_limit=1900,
    max_attempts=2,
)
def compliance_scan(job, *, mode: str) -> dict:
    """Check the stored invoices against the policy rules."""
    return scan_outcome(compliance_scan_run(mode=mode, job_id=job.id, progress=job.progress))


@job_kind(
    "monitoring.evaluate_alerts",
    label="Evaluate alert rules",
    queue="maintenance",
    priority=3,
    staff_only=True,
    unique_key="monitoring.evaluate_alerts",
    soft_time_limit=100,
    time_limit=110,
    max_attempts=1,
)
def evaluate_alerts(job) -> dict:
    """Fire and resolve alerts, notify on changes."""
    return alerts_evaluate().as_dict()


@job_kind(
    "monitoring.health_snapshot",
    label="Health snapshot",
    queue="maintenance",
    priority=7,
    staff_only=True,
    unique_key="monitoring.health_snapshot",
    soft_time_limit=60,
    time_limit=70,
    max_attempts=1,
)
def health_snapshot(job) -> dict:
    """Keep the health checks' verdicts as history."""
    snapshot = health_snapshot_record()
    return {"healthy": snapshot.healthy, "failing": [c["name"] for c in snapshot.checks if not c["ok"]]}


@job_kind(
    "monitoring.worker_snapshot",
    label="Worker performance snapshot",
    queue="maintenance",
    priority=7,
    staff_only=True,
    unique_key="monitoring.worker_snapshot",
    soft_time_limit=60,
    time_limit=70,
    max_attempts=1,
)
def worker_snapshot(job) -> dict:
    """Keep each worker's processed count and load as history."""
    snapshots = worker_snapshot_record()
    return {"workers": len(snapshots), "online": sum(1 for s in snapshots if s.online)}


class CleanupParams(serializers.Serializer):
    older_than_hours = serializers.IntegerField(
        min_value=1, max_value=24 * 3650, default=24, help_text="Delete files older than this (at most ten years)."
    )


@job_kind(
    "monitoring.cleanup_temp_files",
    label="Delete temporary files",
    queue="maintenance",
    priority=8,
    params=CleanupParams,
    staff_only=True,
    unique_key="monitoring.cleanup_temp_files",
    soft_time_limit=600,
    time_limit=660,
)
def cleanup_temp_files(job, *, older_than_hours: int) -> dict:
    """Delete old files under VAR_DIR/tmp and MEDIA_ROOT/tmp."""
    return temp_files_cleanup(older_than=timedelta(hours=older_than_hours)).as_dict()


class ReportParams(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1, max_value=24 * 31, default=12, help_text="Period covered.")


@job_kind(
    "monitoring.system_report",
    label="System report",
    queue="maintenance",
    priority=7,
    params=ReportParams,
    staff_only=True,
    unique_key="monitoring.system_report",
    soft_time_limit=300,
    time_limit=330,
)
def system_report(job, *, hours: int) -> dict:
    """Store the system report and email it to ADMIN_EMAILS."""
    report = system_report_create(hours=hours)
    return {"report_id": report.pk, "emailed_to": report.emailed_to, "email_error": report.email_error}


@job_kind(
    "monitoring.backup_config",
    label="Configuration backup",
    queue="maintenance",
    priority=7,
    staff_only=True,
    unique_key="monitoring.backup_config",
    soft_time_limit=300,
    time_limit=330,
)
def backup_config(job) -> dict:
    """Write the configuration to a JSON file in MONITORING_BACKUP_DIR."""
    path = config_backup_write()
    return {"path": str(path), "bytes": path.stat().st_size, "directory": str(settings.MONITORING_BACKUP_DIR)}
