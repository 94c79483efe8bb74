"""Configuration backup and restore: schedules, alert and policy rules, runtime
budgets, validation rule settings, vendors, mailboxes, event webhook subscriptions
and review digests — never a secret.

The backup is one JSON file keyed by natural keys (names, VAT ids), so it can
be restored into another database: existing rows are updated, missing ones
created, nothing is deleted.

A restore writes each row through its owning app's save service, the one the admin
and the API use: a restored row is checked and audited exactly like one saved by
hand (a backup file is input like any other: a webhook to file:///etc/hostname, a
mailbox on 10.0.0.5, a malformed IBAN), and a row a service refuses is skipped with
its message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from core.actors import Actor
from core.audit import audit_record
from core.errors import ApplicationError, Invalid
from core.saves import validation_message
from emailsync.models import Mailbox
from emailsync.services import MAILBOX_FIELDS, mailbox_save
from events.models import EventSubscription, ReviewDigest
from events.services import REVIEW_DIGEST_FIELDS, review_digest_save, subscription_save
from invoices.models import ValidationRuleSetting, Vendor
from invoices.services import VALIDATION_RULE_SETTING_FIELDS, VENDOR_FIELDS, validation_rule_setting_save, vendor_save
from jobs.services import schedule_save, schedule_timing
from monitoring.models import AlertRule, PolicyRule, RuntimeBudget
from monitoring.services import (
    ALERT_RULE_FIELDS,
    POLICY_RULE_FIELDS,
    RUNTIME_BUDGET_FIELDS,
    alert_rule_save,
    policy_rule_save,
    runtime_budget_save,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SECRET_FIELD = re.compile(r"(password|secret|token|credential|private|_key$|^key$)", re.IGNORECASE)
# Timestamps and run state are not configuration.
SKIPPED_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "date_changed",
    "last_error",
    "last_sync_at",
    "needs_attention",
    "reconnect_required",
}
PERIODIC_TASK_FIELDS = (
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
SUBSCRIPTION_FIELDS = ("name", "url", "events", "slack_compatible", "enabled")
RESTORE_REASON = "configuration restore"


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


def _event_subscriptions() -> list[dict]:
    """Webhook subscriptions without their signing secret; a Slack-compatible one also without
    its URL (an incoming-webhook URL is itself the credential: whoever has it may post)."""
    rows = _rows(EventSubscription.objects.order_by("name", "pk"), list(SUBSCRIPTION_FIELDS))
    for row in rows:
        if row["slack_compatible"]:
            del row["url"]
    return rows


def _review_digests() -> list[dict]:
    return [
        {"name": digest.name, "group": digest.group.name, "enabled": digest.enabled}
        for digest in ReviewDigest.objects.select_related("group").order_by("name", "pk")
    ]


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
        "mailboxes": _rows(Mailbox.objects.order_by("pk"), _plain_fields(Mailbox)),
        "event_subscriptions": _event_subscriptions(),
        "review_digests": _review_digests(),
    }
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
    notes: list[str] = field(default_factory=list)

    def count(self, section: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[section] = target.get(section, 0) + 1

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "skipped": self.skipped, "notes": self.notes}


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


def _refusal(exc: Exception) -> str:
    if isinstance(exc, ApplicationError):
        return exc.message
    if isinstance(exc, ValidationError):
        return validation_message(exc)
    return str(exc).splitlines()[0]  # an IntegrityError: a row written meanwhile


def _apply(summary: RestoreSummary, section: str, label, save: Callable[[], object], *, created: bool) -> None:
    """One row through its save service, in a savepoint: refused, it is skipped with the service's
    message and leaves nothing behind."""
    try:
        with transaction.atomic():
            save()
    except (ApplicationError, ValidationError, IntegrityError) as exc:
        problem = _refusal(exc)
        summary.skipped.append(f"{section} {label}: refused, {problem}"[:500])
        logger.warning("Restore refused %s %r: %s", section, label, problem)
        return
    summary.count(section, created)


def _restore_by_key(
    rows: list[dict],
    *,
    section: str,
    model: type[models.Model],
    key: str,
    fields: tuple[str, ...],
    save: Callable[[models.Model | None, dict], object],
    summary: RestoreSummary,
) -> None:
    """Rows matched by `key`: `save(existing or None, values)` calls the owning app's service."""
    for row in rows:
        values = {name: row[name] for name in (key, *fields) if name in row}
        if not values.get(key):
            summary.skipped.append(f"{section}: a row without {key}")
            continue
        existing = model._default_manager.filter(**{key: values[key]}).order_by("pk").first()
        _apply(summary, section, values[key], partial(save, existing, values), created=existing is None)


def _restore_periodic_tasks(rows: list[dict], actor: Actor, summary: RestoreSummary) -> None:
    def save(existing, row) -> PeriodicTask:
        timing = schedule_timing(interval=row.get("interval"), crontab=row.get("crontab"))
        fields = {name: row[name] for name in PERIODIC_TASK_FIELDS if name in row}
        return schedule_save(
            actor=actor, schedule=existing, reason=RESTORE_REASON, name=row["name"], **fields, **timing
        )

    _restore_by_key(
        rows,
        section="periodic_tasks",
        model=PeriodicTask,
        key="name",
        fields=(*PERIODIC_TASK_FIELDS, "interval", "crontab"),
        save=save,
        summary=summary,
    )
    PeriodicTasks.update_changed()  # beat re-reads the schedules


