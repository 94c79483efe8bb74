"""The vendor master: who the seller is to us, whether we may pay them, and their approval limit."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Value
from django.db.models.functions import Replace, Upper

from invoices.identity import normalise_vat_id
from invoices.models import Invoice, Severity, Vendor
from invoices.money import money_label
from invoices.validation.base import (
    Finding,
    Rule,
    RuleParameterError,
    decimal_parameter,
    is_credit_note,
)
from invoices.vendor_policy import purchase_order_missing, vendor_blocked


def match_vendor(invoice: Invoice) -> Vendor | None:
    """The Vendor this invoice comes from, or None.

    By VAT id first (compared without spaces, dots, dashes and case); else by the
    exact name, ignoring case. A vendor recorded with a different VAT id is another
    company even when the name is the same, so a name match needs the invoice or
    the vendor to have no VAT id. Several vendors with the same name: the oldest.
    """
    vat_id = normalise_vat_id(invoice.seller_vat_id)
    if vat_id:
        compact = Upper(
            Replace(Replace(Replace(F("vat_id"), Value(" "), Value("")), Value("."), Value("")), Value("-"), Value(""))
        )
        vendor = Vendor.objects.annotate(vat_compact=compact).filter(vat_compact=vat_id).order_by("pk").first()
        if vendor is not None:
            return vendor
    name = " ".join(invoice.seller_name.split())
    if not name:
        return None
    by_name = Vendor.objects.filter(name__iexact=name).order_by("pk")
    if vat_id:
        by_name = by_name.filter(vat_id="")
    return by_name.first()


_MATCH_CACHE = "_validation_matched_vendor"


def invoice_vendor(invoice: Invoice) -> Vendor | None:
    """The vendor assigned to the invoice (by the pipeline or by a person), else the one that matches.

    The match is remembered on this Python object for the rest of the validation run
    (four rules ask); `forget_vendor_match` clears it. Nothing is saved.
    """
    if invoice.vendor_id is not None:
        return invoice.vendor
    if not hasattr(invoice, _MATCH_CACHE):
        setattr(invoice, _MATCH_CACHE, match_vendor(invoice))
    return getattr(invoice, _MATCH_CACHE)


def forget_vendor_match(invoice: Invoice) -> None:
    """Drop the remembered match, so the next validation run matches again."""
    if hasattr(invoice, _MATCH_CACHE):
        delattr(invoice, _MATCH_CACHE)


class UnknownVendorRule(Rule):
    code = "vendor.unknown"
    uses_database = True
    default_severity = Severity.WARNING
    description = "The seller is in the vendor master (matched by VAT id, else by name)."

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        if invoice_vendor(invoice) is not None:
            return []
        seller = " ".join(invoice.seller_name.split())
        if not seller and not invoice.seller_vat_id:
            return [self.finding("The invoice names no seller (no name, no VAT id), so no vendor can be matched.")]
        if seller and invoice.seller_vat_id:
            who = f"{seller} (VAT id {invoice.seller_vat_id})"
        else:
            who = seller or f"with VAT id {invoice.seller_vat_id}"
        namesake = Vendor.objects.filter(name__iexact=seller).exclude(vat_id="").first() if seller else None
        if namesake is not None:
            return [
                self.finding(
                    f"The seller {who} is not in the vendor master. A vendor named {namesake.name} exists, but with "
                    f"VAT id {namesake.vat_id}: check whose invoice this is before paying it."
                )
            ]
        return [self.finding(f"The seller {who} is not in the vendor master.")]


class BlockedVendorRule(Rule):
    code = "vendor.blocked"
    uses_database = True
    description = "The vendor is not blocked in the vendor master."

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        vendor = invoice_vendor(invoice)
        if not vendor_blocked(vendor):
            return []
        reason = f" ({vendor.notes.strip()[:200]})" if vendor.notes.strip() else ""
        return [self.finding(f"The vendor {vendor.name} is blocked{reason}; do not pay this invoice.")]


class PurchaseOrderRequiredRule(Rule):
    code = "vendor.purchase_order_required"
    uses_database = True
    description = "Invoices of vendors marked 'requires purchase order' carry a purchase order reference (BT-13)."

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        vendor = invoice_vendor(invoice)
        if not purchase_order_missing(invoice, vendor):
            return []
        return [
            self.finding(
                f"The vendor {vendor.name} requires a purchase order number (BT-13) on every invoice; "
                "this one has none."
            )
        ]


class ApprovalThresholdRule(Rule):
    code = "approval.threshold"
    uses_database = True
    description = (
        "Invoices whose total with VAT (BT-112, its absolute value, so credit notes too) is above the "
        "vendor's approval limit need approval. Without a vendor limit: the limit for the invoice "
        "currency in `limits_by_currency`, else the general `limit`."
    )
    default_parameters = {"limit": "10000.00", "limits_by_currency": {}}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        if invoice.total_gross is None:
            return []
        vendor = invoice_vendor(invoice)
        limit, whose = self._limit(invoice, vendor, params)
        amount = abs(invoice.total_gross)
        if amount <= limit:
            return []
        document = "credit note" if is_credit_note(invoice) else "invoice"
        return [
            self.finding(
                f"This {document} needs approval: its total {money_label(amount, invoice.currency)} is above {whose} "
                f"({money_label(limit, invoice.currency)})."
            )
        ]

    @staticmethod
    def _limit(invoice: Invoice, vendor: Vendor | None, params: dict) -> tuple[Decimal, str]:
        if vendor is not None and vendor.approval_limit is not None:
            return vendor.approval_limit, f"the approval limit of {vendor.name}"
        by_currency = params.get("limits_by_currency") or {}
        if not isinstance(by_currency, dict):
            raise RuleParameterError(
                "the parameter 'limits_by_currency' must be an object such as "
                f'{{"USD": "12000.00"}}, not {by_currency!r}'
            )
        if invoice.currency in by_currency:
            limit = decimal_parameter(by_currency, invoice.currency)
            return limit, f"the approval limit for {invoice.currency}"
        return decimal_parameter(params, "limit"), "the general approval limit"
