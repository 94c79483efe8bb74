"""Configuration backup and restore: schedules, alert and policy rules, runtime
budgets, validation rule settings, vendors and (when the emailsync app has them)
mailboxes — never a secret.

The backup is one JSON file keyed by natural keys (names, VAT ids), so it can
be restored into another database: existing rows are updated, missing ones
created, nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from core.actors import Actor
from core.audit import audit_record
from invoices.models import ValidationRuleSetting, Vendor
from monitoring.models import AlertRule, PolicyRule, RuntimeBudget

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SECRET_FIELD = re.compile(r"(password|secret|token|credential|private|_key$|^key$)", re.IGNORECASE)
# Timestamps and run state are not configuration.
SKIPPED_FIELDS = {"id", "created_at", "updated_at", "date_changed", "last_error", "last_sync_at", "needs_attention"}


class BackupInvalid(Exception):
    """The file is not a configuration backup this version can restore; the message says why."""


def _plain_fields(model: type[models.Model]) -> list[str]:
    """Concrete, non-relational fields worth restoring (no ids, timestamps or secrets)."""
    names = []
    for model_field in model._meta.concrete_fields:
        if (
            model_field.is_relation
            or model_field.primary_key
            or not model_field.editable
            or model_field.name in SKIPPED_FIELDS
        ):
            continue
        if SECRET_FIELD.search(model_field.name) or isinstance(model_field, models.BinaryField):
            continue
        names.append(model_field.name)
    return names


def _rows(queryset, fields: list[str]) -> list[dict]:
    return [{name: getattr(obj, name) for name in fields} for obj in queryset]


def _periodic_tasks() -> list[dict]:
    rows = []
    for task in PeriodicTask.objects.select_related("interval", "crontab").order_by("name"):
        row = {
            "name": task.name,
            "task": task.task,
            "enabled": task.enabled,
            "args": task.args,
            "kwargs": task.kwargs,
            "queue": task.queue,
            "priority": task.priority,
            "expire_seconds": task.expire_seconds,
            "one_off": task.one_off,
            "description": task.description,
        }
        if task.interval_id:
            row["interval"] = {"every": task.interval.every, "period": task.interval.period}
        elif task.crontab_id:
            c = task.crontab
            row["crontab"] = {
                "minute": c.minute,
                "hour": c.hour,
                "day_of_week": c.day_of_week,
                "day_of_month": c.day_of_month,
                "month_of_year": c.month_of_year,
                "timezone": str(c.timezone),
            }
        else:
            continue  # clocked and solar schedules are not part of the default configuration
        rows.append(row)
    return rows


def mailbox_model() -> type[models.Model] | None:
    """emailsync's Mailbox model, or None where that app has none (yet)."""
    try:
        return apps.get_model("emailsync", "Mailbox")
    except LookupError:
        return None


