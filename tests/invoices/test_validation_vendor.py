"""The vendor master: matching the seller, unknown and blocked vendors, purchase orders, approval limits."""

from __future__ import annotations

from decimal import Decimal

from invoices.models import InvoiceType, ValidationRuleSetting, Vendor
from invoices.validation import RULE_ERROR, RULES, ensure_rule_settings, match_vendor, validate
from tests.invoices.invoice_builders import make_invoice, make_vendor


def run(invoice, *codes):
    return validate(invoice, rules=[RULES[code] for code in codes])


# --- match_vendor -----------------------------------------------------------------------------------------------


def test_the_vendor_is_matched_by_vat_id_whatever_its_spelling(db):
    vendor = make_vendor(name="Some Other Name GmbH")
    assert match_vendor(make_invoice(seller_vat_id="de 136.695.976")) == vendor


def test_without_a_vat_match_the_vendor_is_matched_by_name_ignoring_case(db):
    vendor = make_vendor(name="Acme Trading Ltd", vat_id="")
    assert match_vendor(make_invoice(seller_name="ACME TRADING LTD", seller_vat_id="")) == vendor
    assert match_vendor(make_invoice(seller_name="Acme Trading", seller_vat_id="")) is None


def test_a_namesake_with_another_vat_id_is_not_the_vendor(db):
    make_vendor(name="Acme Trading Ltd", vat_id="FR11999999998")
    invoice = make_invoice(seller_name="Acme Trading Ltd", seller_vat_id="DE136695976")
    assert match_vendor(invoice) is None
    [finding] = run(invoice, "vendor.unknown")
    assert "A vendor named Acme Trading Ltd exists, but with VAT id FR11999999998" in finding.message


def test_match_vendor_does_not_change_the_invoice(db):
    make_vendor()
    invoice = make_invoice()
    match_vendor(invoice)
    invoice.refresh_from_db()
    assert invoice.vendor_id is None


# --- vendor.unknown / vendor.blocked / vendor.purchase_order_required -------------------------------------------


def test_an_unknown_seller_is_a_warning(db):
    [finding] = run(make_invoice(), "vendor.unknown")
    assert finding.severity == "warning"
    assert finding.message == ("The seller Muster Bürobedarf GmbH (VAT id DE136695976) is not in the vendor master.")
    make_vendor()
    assert run(make_invoice(), "vendor.unknown") == []


def test_an_invoice_without_any_seller_cannot_be_matched(db):
    [finding] = run(make_invoice(seller_name="", seller_vat_id=""), "vendor.unknown")
    assert "names no seller" in finding.message


def test_a_blocked_vendor_is_an_error_with_the_reason(db):
    make_vendor(status=Vendor.Status.BLOCKED, notes="Bank details changed by phone; fraud suspected.")
    [finding] = run(make_invoice(), "vendor.blocked")
    assert finding.severity == "error"
    assert "is blocked (Bank details changed by phone; fraud suspected.)" in finding.message
    Vendor.objects.update(status=Vendor.Status.ACTIVE)
    assert run(make_invoice(), "vendor.blocked") == []


def test_a_vendor_set_on_the_invoice_is_used_by_the_vendor_rules(db):
    blocked = make_vendor(name="Blocked Ltd", vat_id="FR11999999998", status=Vendor.Status.BLOCKED)
    invoice = make_invoice(vendor=blocked)  # its seller VAT id would match nobody
    assert [f.code for f in run(invoice, "vendor.unknown", "vendor.blocked")] == ["vendor.blocked"]


def test_a_vendor_that_requires_purchase_orders_needs_one_on_the_invoice(db):
    make_vendor(requires_purchase_order=True)
    [finding] = run(make_invoice(purchase_order_reference=""), "vendor.purchase_order_required")
    assert "requires a purchase order number (BT-13)" in finding.message
    assert run(make_invoice(purchase_order_reference="PO-4711"), "vendor.purchase_order_required") == []


# --- approval.threshold -----------------------------------------------------------------------------------------


def test_above_the_general_limit_the_invoice_needs_approval(db):
    [finding] = run(make_invoice(lines=[("10000.00", "19")]), "approval.threshold")
    assert finding.severity == "error"
    assert finding.message == (
        "This invoice needs approval: its total 11900.00 EUR is above the general approval limit (10000.00 EUR)."
    )
    assert run(make_invoice(lines=[("8403.36", "19")]), "approval.threshold") == []  # 9999.99 gross


def test_the_vendor_limit_wins_over_the_general_one(db):
    make_vendor(approval_limit=Decimal("100.00"))
    [finding] = run(make_invoice(), "approval.threshold")  # gross 178.50
    assert "above the approval limit of Muster Bürobedarf GmbH (100.00 EUR)" in finding.message
    Vendor.objects.update(approval_limit=Decimal("50000.00"))
    assert run(make_invoice(lines=[("20000.00", "19")]), "approval.threshold") == []


def test_a_large_credit_note_needs_approval_too(db):
    credit = make_invoice(type=InvoiceType.CREDIT_NOTE, lines=[("-20000.00", "19")])
    [finding] = run(credit, "approval.threshold")
    assert "This credit note needs approval: its total 23800.00 EUR" in finding.message


def test_limits_per_currency(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="approval.threshold").update(
        parameters={"limit": "10000.00", "limits_by_currency": {"HUF": "4000000.00"}}
    )
    forints = make_invoice(currency="HUF", lines=[("69180.00", "27")])
    assert run(forints, "approval.threshold") == []
    [finding] = run(make_invoice(currency="HUF", lines=[("4000000.00", "27")]), "approval.threshold")
    assert "the approval limit for HUF (4000000.00 HUF)" in finding.message


def test_a_malformed_currency_limit_is_a_rule_error(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="approval.threshold").update(
        parameters={"limits_by_currency": ["HUF", 4000000]}
    )
    [finding] = run(make_invoice(), "approval.threshold")
    assert finding.code == RULE_ERROR
    assert "limits_by_currency" in finding.message
