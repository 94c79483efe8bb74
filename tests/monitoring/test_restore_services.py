"""A configuration restore writes each row through its owning app's save service: the
same checks and the same audit entry as a save in the admin, with the restoring actor."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.actors import Actor
from core.models import AuditEntry
from emailsync.models import Mailbox
from events.models import EventSubscription, ReviewDigest
from events.services import subscription_save
from invoices.models import ValidationRuleSetting, Vendor
from monitoring.backup import config_backup_data, config_restore
from monitoring.models import AlertRule

pytestmark = pytest.mark.django_db

GOOD_IBAN = "DE89370400440532013000"
GOOD_VAT_ID = "DE136695976"


def restore(data: dict, actor: Actor, **options):
    return config_restore(data=json.loads(json.dumps(data, default=str)), actor=actor, **options)


def audits(actor_user, action: str, source: str | None = None) -> list[tuple[str, str, str]]:
    entries = AuditEntry.objects.filter(actor=actor_user, action=action)
    return list(
        (entries.filter(source=source) if source else entries)
        .order_by("pk")
        .values_list("target_label", "source", "reason")
    )


def test_a_restored_row_is_audited_like_an_admin_save_of_it(make_user, client, settings):
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = True  # no DNS needed for the mailbox host below
    ops = make_user("ops", superuser=True)
    client.force_login(ops)
    by_hand = {
        "/admin/monitoring/alertrule/add/": {
            "name": "beat by hand",
            "kind": "beat_stale",
            "severity": "warning",
            "window_minutes": 60,
            "min_jobs": 5,
            "email_to": "none",
            "enabled": "on",
        },
        "/admin/invoices/vendor/add/": {"name": "By Hand GmbH", "vat_id": "de 136.695.976", "status": "active"},
    }
    for url, form in by_hand.items():
        assert client.post(url, form).status_code == 302
    assert audits(ops, "alert_rule.create") == [("beat by hand", "admin", "")]
    assert audits(ops, "vendor.create") == [("By Hand GmbH", "admin", "")]
    assert Vendor.objects.get().vat_id == GOOD_VAT_ID  # normalised by the service, as the rules compare it
    AlertRule.objects.filter(name="beat by hand").delete()
    Vendor.objects.all().delete()

    data = config_backup_data()
    data["alert_rules"] = [{"name": "beat", "kind": "beat_stale", "email_to": "none", "threshold": 120}]
    data["vendors"] = [{"name": "Acme", "vat_id": GOOD_VAT_ID, "iban": GOOD_IBAN, "approval_limit": "2500.50"}]
    data["mailboxes"] = [{"name": "ap inbox", "host": "127.0.0.1", "username": "ap", "folders": ["INBOX"]}]
    restorer = Actor(user=ops, source="command")
    summary = restore(data, restorer)

    assert summary.skipped == []
    assert audits(ops, "alert_rule.create", "command") == [("beat", "command", "configuration restore")]
    assert audits(ops, "vendor.create", "command") == [("Acme", "command", "configuration restore")]
    assert audits(ops, "mailbox.create") == [("ap inbox", "command", "configuration restore")]
    assert Vendor.objects.get(vat_id=GOOD_VAT_ID).approval_limit == Decimal("2500.50")
    assert Mailbox.objects.get(name="ap inbox").owner == ops
    [whole] = AuditEntry.objects.filter(action="config.restore")
    assert whole.actor == ops and whole.details["created"]["vendors"] == 1

    # Restoring again changes the same rows: the service's change action, once per row.
    restore(data, restorer)
    assert [label for label, *_ in audits(ops, "alert_rule.change")] == ["beat"]
    assert [label for label, *_ in audits(ops, "vendor.change")] == ["Acme"]
    assert [label for label, *_ in audits(ops, "mailbox.change")] == ["ap inbox"]


def test_a_vendor_the_service_refuses_is_skipped_with_its_message_and_not_written(make_user):
    ops = make_user("ops", superuser=True)
    data = config_backup_data()
    data["vendors"] = [
        {"name": "Good", "vat_id": GOOD_VAT_ID, "iban": GOOD_IBAN},
        {"name": "Bad IBAN", "vat_id": "", "iban": "DE89370400440532013001"},
        {"name": "Bad VAT", "vat_id": "DE123", "iban": ""},
        {"name": "", "vat_id": "", "iban": ""},
    ]
    summary = restore(data, Actor(user=ops, source="command"))

    assert list(Vendor.objects.values_list("name", flat=True)) == ["Good"]
    assert summary.created["vendors"] == 1
    skipped = "\n".join(summary.skipped)
    assert "vendors Bad IBAN: refused, iban: The IBAN DE89370400440532013001 has wrong check digits" in skipped
    assert "vendors DE123: refused, vat_id: The VAT id DE123 is not a valid DE VAT id" in skipped
    assert "name: This field cannot be blank." in skipped
    assert audits(ops, "vendor.create") == [("Good", "command", "configuration restore")]
    assert AuditEntry.objects.get(action="config.restore").details["skipped"] == summary.skipped


def test_the_vendor_admin_refuses_what_the_restore_refuses(make_user, client):
    client.force_login(make_user("root", superuser=True))
    page = client.post("/admin/invoices/vendor/add/", {"name": "Bad", "iban": "DE89 3704 0044 0532 0130 01"})
    assert page.status_code == 200 and b"has wrong check digits" in page.content
    assert not Vendor.objects.exists() and not AuditEntry.objects.filter(action="vendor.create").exists()


def test_a_subscription_and_a_digest_round_trip_without_their_secrets(make_user, settings):
    settings.EVENTS_ALLOW_PRIVATE_HOSTS = False
    ops = make_user("ops", superuser=True)
    system = Actor.system()
    erp, _ = subscription_save(
        subscription=EventSubscription(name="erp", url="https://8.8.8.8/hook?v=2", events=["invoice.approved"]),
        actor=system,
        secret="the-old-signing-secret",
    )
    slack = EventSubscription.objects.create(
        name="slack", url="https://8.8.4.4/services/T0/B0/slack-token", events=["invoice.failed"], slack_compatible=True
    )
    slack.set_secret("slack-secret")
    slack.save()
    ReviewDigest.objects.create(name="AP team", group=Group.objects.get(name="ap_clerk"), enabled=False)

    data = config_backup_data()
    text = json.dumps(data)
    assert {"event_subscriptions", "review_digests"} <= set(data)
    for secret in ("the-old-signing-secret", "slack-secret", "slack-token", erp.secret_ciphertext):
        assert secret not in text
    assert data["review_digests"] == [{"name": "AP team", "group": "ap_clerk", "enabled": False}]

    EventSubscription.objects.filter(name="erp").delete()
    ReviewDigest.objects.all().delete()
    slack.enabled = False
    slack.save()
    summary = restore(data, Actor(user=ops, source="command"))

    restored = EventSubscription.objects.get(name="erp")
    assert (restored.url, restored.events, restored.enabled) == ("https://8.8.8.8/hook?v=2", ["invoice.approved"], True)
    assert len(restored.secret) >= 32 and restored.secret != "the-old-signing-secret"  # a new one, never the backup's
    slack.refresh_from_db()  # matched by name: enabled again, its URL and secret kept
    assert (slack.enabled, slack.url, slack.secret) == (
        True,
        "https://8.8.4.4/services/T0/B0/slack-token",
        "slack-secret",
    )
    digest = ReviewDigest.objects.get()
    assert (digest.name, digest.group.name, digest.enabled) == ("AP team", "ap_clerk", False)
    assert audits(ops, "events.subscription_create") == [("erp", "command", "configuration restore")]
    assert [label for label, *_ in audits(ops, "events.subscription_update")] == ["slack"]
    assert audits(ops, "events.digest_create") == [("AP team", "command", "configuration restore")]
    assert any("erp: created with a new signing secret" in note for note in summary.notes)

    # A Slack subscription missing here cannot be created from a backup: its URL is not in it.
    EventSubscription.objects.filter(name="slack").delete()
    summary = restore(data, Actor(user=ops, source="command"))
    assert not EventSubscription.objects.filter(name="slack").exists()
    assert any(line.startswith("event_subscriptions slack: refused, no URL in the backup") for line in summary.skipped)


def test_a_dry_run_writes_no_row_and_no_audit_entry(make_user):
    ops = make_user("ops", superuser=True)
    data = config_backup_data()
    data["alert_rules"] = [{"name": "beat", "kind": "beat_stale", "email_to": "none"}]
    data["vendors"] = [{"name": "Acme", "vat_id": GOOD_VAT_ID}]
    data["event_subscriptions"] = [{"name": "erp", "url": "https://8.8.8.8/hook", "events": ["invoice.approved"]}]
    data["periodic_tasks"] = [
        {"name": "nightly", "task": "monitoring.backup_config", "interval": {"every": 7, "period": "days"}}
    ]
    data["validation_rules"] = [{"code": "payment.iban_checksum", "enabled": False, "severity": "error"}]
    audit_rows = AuditEntry.objects.count()

    summary = restore(data, Actor(user=ops, source="command"), dry_run=True)

    assert summary.created == {
        "alert_rules": 1,
        "vendors": 1,
        "event_subscriptions": 1,
        "periodic_tasks": 1,
        "validation_rules": 1,
    }
    assert AuditEntry.objects.count() == audit_rows
    assert not AlertRule.objects.filter(name="beat").exists() and not Vendor.objects.exists()
    assert not EventSubscription.objects.exists() and not PeriodicTask.objects.filter(name="nightly").exists()
    assert not IntervalSchedule.objects.filter(every=7, period="days").exists()
    assert not ValidationRuleSetting.objects.filter(code="payment.iban_checksum", enabled=False).exists()


def test_schedules_and_rule_settings_go_through_their_services(make_user):
    ops = make_user("ops", superuser=True)
    data = config_backup_data()
    data["periodic_tasks"] = [
        {
            "name": "nightly",
            "task": "monitoring.backup_config",
            "kwargs": "{}",
            "interval": {"every": 7, "period": "days"},
        },
        {
            "name": "broken",
            "task": "monitoring.backup_config",
            "kwargs": "[1]",
            "interval": {"every": 1, "period": "days"},
        },
        {"name": "never", "task": "monitoring.backup_config", "crontab": {"minute": "99", "timezone": "UTC"}},
    ]
    data["validation_rules"] = [
        {"code": "payment.iban_checksum", "enabled": False, "severity": "error", "parameters": {}},
        {"code": "seller.vat_id_checksum", "parameters": [1, 2]},
        {"code": "no.such_rule", "enabled": False},
    ]
    summary = restore(data, Actor(user=ops, source="command"))

    assert PeriodicTask.objects.get(name="nightly").interval.every == 7
    assert not PeriodicTask.objects.filter(name__in=["broken", "never"]).exists()
    assert audits(ops, "schedule.create") == [("nightly: every 7 days", "command", "configuration restore")]
    assert ValidationRuleSetting.objects.get(code="payment.iban_checksum").enabled is False
    assert [label for label, *_ in audits(ops, "validation_rule.change")] == ["payment.iban_checksum"]
    skipped = "\n".join(summary.skipped)
    assert "periodic_tasks broken: refused, kwargs: Must be a JSON object." in skipped
    assert "periodic_tasks never: refused, minute:" in skipped
    assert (
        "validation_rules seller.vat_id_checksum: refused, parameters: The parameters must be a JSON object" in skipped
    )
    assert "validation_rules no.such_rule: refused, There is no validation rule 'no.such_rule'" in skipped


def test_the_schedule_admin_saves_through_the_same_service(make_user, client):
    ops = make_user("ops", superuser=True)
    client.force_login(ops)
    every_day, _ = IntervalSchedule.objects.get_or_create(every=1, period="days")
    form = {
        "name": "nightly",
        "task": "monitoring.backup_config",
        "enabled": "on",
        "interval": every_day.pk,
        "args": "[]",
        "kwargs": "[1]",
        "headers": "{}",
    }
    refused = client.post("/admin/django_celery_beat/periodictask/add/", form)
    assert refused.status_code == 200 and b"Must be a JSON object." in refused.content
    assert not PeriodicTask.objects.filter(name="nightly").exists()

    assert client.post("/admin/django_celery_beat/periodictask/add/", {**form, "kwargs": "{}"}).status_code == 302
    assert audits(ops, "schedule.create") == [("nightly: every day", "admin", "")]
