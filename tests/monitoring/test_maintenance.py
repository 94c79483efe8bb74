"""Temporary file clean-up, the system report, configuration backup and restore."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from core.models import AuditEntry
from invoices.models import Vendor
from jobs.schedules import schedules_ensure
from monitoring.backup import config_backup_read, config_restore
from monitoring.maintenance import system_report_create, temp_files_cleanup
from monitoring.models import AlertRule, PolicyRule, RuntimeBudget, SystemReport


def aged(path, *, hours: float, content: str = "x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    stamp = time.time() - hours * 3600
    os.utime(path, (stamp, stamp))
    return path


@pytest.mark.django_db
def test_temporary_file_cleanup_deletes_only_old_files_in_the_temporary_directories(settings, tmp_path):
    settings.VAR_DIR, settings.MEDIA_ROOT = tmp_path / "var", tmp_path / "media"
    old_var = aged(tmp_path / "var/tmp/upload-1.part", hours=30, content="12345")
    old_nested = aged(tmp_path / "media/tmp/batch/x.csv", hours=48)
    fresh = aged(tmp_path / "media/tmp/fresh.csv", hours=1)
    kept_original = aged(tmp_path / "media/originals/invoice.pdf", hours=500)
    outside = aged(tmp_path / "elsewhere.txt", hours=100)
    link = tmp_path / "var/tmp/link-to-elsewhere"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 100 * 3600,) * 2, follow_symlinks=False)

    result = temp_files_cleanup(older_than=timedelta(hours=24))
    assert not old_var.exists() and not old_nested.exists() and not link.is_symlink()
    assert not (tmp_path / "media/tmp/batch").exists()  # emptied sub-directory removed
    assert fresh.exists() and kept_original.exists() and outside.exists()
    assert (tmp_path / "var/tmp").is_dir()  # the temporary directory itself stays
    assert (result.files_deleted, result.directories_removed, result.errors) == (3, 1, 0)
    assert result.bytes_freed >= 6


@pytest.mark.django_db
def test_system_report_is_stored_viewable_and_emailed_to_admins(settings, smtp_sink, make_user):
    settings.ADMINS = [("Ops", "ops@example.com")]
    report = system_report_create(hours=12)
    assert SystemReport.objects.get() == report
    assert report.emailed_to == ["ops@example.com"] and report.email_error == ""
    assert smtp_sink.messages[0].rcpt_tos == ["ops@example.com"]
    assert "AP Intake system report" in smtp_sink.messages[0].content.decode(errors="replace")
    assert "Health: FAILING" in report.text and "- beat: No beat heartbeat recorded yet" in report.text
    assert "Jobs finished: 0" in report.text and "Workers:" in report.text
    staff = Client()
    staff.force_login(make_user("staff-r", staff=True))
    page = staff.get(f"/monitoring/reports/{report.pk}/")
    assert page.status_code == 200 and "Jobs finished" in page.content.decode()
    assert Client().get(f"/monitoring/reports/{report.pk}/").status_code == 302  # to the login page


@pytest.mark.django_db
def test_system_report_without_admins_is_stored_and_not_mailed(settings, mailoutbox):
    settings.ADMINS = []
    report = system_report_create(hours=1)
    assert report.emailed_to == [] and mailoutbox == []


@pytest.mark.django_db
def test_configuration_backup_has_no_secrets_and_restores(tmp_path):
    from emailsync.models import Mailbox

    schedules_ensure()
    AlertRule.objects.create(
        name="big backlog", kind="queue_backlog", threshold=5000, webhook_url="https://hooks.example.com/x"
    )
    PolicyRule.objects.create(name="po over 10k", kind="missing_po", amount=Decimal("10000.00"))
    RuntimeBudget.objects.create(kind="jobs.sleep", max_seconds=30)
    Vendor.objects.create(name="Acme", vat_id="DE136695976", approval_limit=Decimal("2500.50"), status="blocked")
    Mailbox.objects.create(
        name="ap inbox",
        host="imap.example.com",
        username="ap@example.com",
        secret_ciphertext="gAAAA-encrypted-password",
        folders=["INBOX"],
    )
    path = tmp_path / "config.json"
    call_command("backup_config", output=str(path))
    text = path.read_text()
    data = json.loads(text)
    assert "gAAAA-encrypted-password" not in text and "secret_ciphertext" not in text
    assert {"periodic_tasks", "alert_rules", "policy_rules", "runtime_budgets", "vendors", "mailboxes"} <= set(data)
    assert next(v for v in data["vendors"] if v["vat_id"] == "DE136695976")["approval_limit"] == "2500.50"
    assert data["mailboxes"] == [next(m for m in data["mailboxes"] if m["name"] == "ap inbox")]

    AlertRule.objects.filter(name="big backlog").delete()
    PolicyRule.objects.filter(name="po over 10k").update(amount=Decimal("1.00"))
    Vendor.objects.all().delete()
    Mailbox.objects.all().delete()
    PeriodicTask.objects.filter(name__startswith="monitoring:").delete()

    dry = config_restore(data=config_backup_read(path), dry_run=True)
    assert dry.created["alert_rules"] == 1 and not AlertRule.objects.filter(name="big backlog").exists()

    assert not AuditEntry.objects.filter(action="config.restore").exists()  # a dry run changes nothing

    call_command("restore_config", str(path))
    restore = AuditEntry.objects.get(action="config.restore")
    assert restore.source == "command" and restore.details["created"]["alert_rules"] == 1
    assert AlertRule.objects.get(name="big backlog").threshold == 5000
    assert PolicyRule.objects.get(name="po over 10k").amount == Decimal("10000.00")
    vendor = Vendor.objects.get(vat_id="DE136695976")
    assert (vendor.approval_limit, vendor.status) == (Decimal("2500.50"), "blocked")
    restored = Mailbox.objects.get(name="ap inbox")
    assert (restored.host, restored.folders, restored.secret_ciphertext) == ("imap.example.com", ["INBOX"], "")
    assert PeriodicTask.objects.filter(name="monitoring: beat heartbeat", interval__every=30).exists()


@pytest.mark.django_db
def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "other.json"
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(CommandError, match="not an AP Intake configuration backup"):
        call_command("restore_config", str(path))


@pytest.mark.django_db
def test_scheduled_backup_keeps_the_newest_files(settings, tmp_path):
    from monitoring.backup import config_backup_write

    settings.MONITORING_BACKUP_DIR, settings.MONITORING_BACKUP_KEEP = tmp_path, 2
    for index in range(3):
        (tmp_path / f"config-2020010{index}-000000.json").write_text("{}")
    written = config_backup_write()
    assert sorted(p.name for p in tmp_path.glob("config-*.json")) == ["config-20200102-000000.json", written.name]
