"""Compliance scans open and resolve violations as invoices, vendors and rules change."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from invoices.models import Invoice, Vendor
from monitoring.compliance import compliance_scan_run
from monitoring.models import PolicyRule, ScanRun, Violation

_numbers = itertools.count(1)


def make_invoice(**fields) -> Invoice:
    n = next(_numbers)
    values = {
        "status": "validated",
        "source": "upload",
        "original": f"originals/{n}.xml",
        "original_filename": f"{n}.xml",
        "sha256": hashlib.sha256(str(n).encode()).hexdigest(),
        "size": 100,
        "invoice_number": f"INV-{n}",
        "seller_name": "Seller",
        "currency": "EUR",
        "total_gross": Decimal("100.00"),
        "purchase_order_reference": "PO-1",
        "due_date": timezone.localdate() + timedelta(days=30),
    }
    values.update(fields)
    return Invoice.objects.create(**values)


def only_rules(*rules: dict) -> list[PolicyRule]:
    PolicyRule.objects.all().delete()
    return [PolicyRule.objects.create(**rule) for rule in rules]


def backdate_everything() -> None:
    """As if the last scan ran five minutes ago and nothing changed for an hour before it."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Invoice.objects.update(updated_at=an_hour_ago)
    Vendor.objects.update(updated_at=an_hour_ago)
    PolicyRule.objects.update(updated_at=an_hour_ago)
    ScanRun.objects.update(watermark=timezone.now() - timedelta(minutes=5))


def open_violations(rule: PolicyRule) -> set[int]:
    return set(Violation.objects.filter(rule=rule, status="open").values_list("invoice_id", flat=True))


@pytest.mark.django_db
def test_each_rule_kind_finds_the_invoices_that_break_it():
    vendor = Vendor.objects.create(name="Acme", vat_id="DE1", approval_limit=Decimal("1000.00"), iban="DE00111")
    blocked = Vendor.objects.create(name="Shady", vat_id="DE2", status="blocked")
    needs_po = Vendor.objects.create(name="Strict", vat_id="DE3", requires_purchase_order=True)
    over_limit = make_invoice(vendor=vendor, total_gross=Decimal("1000.01"))
    approved = make_invoice(vendor=vendor, total_gross=Decimal("5000.00"), status="approved", decided_at=timezone.now())
    at_limit = make_invoice(vendor=vendor, total_gross=Decimal("1000.00"))
    from_blocked = make_invoice(vendor=blocked)
    big_without_po = make_invoice(vendor=vendor, total_gross=Decimal("900.00"), purchase_order_reference="")
    strict_without_po = make_invoice(vendor=needs_po, purchase_order_reference="")
    original = make_invoice(vendor=vendor, seller_vat_id="DE1", invoice_number="A-7", issue_date=timezone.localdate())
    second_copy = make_invoice(
        vendor=vendor, seller_vat_id="DE1", invoice_number="A-7", issue_date=timezone.localdate()
    )
    overdue = make_invoice(vendor=vendor, due_date=timezone.localdate() - timedelta(days=3))
    overdue_exported = make_invoice(vendor=vendor, due_date=timezone.localdate() - timedelta(days=3), status="exported")
    wrong_iban = make_invoice(vendor=vendor, payment_iban="DE99999")
    unknown = make_invoice(vendor=None, total_gross=Decimal("1500.00"))
    rejected = make_invoice(vendor=blocked, status="rejected", total_gross=Decimal("99999.00"))
    rules = only_rules(
        {"name": "approval", "kind": "over_approval_limit"},
        {"name": "blocked", "kind": "blocked_vendor"},
        {"name": "po over 800", "kind": "missing_po", "amount": Decimal("800.00")},
        {"name": "vendor po", "kind": "vendor_requires_po"},
        {"name": "duplicate", "kind": "suspected_duplicate"},
        {"name": "overdue 2 days", "kind": "overdue_not_exported", "days": 2},
        {"name": "iban", "kind": "iban_mismatch"},
        {"name": "unknown vendor over 1000", "kind": "unknown_vendor", "amount": Decimal("1000.00")},
    )
    scan = compliance_scan_run(mode="full")
    found = {rule.name: open_violations(rule) for rule in rules}
    assert found == {
        "approval": {over_limit.pk},
        "blocked": {from_blocked.pk},
        "po over 800": {big_without_po.pk},
        "vendor po": {strict_without_po.pk},
        "duplicate": {second_copy.pk},
        "overdue 2 days": {overdue.pk},
        "iban": {wrong_iban.pk},
        "unknown vendor over 1000": {unknown.pk},
    }
    assert {approved.pk, at_limit.pk, original.pk, overdue_exported.pk, rejected.pk}.isdisjoint(
        set().union(*found.values())
    )
    assert (scan.status, scan.mode, scan.violations_found, scan.violations_opened) == ("succeeded", "full", 8, 8)
    assert scan.records_scanned == Invoice.objects.exclude(status="rejected").count()


