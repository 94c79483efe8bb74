"""Reads that answer "may we pay this vendor?" and "does this invoice lack the purchase
order its vendor requires?": one answer for the validation rules
(invoices.validation.rules.vendor) and the compliance scan (monitoring), per invoice
and over a queryset. Only models are imported here."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from invoices.models import Invoice, Vendor

# A reference of only whitespace is no reference (the rules strip it).
_NO_PO = Q(purchase_order_reference__regex=r"^\s*$")


def vendor_blocked(vendor: Vendor | None) -> bool:
    """Whether the vendor master says not to pay this vendor."""
    return vendor is not None and vendor.status == Vendor.Status.BLOCKED


def purchase_order_missing(invoice: Invoice, vendor: Vendor | None) -> bool:
    """Whether the vendor requires a purchase order reference (BT-13) and the invoice has none."""
    return vendor is not None and vendor.requires_purchase_order and not invoice.purchase_order_reference.strip()


def invoices_of_blocked_vendors(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """vendor_blocked over a queryset (the invoices' assigned vendor)."""
    return invoices.filter(vendor__status=Vendor.Status.BLOCKED)


def invoices_missing_required_po(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """purchase_order_missing over a queryset (the invoices' assigned vendor)."""
    return invoices.filter(_NO_PO, vendor__requires_purchase_order=True)
