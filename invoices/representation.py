"""The invoice as JSON: one shape for `import_invoices --json`, the API and exports.

Amounts are decimal strings ("1234.50"), dates ISO 8601 (the API contract, docs/invoices.md).
"""

from __future__ import annotations

from invoices.models import Invoice
from invoices.money import money_or_none
from invoices.selectors import invoice_is_visible

AMOUNT_FIELDS = ("total_net", "tax_total", "total_gross", "amount_due")


def iso(value) -> str | None:
    return value.isoformat() if value else None


def invoice_as_dict(invoice: Invoice, *, file: str | None = None, viewer=None) -> dict:
    """The contract's invoice object. Issues are read from the prefetched
    `issues` relation when present.

    `viewer`: the user the answer is for (None: the system, e.g. a command). A
    duplicate names the invoice it duplicates only when the viewer may see that one.
    """
    return {
        "file": file if file is not None else invoice.original_filename,
        "invoice_id": invoice.pk,
        "status": invoice.status,
        "format": invoice.format or None,
        "invoice_number": invoice.invoice_number or None,
        "type": invoice.type,
        "issue_date": iso(invoice.issue_date),
        "due_date": iso(invoice.due_date),
        "currency": invoice.currency or None,
        "seller_name": invoice.seller_name or None,
        "seller_vat_id": invoice.seller_vat_id or None,
        "buyer_name": invoice.buyer_name or None,
        **{name: money_or_none(getattr(invoice, name)) for name in AMOUNT_FIELDS},
        "line_count": invoice.lines.count() if not _prefetched(invoice, "lines") else len(invoice.lines.all()),
        "issues": [
            {"code": issue.code, "severity": issue.severity, "message": issue.message} for issue in invoice.issues.all()
        ],
        "error": _error(invoice, viewer),
    }


def visible_duplicate_of(invoice: Invoice, viewer) -> int | None:
    """The id of the invoice this one duplicates, if the viewer may see it (else None)."""
    if invoice.duplicate_of_id is None:
        return None
    if viewer is None or invoice_is_visible(user=viewer, invoice_id=invoice.duplicate_of_id):
        return invoice.duplicate_of_id
    return None


def _error(invoice: Invoice, viewer) -> str | None:
    if invoice.status == "duplicate" and invoice.duplicate_of_id is not None:
        first = visible_duplicate_of(invoice, viewer)
        return "The same file was received before" + (f" as invoice {first}." if first else ".")
    return invoice.error or None


def _prefetched(invoice: Invoice, relation: str) -> bool:
    return relation in getattr(invoice, "_prefetched_objects_cache", {})
