"""Default periodic tasks of monitoring (created by `manage.py ensure_schedules`)."""

from django.conf import settings

from jobs.schedules import DefaultSchedule

HEARTBEAT_SECONDS = settings.MONITORING_BEAT_HEARTBEAT_SECONDS

DEFAULT_SCHEDULES = [
    DefaultSchedule(
        "monitoring: beat heartbeat",
        "monitoring.beat_heartbeat",
        every_seconds=HEARTBEAT_SECONDS,
        expire_seconds=max(HEARTBEAT_SECONDS - 5, 5),
        description="Proves beat is alive; the `beat` health check reads it.",
    ),
    DefaultSchedule(
        "monitoring: evaluate alert rules",
        "monitoring.evaluate_alerts",
        every_seconds=60,
        expire_seconds=55,
        description="Fires and resolves alerts; notifies on changes.",
    ),
    DefaultSchedule(
        "monitoring: compliance scan (incremental)",
        "monitoring.compliance_scan",
        every_seconds=300,
        expire_seconds=280,
        kwargs={"mode": "incremental"},
        description="Checks invoices and rules changed since the last scan.",
    ),
    DefaultSchedule(
        "monitoring: compliance scan (full, daily)",
        "monitoring.compliance_scan",
        crontab={"minute": "40", "hour": "2"},
        expire_seconds=3600,
        kwargs={"mode": "full"},
        description="Checks every invoice against every rule.",
    ),
    DefaultSchedule(
        "monitoring: health snapshot",
        "monitoring.health_snapshot",
        every_seconds=300,
        expire_seconds=280,
        description="Keeps the health checks' verdicts as history.",
    ),
    DefaultSchedule(
        "monitoring: worker snapshot",
        "monitoring.worker_snapshot",
        every_seconds=1800,
        expire_seconds=1700,
        description="Keeps each worker's processed count and load.",
    ),
    DefaultSchedule(
        "monitoring: delete temporary files",
        "monitoring.cleanup_temp_files",
        every_seconds=6 * 3600,
        expire_seconds=3600,
        kwargs={"older_than_hours": 24},
        description="Files older than 24 h under VAR_DIR/tmp and MEDIA_ROOT/tmp.",
    ),
    DefaultSchedule(
        "monitoring: system report",
        "monitoring.system_report",
        every_seconds=12 * 3600,
        expire_seconds=3600,
        kwargs={"hours": 12},
        description="Stored, and emailed to ADMIN_EMAILS.",
    ),
    DefaultSchedule(
        "monitoring: configuration backup",
        "monitoring.backup_config",
        crontab={"minute": "10", "hour": "1"},
        expire_seconds=3600,
        description="JSON file in MONITORING_BACKUP_DIR; restore with manage.py restore_config.",
    ),
]
