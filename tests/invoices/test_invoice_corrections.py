"""Corrections as data (invoices.services.invoice_correct), re-validation on corrected values,
reprocess keeping or discarding them, the approval policy, vendors from the desk."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from core.actors import Actor
from core.errors import Invalid
from core.models import AuditEntry, TriggerSource
from invoices.corrections import InvalidCorrection
from invoices.models import Invoice, InvoiceCorrection, Vendor
from invoices.selectors import invoice_approval_need, invoice_corrections, invoice_field_values
from invoices.services import (
    InvoiceNotAllowed,
    invoice_correct,
    invoice_decide,
    invoice_link_vendor,
    invoice_process,
    vendor_create_from_invoice,
)
from tests.invoices.review_support import (
    RIGHT_GROSS,
    VALID_IBAN,
    VALID_VAT_ID,
    WRONG_GROSS,
    needs_review_invoice,
    set_approval_limit,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def codes(invoice: Invoice) -> set[str]:
    return set(invoice.issues.values_list("code", flat=True))


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def act(user) -> Actor:
    return Actor(user=user, source=TriggerSource.API)


def test_corrections_are_rows_and_revalidation_clears_the_issues_they_caused(clerk):
    invoice = needs_review_invoice()
    assert {"totals.net_tax_gross", "seller.vat_id_checksum", "payment.iban_checksum"} <= codes(invoice)

    rows = invoice_correct(
        invoice=invoice,
        actor=act(clerk),
        reason="as on the paper copy",
        revalidate=True,
        changes={"total_gross": RIGHT_GROSS, "seller_vat_id": "de 136 695 976", "payment_iban": VALID_IBAN},
    )

    invoice.refresh_from_db()
    assert invoice.total_gross == Decimal(RIGHT_GROSS) and invoice.seller_vat_id == VALID_VAT_ID
    assert not {"totals.net_tax_gross", "seller.vat_id_checksum", "payment.iban_checksum"} & codes(invoice)
    assert invoice.status == "validated"
    by_path = {row.field_path: row for row in rows}
    assert by_path["total_gross"].extracted_value == WRONG_GROSS
    assert by_path["total_gross"].new_value == RIGHT_GROSS and by_path["total_gross"].user == clerk
    assert by_path["seller_vat_id"].extracted_value == "GB1232434"
    assert invoice_corrections(invoice=invoice).count() == 3
    values = invoice_field_values(invoice=invoice)
    assert values["total_gross"] == {"value": RIGHT_GROSS, "extracted": WRONG_GROSS, "corrected": True}
    entry = AuditEntry.objects.get(action="invoice.correct")
    assert entry.actor == clerk and entry.reason == "as on the paper copy"
    assert entry.details["changes"]["total_gross"] == {"from": WRONG_GROSS, "to": RIGHT_GROSS}


@pytest.mark.parametrize(
    "changes, path",
    [
        ({"total_gross": "twelve"}, "total_gross"),
        ({"total_gross": "12.345"}, "total_gross"),
        ({"due_date": "2026-02-30"}, "due_date"),
        ({"currency": "EUX"}, "currency"),
        ({"status": "approved"}, "status"),
        ({"lines[1].quantity": "1,5"}, "lines[1].quantity"),
        ({"lines[9].quantity": "1"}, "lines[9].quantity"),
        ({"seller_country": "Germany"}, "seller_country"),
    ],
)
def test_a_wrong_value_is_a_field_error_and_nothing_is_saved(clerk, changes, path):
    invoice = needs_review_invoice()
    before = Invoice.objects.filter(pk=invoice.pk).values().get()
    with pytest.raises(InvalidCorrection) as caught:
        invoice_correct(invoice=invoice, actor=act(clerk), changes={"seller_name": "Changed Ltd", **changes})
    assert list(caught.value.errors) == [path]
    assert Invoice.objects.filter(pk=invoice.pk).values().get() == before
    assert not InvoiceCorrection.objects.exists() and not AuditEntry.objects.filter(action="invoice.correct").exists()


def test_lines_are_added_edited_and_removed(clerk):
    invoice = needs_review_invoice()
    assert sorted(invoice.lines.values_list("position", flat=True)) == [1, 2]
    invoice_correct(
        invoice=invoice,
        actor=act(clerk),
        changes={
            "lines[1].quantity": "3",
            "lines[2]": None,
            "lines[+]": {
                "name": "Freight",
                "quantity": "1",
                "net_price": "25",
                "line_amount": "25.00",
                "vat_category": "s",
                "vat_rate": "25",
            },
        },
    )
    invoice.refresh_from_db()
    lines = {line.position: line for line in invoice.lines.all()}
    assert sorted(lines) == [1, 3]
    assert lines[1].quantity == Decimal("3") and lines[3].name == "Freight" and lines[3].vat_category == "S"
    paths = set(invoice.corrections.values_list("field_path", flat=True))
    assert paths == {"lines[1].quantity", "lines[2]", "lines[3]"}
    removed = invoice.corrections.get(field_path="lines[2]")
    assert removed.new_value is None and removed.extracted_value["line_amount"] is not None


def test_reprocess_keeps_corrections_unless_discarded(clerk):
    invoice = needs_review_invoice()
    invoice_correct(invoice=invoice, actor=act(clerk), changes={"total_gross": RIGHT_GROSS, "lines[2]": None})
    invoice = invoice_process(invoice=Invoice.objects.get(pk=invoice.pk))  # what the reprocess job runs
    assert invoice.total_gross == Decimal(RIGHT_GROSS) and invoice.lines.count() == 1
    assert invoice.extracted_values["total_gross"] == WRONG_GROSS
    assert "totals.net_tax_gross" not in codes(invoice)

    invoice.corrections.update(discarded_at="2026-01-01T00:00:00Z")  # what discard_corrections does
    invoice = invoice_process(invoice=Invoice.objects.get(pk=invoice.pk))
    assert invoice.total_gross == Decimal(WRONG_GROSS) and invoice.lines.count() == 2
    assert "totals.net_tax_gross" in codes(invoice)


def test_an_approved_invoice_cannot_be_corrected(clerk):
    invoice = needs_review_invoice()
    invoice_decide(invoice=invoice, approve=True, actor=act(clerk))
    with pytest.raises(InvoiceNotAllowed):
        invoice_correct(invoice=invoice, actor=act(clerk), changes={"total_gross": "1.00"})


def test_over_threshold_needs_the_permission_and_four_eyes(clerk, make_user):
    set_approval_limit("EUR", "1000.00")
    invoice = needs_review_invoice()
    need = invoice_approval_need(invoice=invoice)
    assert need is not None and need.limit == Decimal("1000.00")
    with pytest.raises(PermissionDenied, match="approve invoices above the approval threshold"):
        invoice_decide(invoice=invoice, approve=True, actor=act(clerk))

    approver = make_user("approver", role="ap_approver")
    invoice_correct(invoice=invoice, actor=act(approver), changes={"total_gross": RIGHT_GROSS})
    with pytest.raises(PermissionDenied, match="four-eyes"):
        invoice_decide(invoice=invoice, approve=True, actor=act(approver))

    second = make_user("second", role="ap_approver")
    invoice_decide(invoice=invoice, approve=True, actor=act(second))
    invoice.refresh_from_db()
    assert invoice.status == "approved" and invoice.decided_by == second
    assert AuditEntry.objects.get(action="invoice.approve").details["over_threshold"] is True
    # Rejecting stays open to every clerk: the threshold guards payment, not refusal.
    other = needs_review_invoice("2")
    invoice_decide(invoice=other, approve=False, actor=act(clerk), reason="not ours")


def test_vendor_created_from_the_seller_data_and_its_rules_apply(clerk):
    invoice = needs_review_invoice()
    invoice_correct(
        invoice=invoice, actor=act(clerk), changes={"seller_vat_id": VALID_VAT_ID, "payment_iban": VALID_IBAN}
    )
    assert "vendor.unknown" in codes(invoice)
    vendor = vendor_create_from_invoice(invoice=invoice, actor=act(clerk))
    assert (vendor.name, vendor.vat_id, vendor.iban, vendor.country) == (
        "SupplierOfficialName Ltd",
        VALID_VAT_ID,
        VALID_IBAN,
        "GB",
    )
    invoice.refresh_from_db()
    assert invoice.vendor == vendor and invoice.vendor_confirmed and "vendor.unknown" not in codes(invoice)
    with pytest.raises(InvoiceNotAllowed, match="link the invoice to it"):
        vendor_create_from_invoice(invoice=invoice, actor=act(clerk))

    assert AuditEntry.objects.filter(action="vendor.create", target_id=str(vendor.pk)).exists()

    Vendor.objects.filter(pk=vendor.pk).update(status="blocked")
    other = Vendor.objects.create(name="Another Ltd", requires_purchase_order=True)
    invoice_link_vendor(invoice=invoice, vendor=other, actor=act(clerk))
    invoice.refresh_from_db()
    assert invoice.vendor == other and "vendor.purchase_order_required" in codes(invoice)
    assert AuditEntry.objects.filter(action="invoice.link_vendor").count() == 2


def test_a_vendor_is_not_made_from_a_misread_vat_id_or_iban(clerk):
    """The sample's own seller VAT id and IBAN fail their check digits: the vendor master refuses
    them from the desk as from the admin, and says which invoice fields to correct."""
    invoice = needs_review_invoice()
    with pytest.raises(Invalid) as refused:
        vendor_create_from_invoice(invoice=invoice, actor=act(clerk))
    assert {"seller_vat_id", "payment_iban"} <= set(refused.value.field_errors)
    assert "correct it on the invoice first" in str(refused.value)
    assert not Vendor.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="vendor.").exists()
    invoice.refresh_from_db()
    assert invoice.vendor is None
