"""Reads that answer "is this invoice a duplicate?": one answer for the validation
rules (invoices.validation.rules.duplicates) and the compliance scan (monitoring).
Only models are imported here, so the rules can import it without a cycle."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import ExtractYear

from invoices.models import Invoice, InvoiceStatus

# Rows that do not count when looking for a duplicate: duplicate files, failed and rejected invoices.
NOT_COUNTED_STATUSES = (InvoiceStatus.DUPLICATE, InvoiceStatus.FAILED, InvoiceStatus.REJECTED)


def counted_invoices() -> QuerySet[Invoice]:
    """Invoices a duplicate may be found among (and that compliance policies look at)."""
    return Invoice.objects.exclude(status__in=NOT_COUNTED_STATUSES)


def same_seller_invoices(invoice: Invoice, seller_key: str | None = None) -> QuerySet[Invoice]:
    """Other counted invoices of the same document type from the same seller: the
    normalised VAT id, else the case-folded name (`seller_key`, indexed; pass it when
    the invoice's fields changed since it was saved)."""
    key = invoice.seller_key if seller_key is None else seller_key
    return counted_invoices().filter(seller_key=key, type=invoice.type).exclude(pk=invoice.pk)


def invoices_numbered_like_an_earlier_one(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Of `invoices`, those whose number (normalised: `number_key`) an earlier counted
    invoice of the same seller and type already carries in the same issue year: the
    `duplicate.number` question asked of many invoices at once."""
    earlier = counted_invoices().filter(
        seller_key=OuterRef("seller_key"),
        type=OuterRef("type"),
        number_key=OuterRef("number_key"),
        issue_date__year=ExtractYear(OuterRef("issue_date")),
        pk__lt=OuterRef("pk"),
    )
    return (
        invoices.exclude(seller_key="").exclude(number_key="").filter(issue_date__isnull=False).filter(Exists(earlier))
    )