@pytest.mark.django_db
def test_violations_resolve_when_the_data_changes_and_reopen_as_new_rows():
    vendor = Vendor.objects.create(name="Acme", vat_id="DE1", approval_limit=Decimal("1000.00"))
    invoice = make_invoice(vendor=vendor, total_gross=Decimal("2500.00"))
    (rule,) = only_rules({"name": "approval", "kind": "over_approval_limit"})
    compliance_scan_run(mode="full")
    first = Violation.objects.get(rule=rule, invoice=invoice)
    assert first.status == "open"

    invoice.status, invoice.decided_at = "approved", timezone.now()
    invoice.save()
    scan = compliance_scan_run(mode="incremental")
    first.refresh_from_db()
    assert first.status == "resolved" and first.resolved_at is not None
    assert (scan.mode, scan.records_scanned, scan.violations_resolved) == ("incremental", 1, 1)

    invoice.decided_at = None
    invoice.status = "validated"
    invoice.save()
    compliance_scan_run(mode="incremental")
    reopened = Violation.objects.get(rule=rule, invoice=invoice, status="open")
    assert reopened.pk != first.pk and reopened.first_seen_at > first.first_seen_at


@pytest.mark.django_db
def test_incremental_scan_looks_only_at_what_changed_and_keeps_open_violations():
    vendor = Vendor.objects.create(name="Acme", vat_id="DE1", approval_limit=Decimal("1000.00"))
    breaking = [make_invoice(vendor=vendor, total_gross=Decimal("5000.00")) for _ in range(3)]
    for _ in range(20):
        make_invoice(vendor=vendor)
    (rule,) = only_rules({"name": "approval", "kind": "over_approval_limit"})
    full = compliance_scan_run(mode="full")
    assert (full.records_scanned, full.violations_found) == (23, 3)
    backdate_everything()  # nothing changed since the full scan

    untouched = compliance_scan_run(mode="incremental")
    assert (untouched.records_scanned, untouched.violations_found, untouched.violations_resolved) == (0, 0, 0)
    assert open_violations(rule) == {invoice.pk for invoice in breaking}  # still open, not re-checked

    changed = make_invoice(vendor=vendor, total_gross=Decimal("7000.00"))
    later = compliance_scan_run(mode="incremental")
    assert (later.records_scanned, later.violations_opened) == (1, 1)
    assert open_violations(rule) == {invoice.pk for invoice in [*breaking, changed]}


@pytest.mark.django_db
def test_a_vendor_change_or_a_rule_change_rescans_the_invoices_it_affects():
    vendor = Vendor.objects.create(name="Acme", vat_id="DE1")
    invoices = [make_invoice(vendor=vendor) for _ in range(4)]
    make_invoice(vendor=None)
    blocked_rule, po_rule = only_rules(
        {"name": "blocked", "kind": "blocked_vendor"},
        {"name": "po over 500", "kind": "missing_po", "amount": Decimal("500.00")},
    )
    compliance_scan_run(mode="full")
    backdate_everything()

    vendor.status = "blocked"
    vendor.save()
    scan = compliance_scan_run(mode="incremental")
    assert scan.records_scanned == 4
    assert open_violations(blocked_rule) == {invoice.pk for invoice in invoices}

    po_rule.amount = Decimal("50.00")  # every 100.00 invoice without a PO now breaks it: none have one missing
    po_rule.save()
    Invoice.objects.filter(pk=invoices[0].pk).update(purchase_order_reference="")
    scan = compliance_scan_run(mode="incremental")
    assert scan.records_scanned == 5  # the edited rule looked at every invoice
    assert open_violations(po_rule) == {invoices[0].pk}

    po_rule.enabled = False
    po_rule.save()
    compliance_scan_run(mode="incremental")
    assert open_violations(po_rule) == set()


