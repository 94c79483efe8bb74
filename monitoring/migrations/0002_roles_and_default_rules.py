from decimal import Decimal

from django.db import migrations

from core.roles import grant_role_permissions, role_permissions

DEFAULT_ALERT_RULES = [
    {"name": "Queue backlog over 1,000", "kind": "queue_backlog", "threshold": 1000, "severity": "warning"},
    {"name": "Oldest waiting job older than 15 minutes", "kind": "oldest_waiting", "threshold": 900,
     "severity": "warning"},
    {"name": "Failure rate over 20 % in an hour", "kind": "failure_rate", "threshold": 20, "window_minutes": 60,
     "min_jobs": 5, "severity": "warning"},
    {"name": "New dead letters in the last hour", "kind": "dead_letters_growing", "threshold": 0,
     "window_minutes": 60, "severity": "warning"},
    {"name": "No worker answering", "kind": "workers_below", "threshold": 1, "severity": "critical"},
    {"name": "Beat stale", "kind": "beat_stale", "threshold": None, "severity": "critical"},
    {"name": "Job running past its time budget", "kind": "job_over_budget", "threshold": None,
     "severity": "warning"},
    {"name": "Health check failing", "kind": "health_check_failing", "threshold": None, "severity": "critical"},
]

DEFAULT_POLICY_RULES = [
    {"name": "Over approval limit without approval", "kind": "over_approval_limit", "severity": "critical"},
    {"name": "Invoice from a blocked vendor", "kind": "blocked_vendor", "severity": "critical"},
    {"name": "No purchase order above 5,000.00", "kind": "missing_po", "amount": Decimal("5000.00")},
    {"name": "Vendor requires a purchase order", "kind": "vendor_requires_po"},
    {"name": "Suspected duplicate invoice", "kind": "suspected_duplicate", "severity": "critical"},
    {"name": "Overdue and not exported", "kind": "overdue_not_exported", "days": 0},
    {"name": "Payment IBAN differs from vendor master", "kind": "iban_mismatch", "severity": "critical"},
    {"name": "Unknown vendor above 1,000.00", "kind": "unknown_vendor", "amount": Decimal("1000.00")},
]


def create_defaults(apps, schema_editor):
    grant_role_permissions(apps, role_permissions())
    AlertRule = apps.get_model("monitoring", "AlertRule")
    PolicyRule = apps.get_model("monitoring", "PolicyRule")
    for rule in DEFAULT_ALERT_RULES:
        AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)
    for rule in DEFAULT_POLICY_RULES:
        PolicyRule.objects.get_or_create(name=rule["name"], defaults=rule)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial"), ("jobs", "0002_roles"), ("invoices", "0002_roles")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
