"""Invoices built directly in the test database, for the validation and export tests.

`make_invoice()` gives a clean invoice that every rule accepts (a real, valid VAT id
and IBAN, totals that add up, dates of this month); a test changes the one thing
it is about. `invoice_from_extracted()` stores what an extractor read, the way the
pipeline does, so exports can be tested on real sample files.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone

from invoices.extract.base import ExtractedInvoice
from invoices.models import Invoice, InvoiceLine, InvoiceStatus, InvoiceType, Vendor
from invoices.services import invoice_store_extraction

_serial = itertools.count(1)

# Valid identifiers taken from the sample invoices (Mustang / GnuAccounting example).
VALID_VAT_ID = "DE136695976"
VALID_IBAN = "DE88200800000970375700"


def _unique_sha256() -> str:
    return f"{next(_serial):064x}"


def make_invoice(*, lines: list[tuple[str, str]] | None = None, **fields) -> Invoice:
    """A saved invoice; `lines` are (net amount, VAT rate) pairs, default two lines at 19 %.

    Totals default to what the lines give: net 150.00, VAT 28.50, gross and due 178.50.
    """
    lines = [("100.00", "19"), ("50.00", "19")] if lines is None else lines
    today = timezone.localdate()
    net = sum((Decimal(amount) for amount, _ in lines), Decimal(0))
    tax = sum((Decimal(amount) * Decimal(rate) / 100 for amount, rate in lines), Decimal(0)).quantize(Decimal("0.01"))
    serial = next(_serial)
    values = {
        "source": "upload",
        "original": f"originals/test-{serial}",
        "original_filename": f"invoice-{serial}.xml",
        "sha256": _unique_sha256(),
        "size": 1000,
        "status": InvoiceStatus.EXTRACTED,
        "format": "ubl",
        "invoice_number": f"INV-{serial}",
        "type": InvoiceType.INVOICE,
        "issue_date": today - dt.timedelta(days=3),
        "due_date": today + dt.timedelta(days=27),
        "currency": "EUR",
        "seller_name": "Muster Bürobedarf GmbH",
        "seller_vat_id": VALID_VAT_ID,
        "seller_country": "DE",
        "buyer_name": "Buyer AG",
        "payment_iban": VALID_IBAN,
        "line_total": net,
        "total_net": net,
        "tax_total": tax,
        "total_gross": net + tax,
        "amount_due": net + tax,
        "vat_breakdown": _breakdown(lines),
        "confidence": {},
    }
    values.update(fields)
    invoice = Invoice.objects.create(**values)
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                position=position,
                line_id=str(position),
                name=f"Item {position}",
                quantity=Decimal(1),
                unit_code="C62",
                net_price=Decimal(amount),
                line_amount=Decimal(amount),
                vat_category="S" if Decimal(rate) > 0 else "Z",
                vat_rate=Decimal(rate),
            )
            for position, (amount, rate) in enumerate(lines, start=1)
        ]
    )
    return invoice


def _breakdown(lines: list[tuple[str, str]]) -> list[dict]:
    bases: dict[str, Decimal] = {}
    for amount, rate in lines:
        bases[rate] = bases.get(rate, Decimal(0)) + Decimal(amount)
    return [
        {
            "category": "S" if Decimal(rate) > 0 else "Z",
            "rate": rate,
            "taxable_amount": str(base),
            "tax_amount": str((base * Decimal(rate) / 100).quantize(Decimal("0.01"))),
            "exemption_reason": "",
        }
        for rate, base in bases.items()
    ]


def invoice_from_extracted(data: ExtractedInvoice, *, filename: str = "sample") -> Invoice:
    """Store an ExtractedInvoice as an Invoice with its lines, as the pipeline stores an
    extraction (invoice_store_extraction), then mark it validated."""
    invoice = Invoice(
        source="upload",
        original=f"originals/{filename}",
        original_filename=filename,
        sha256=_unique_sha256(),
        size=1,
    )
    invoice_store_extraction(invoice, data)
    invoice.status = InvoiceStatus.VALIDATED
    invoice.save(update_fields=["status"])
    return Invoice.objects.prefetch_related("lines", "issues").get(pk=invoice.pk)


def make_vendor(**fields) -> Vendor:
    """A vendor in the master; by default the seller of `make_invoice()`."""
    values = {"name": "Muster Bürobedarf GmbH", "vat_id": VALID_VAT_ID, "country": "DE"}
    values.update(fields)
    return Vendor.objects.create(**values)