def config_backup_data() -> dict:
    """The configuration as one JSON-ready dict."""
    data = {
        "format": "apintake-config",
        "version": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "periodic_tasks": _periodic_tasks(),
        "alert_rules": _rows(AlertRule.objects.order_by("name"), _plain_fields(AlertRule)),
        "policy_rules": _rows(PolicyRule.objects.order_by("name"), _plain_fields(PolicyRule)),
        "runtime_budgets": _rows(RuntimeBudget.objects.order_by("kind"), _plain_fields(RuntimeBudget)),
        "validation_rules": _rows(ValidationRuleSetting.objects.order_by("code"), _plain_fields(ValidationRuleSetting)),
        "vendors": _rows(Vendor.objects.order_by("name", "pk"), _plain_fields(Vendor)),
    }
    mailbox = mailbox_model()
    if mailbox is not None:
        data["mailboxes"] = _rows(mailbox.objects.order_by("pk"), _plain_fields(mailbox))
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def config_backup_write(*, directory: Path | None = None) -> Path:
    """Write a backup file (config-YYYYmmdd-HHMMSS.json) and keep the newest MONITORING_BACKUP_KEEP."""
    directory = Path(directory or settings.MONITORING_BACKUP_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    path = directory / f"config-{stamp}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(config_backup_data(), indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(path)  # a reader never sees half a file
    backups = sorted(directory.glob("config-*.json"))
    for old in backups[: -settings.MONITORING_BACKUP_KEEP] if settings.MONITORING_BACKUP_KEEP > 0 else []:
        old.unlink(missing_ok=True)
    return path


@dataclass
class RestoreSummary:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def count(self, section: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[section] = target.get(section, 0) + 1

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "skipped": self.skipped}


def config_backup_read(path: Path) -> dict:
    """Load and check a backup file; BackupInvalid with the reason otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupInvalid(f"No such file: {path}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupInvalid(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != "apintake-config":
        raise BackupInvalid(f"{path} is not an AP Intake configuration backup.")
    if data.get("version") != FORMAT_VERSION:
        raise BackupInvalid(f"{path} has format version {data.get('version')}; this version restores {FORMAT_VERSION}.")
    return data


def _alert_rule_problem(values: dict) -> str | None:
    """The rule's own validation (AlertRule.clean: the webhook URL check among others)."""
    rule = AlertRule.objects.filter(name=values.get("name")).first() or AlertRule()
    for name, value in values.items():
        setattr(rule, name, value)
    try:
        rule.full_clean(validate_unique=False)
    except ValidationError as exc:
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return None


def _mailbox_problem(values: dict) -> str | None:
    """emailsync's own check of a mailbox's host and security (internal hosts, plain IMAP)."""
    from emailsync.errors import MailboxDNSError
    from emailsync.services import MailboxInvalid, mailbox_validate_settings

    try:
        port = values.get("port")
        mailbox_validate_settings(
            host=str(values.get("host") or ""),
            security=str(values.get("security") or "ssl"),
            port=port if isinstance(port, int) else None,
        )
    except MailboxInvalid as exc:
        if isinstance(exc.__cause__, MailboxDNSError):
            return None  # no DNS here and now is no danger: the host is checked again before each connection
        return str(exc)
    return None


# A restored row is checked by the owning app's rules before it is written: a backup file
# is input like any other (a webhook to file:///etc/hostname, a mailbox on 10.0.0.5).
ROW_CHECKS = {"alert_rules": _alert_rule_problem, "mailboxes": _mailbox_problem}


def _restore_plain(model, rows: list[dict], key: str, section: str, summary: RestoreSummary) -> None:
    allowed = set(_plain_fields(model))
    check = ROW_CHECKS.get(section)
    for row in rows:
        values = {name: value for name, value in row.items() if name in allowed}
        if key not in values:
            summary.skipped.append(f"{section}: a row without {key}")
            continue
        problem = check(values) if check else None
        if problem:
            summary.skipped.append(f"{section} {values[key]}: refused, {problem}"[:500])
            logger.warning("Restore refused %s %r: %s", section, values[key], problem)
            continue
        lookup = {key: values.pop(key)}
        try:
            with transaction.atomic():
                _, created = model.objects.update_or_create(**lookup, defaults=values)
        except IntegrityError as exc:
            summary.skipped.append(f"{section} {lookup[key]}: {exc}".splitlines()[0][:300])
            continue
        summary.count(section, created)


def _restore_vendors(rows: list[dict], summary: RestoreSummary) -> None:
    allowed = set(_plain_fields(Vendor))
    for row in rows:
        values = {name: value for name, value in row.items() if name in allowed}
        if values.get("approval_limit") is not None:
            values["approval_limit"] = Decimal(str(values["approval_limit"]))
        lookup = {"vat_id": values.pop("vat_id")} if row.get("vat_id") else {"name": values.pop("name"), "vat_id": ""}
        existing = Vendor.objects.filter(**lookup).order_by("pk").first()
        if existing is None:
            Vendor.objects.create(**lookup, **values)
            summary.count("vendors", True)
        else:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
            summary.count("vendors", False)


def _restore_periodic_tasks(rows: list[dict], summary: RestoreSummary) -> None:
    for row in rows:
        values = {
            name: row.get(name)
            for name in (
                "task",
                "enabled",
                "args",
                "kwargs",
                "queue",
                "priority",
                "expire_seconds",
                "one_off",
                "description",
            )
        }
        values["interval"] = values["crontab"] = None
        if "interval" in row:
            values["interval"], _ = IntervalSchedule.objects.get_or_create(**row["interval"])
        elif "crontab" in row:
            values["crontab"], _ = CrontabSchedule.objects.get_or_create(**row["crontab"])
        else:
            summary.skipped.append(f"periodic task {row.get('name')}: no interval or crontab")
            continue
        _, created = PeriodicTask.objects.update_or_create(name=row["name"], defaults=values)
        summary.count("periodic_tasks", created)
    PeriodicTasks.update_changed()  # beat re-reads the schedules


def config_restore(*, data: dict, actor: Actor | None = None, dry_run: bool = False) -> RestoreSummary:
    """Create or update every row of the backup (atomically) and audit the restore with its
    summary; with dry_run, roll back and only report. Rows are checked by their owning
    app's rules first (ROW_CHECKS)."""
    summary = RestoreSummary()
    with transaction.atomic():
        _restore_periodic_tasks(data.get("periodic_tasks", []), summary)
        _restore_plain(AlertRule, data.get("alert_rules", []), "name", "alert_rules", summary)
        _restore_plain(PolicyRule, data.get("policy_rules", []), "name", "policy_rules", summary)
        _restore_plain(RuntimeBudget, data.get("runtime_budgets", []), "kind", "runtime_budgets", summary)
        _restore_plain(ValidationRuleSetting, data.get("validation_rules", []), "code", "validation_rules", summary)
        _restore_vendors(data.get("vendors", []), summary)
        if "mailboxes" in data:
            mailbox = mailbox_model()
            if mailbox is None:
                summary.skipped.append("mailboxes: this installation has no emailsync Mailbox model")
            elif "name" not in _plain_fields(mailbox):
                summary.skipped.append("mailboxes: the Mailbox model has no name to match rows by")
            else:
                _restore_plain(mailbox, data["mailboxes"], "name", "mailboxes", summary)
        if dry_run:
            transaction.set_rollback(True)
        else:
            audit_record(actor=actor or Actor.system(), action="config.restore", details=summary.as_dict())
    return summary