def _restore_vendors(rows: list[dict], actor: Actor, summary: RestoreSummary) -> None:
    """Vendors are matched by VAT id, or by name among those without one."""
    for row in rows:
        values = {name: row[name] for name in VENDOR_FIELDS if name in row}
        lookup = {"vat_id": values["vat_id"]} if values.get("vat_id") else {"name": values.get("name"), "vat_id": ""}
        existing = Vendor.objects.filter(**lookup).order_by("pk").first()
        _apply(
            summary,
            "vendors",
            values.get("vat_id") or values.get("name"),
            partial(vendor_save, actor=actor, vendor=existing, reason=RESTORE_REASON, **values),
            created=existing is None,
        )


def _restore_validation_rules(rows: list[dict], actor: Actor, summary: RestoreSummary) -> None:
    def save(existing, values) -> ValidationRuleSetting:
        fields = {name: values[name] for name in VALIDATION_RULE_SETTING_FIELDS if name in values}
        return validation_rule_setting_save(actor=actor, code=values["code"], reason=RESTORE_REASON, **fields)

    _restore_by_key(
        rows,
        section="validation_rules",
        model=ValidationRuleSetting,
        key="code",
        fields=VALIDATION_RULE_SETTING_FIELDS,
        save=save,
        summary=summary,
    )


def _restore_subscriptions(rows: list[dict], actor: Actor, summary: RestoreSummary) -> None:
    def save(existing, values) -> EventSubscription:
        if existing is None and not values.get("url"):
            raise Invalid("no URL in the backup (a Slack webhook URL is a credential); add the subscription by hand.")
        subscription = existing or EventSubscription()
        for name, value in values.items():
            setattr(subscription, name, value)
        subscription, _ = subscription_save(subscription=subscription, actor=actor, reason=RESTORE_REASON)
        if existing is None:
            summary.notes.append(
                f"event_subscriptions {subscription.name}: created with a new signing secret; set the receiver's "
                "secret in the admin (New secret) before it can check signatures."
            )
        return subscription

    _restore_by_key(
        rows,
        section="event_subscriptions",
        model=EventSubscription,
        key="name",
        fields=SUBSCRIPTION_FIELDS,
        save=save,
        summary=summary,
    )


def _restore_review_digests(rows: list[dict], actor: Actor, summary: RestoreSummary) -> None:
    def save(existing, values) -> ReviewDigest:
        fields = {name: values[name] for name in REVIEW_DIGEST_FIELDS if name in values}
        if "group" in fields:
            group = Group.objects.filter(name=fields["group"]).first()
            if group is None:
                raise Invalid(f"there is no group {fields['group']!r}.")
            fields["group"] = group
        return review_digest_save(actor=actor, digest=existing, reason=RESTORE_REASON, **fields)

    _restore_by_key(
        rows,
        section="review_digests",
        model=ReviewDigest,
        key="name",
        fields=REVIEW_DIGEST_FIELDS,
        save=save,
        summary=summary,
    )


def _service_save(service: Callable[..., models.Model], target: str, actor: Actor, **options):
    """`save(existing, values)` for a service shaped `service(actor=, <target>=existing, **fields)`."""
    return lambda existing, values: service(
        actor=actor, reason=RESTORE_REASON, **{target: existing}, **options, **values
    )


def config_restore(*, data: dict, actor: Actor | None = None, dry_run: bool = False) -> RestoreSummary:
    """Create or update every row of the backup through its app's save service (checked and
    audited as a save by `actor`; a refused row is skipped with the service's message), all
    in one transaction, and audit the restore with its summary (config.restore). With
    dry_run, roll everything back (rows and audit entries) and only report."""
    actor = actor or Actor.system()
    summary = RestoreSummary()
    # (section, model, key, fields, save) of the rows that go through a service as they are.
    plain = [
        ("alert_rules", AlertRule, "name", ALERT_RULE_FIELDS, _service_save(alert_rule_save, "rule", actor)),
        ("policy_rules", PolicyRule, "name", POLICY_RULE_FIELDS, _service_save(policy_rule_save, "rule", actor)),
        (
            "runtime_budgets",
            RuntimeBudget,
            "kind",
            RUNTIME_BUDGET_FIELDS,
            _service_save(runtime_budget_save, "budget", actor),
        ),
        # A host name that does not resolve here (yet) is no danger: it is checked before each connection.
        (
            "mailboxes",
            Mailbox,
            "name",
            MAILBOX_FIELDS,
            _service_save(mailbox_save, "mailbox", actor, require_resolvable=False),
        ),
    ]
    with transaction.atomic():
        _restore_periodic_tasks(data.get("periodic_tasks", []), actor, summary)
        for section, model, key, fields, save in plain:
            _restore_by_key(
                data.get(section, []), section=section, model=model, key=key, fields=fields, save=save, summary=summary
            )
        _restore_validation_rules(data.get("validation_rules", []), actor, summary)
        _restore_vendors(data.get("vendors", []), actor, summary)
        _restore_subscriptions(data.get("event_subscriptions", []), actor, summary)
        _restore_review_digests(data.get("review_digests", []), actor, summary)
        if dry_run:
            transaction.set_rollback(True)
        else:
            audit_record(actor=actor, action="config.restore", details=summary.as_dict())
    return summary