@pytest.mark.django_db
def test_an_invoice_becoming_overdue_is_found_without_being_changed():
    due = timezone.localdate() - timedelta(days=1)
    invoice = make_invoice(due_date=due)
    (rule,) = only_rules({"name": "overdue", "kind": "overdue_not_exported", "days": 0})
    ScanRun.objects.create(
        mode="full",
        status="succeeded",
        started_at=timezone.now() - timedelta(days=2),
        watermark=timezone.now() - timedelta(days=2),
    )
    make_invoice(due_date=timezone.localdate() - timedelta(days=30))  # overdue long ago: found by earlier scans
    Invoice.objects.update(updated_at=timezone.now() - timedelta(days=3))
    PolicyRule.objects.update(updated_at=timezone.now() - timedelta(days=3))
    scan = compliance_scan_run(mode="incremental")
    assert (scan.mode, scan.records_scanned) == ("incremental", 1)
    assert open_violations(rule) == {invoice.pk}


@pytest.mark.django_db
def test_a_later_copy_is_a_suspected_duplicate_until_the_first_goes():
    issued = timezone.localdate()
    first = make_invoice(seller_vat_id="FR1", invoice_number="F-1", issue_date=issued)
    (rule,) = only_rules({"name": "duplicate", "kind": "suspected_duplicate"})
    compliance_scan_run(mode="full")
    copy = make_invoice(seller_vat_id="FR1", invoice_number="F-1", issue_date=issued)
    compliance_scan_run(mode="incremental")
    assert open_violations(rule) == {copy.pk}

    first.invoice_number = "F-1-corrected"  # saved as a correction saves it (the number key follows)
    first.save()
    compliance_scan_run(mode="incremental")
    assert open_violations(rule) == set()


@pytest.mark.django_db
def test_status_endpoint_returns_exactly_its_fields(make_user, client_for):
    from jobs.schedules import schedules_ensure

    schedules_ensure()
    make_invoice(purchase_order_reference="", total_gross=Decimal("9000.00"))
    only_rules({"name": "po", "kind": "missing_po", "amount": Decimal("5000.00")})
    client = client_for(make_user("viewer-s", role="viewer"))
    empty = client.get("/api/v1/monitoring/status/").json()
    assert empty["last_scan_time"] is None and empty["total_scans_today"] == 0

    scan = compliance_scan_run(mode="full")
    body = client.get("/api/v1/monitoring/status/").json()
    assert set(body) == {
        "is_monitoring_active",
        "last_scan_time",
        "last_scan_status",
        "violations_found_last_scan",
        "records_scanned_last_scan",
        "total_scans_today",
        "next_scheduled_scan",
    }
    assert body["is_monitoring_active"] is True
    assert body["last_scan_status"] == "succeeded"
    assert body["violations_found_last_scan"] == 1 and body["records_scanned_last_scan"] == 1
    assert body["total_scans_today"] == 1
    assert body["last_scan_time"] == scan.started_at.isoformat()
    assert body["next_scheduled_scan"] is not None

    PolicyRule.objects.update(enabled=False)
    assert client.get("/api/v1/monitoring/status/").json()["is_monitoring_active"] is False


@pytest.mark.django_db
def test_scan_endpoint_needs_the_permission_and_answers_409_while_one_is_active(
    make_user, client_for, django_capture_on_commit_callbacks
):
    assert client_for(make_user("viewer-x", role="viewer")).post("/api/v1/monitoring/scan/").status_code == 403
    clerk = client_for(make_user("clerk-x", role="ap_clerk"))
    with django_capture_on_commit_callbacks(execute=False):
        started = clerk.post("/api/v1/monitoring/scan/", {"mode": "full"}, format="json")
        again = clerk.post("/api/v1/monitoring/scan/", {"mode": "full"}, format="json")
    assert started.status_code == 202
    assert started.json()["kind"] == "monitoring.compliance_scan" and started.json()["params"] == {"mode": "full"}
    assert again.status_code == 409 and again.json()["id"] == started.json()["id"]
    assert client_for(make_user("op-x", role="operator")).post("/api/v1/monitoring/scan/").status_code == 409


@pytest.mark.worker
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_scan_runs_as_a_tracked_job_on_a_real_worker(celery_worker, make_user, client_for):
    from jobs.models import Job
    from tests.support.waiting import wait_for

    only_rules({"name": "unknown vendor", "kind": "unknown_vendor", "amount": Decimal("10.00")})
    make_invoice(vendor=None)
    response = client_for(make_user("op-w", role="operator")).post(
        "/api/v1/monitoring/scan/", {"mode": "full"}, format="json"
    )
    job_id = response.json()["id"]
    job = wait_for(lambda: Job.objects.filter(pk=job_id, status="succeeded").first(), timeout=60, what="scan job")
    scan = ScanRun.objects.get(job_id=job_id)
    assert job.result["scan_id"] == scan.pk and job.result["violations_found"] == 1
    assert (scan.status, scan.records_scanned) == ("succeeded", 1)
