"""The compliance scan and the validation rules give one answer on duplicates and vendors:
both ask invoices.selectors (normalised seller and number, document type, issue
year, the same statuses left out). The scan used to match the raw VAT id and
number only."""

from __future__ import annotations

from datetime import date

import pytest

from invoices.validation.rules.duplicates import DuplicateNumberRule
from monitoring.compliance import invoices_breaking
from monitoring.models import PolicyRule
from tests.monitoring.test_compliance import make_invoice

pytestmark = pytest.mark.django_db

FIRST = {"seller_vat_id": "DE123456789", "invoice_number": "INV-1", "issue_date": date(2026, 3, 1)}
# (what the later invoice changes, whether it is a duplicate of the first)
CASES = {
    "the same invoice again": ({}, True),
    "number written with other spaces and case": ({"invoice_number": " inv- 1"}, True),
    "a different number": ({"invoice_number": "INV-2"}, False),
    "VAT id written with a space": ({"seller_vat_id": "DE 123456789"}, True),
    "same number in another year": ({"issue_date": date(2027, 3, 1)}, False),
    "a credit note with the same number": ({"type": "credit_note"}, False),
    "another seller": ({"seller_vat_id": "FR12345678901"}, False),
    "no issue date": ({"issue_date": None}, False),
}


@pytest.mark.parametrize("name", CASES)
def test_compliance_and_validation_agree_on_each_duplicate_case(name):
    changes, duplicate = CASES[name]
    make_invoice(**FIRST)
    later = make_invoice(**{**FIRST, **changes})
    rule = PolicyRule.objects.create(name="duplicate", kind="suspected_duplicate")

    validation_says = bool(DuplicateNumberRule().check(later, {}))
    compliance_says = invoices_breaking(rule).filter(pk=later.pk).exists()
    assert (validation_says, compliance_says) == (duplicate, duplicate)


@pytest.mark.parametrize("status", ["duplicate", "failed", "rejected"])
def test_neither_counts_an_earlier_copy_that_is_out_of_scope(status):
    make_invoice(**FIRST, status=status)
    later = make_invoice(**FIRST)
    rule = PolicyRule.objects.create(name="duplicate", kind="suspected_duplicate")
    assert not DuplicateNumberRule().check(later, {})
    assert not invoices_breaking(rule).filter(pk=later.pk).exists()


# --- vendors: blocked, and purchase order required (invoices.vendor_policy) -------------------------

VENDOR_CASES = {
    # (vendor fields, invoice's purchase order reference, blocked?, purchase order missing?)
    "an active vendor": ({}, "PO-1", False, False),
    "a blocked vendor": ({"status": "blocked"}, "PO-1", True, False),
    "PO required and given": ({"requires_purchase_order": True}, "PO-1", False, False),
    "PO required, none": ({"requires_purchase_order": True}, "", False, True),
    # The scan used to accept a reference of blanks that the rule refuses.
    "PO required, only blanks": ({"requires_purchase_order": True}, "   ", False, True),
    "PO not required, none": ({}, "", False, False),
}


@pytest.mark.parametrize("name", VENDOR_CASES)
def test_compliance_and_validation_agree_on_each_vendor_case(name):
    from invoices.models import Vendor
    from invoices.validation.rules.vendor import BlockedVendorRule, PurchaseOrderRequiredRule

    fields, reference, blocked, po_missing = VENDOR_CASES[name]
    vendor = Vendor.objects.create(name="Acme", vat_id="DE999", **fields)
    invoice = make_invoice(vendor=vendor, seller_vat_id="DE999", purchase_order_reference=reference)
    blocked_rule = PolicyRule.objects.create(name="blocked", kind="blocked_vendor")
    po_rule = PolicyRule.objects.create(name="po", kind="vendor_requires_po")

    assert bool(BlockedVendorRule().check(invoice, {})) is blocked
    assert invoices_breaking(blocked_rule).filter(pk=invoice.pk).exists() is blocked
    assert bool(PurchaseOrderRequiredRule().check(invoice, {})) is po_missing
    assert invoices_breaking(po_rule).filter(pk=invoice.pk).exists() is po_missing
