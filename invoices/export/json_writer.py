"""Invoices as one JSON document for the ERP.

    {"exported_at": "2026-03-01T10:00:00+00:00",
     "invoices": [{...the contract's invoice object..., "lines": [...], "vat_breakdown": [...]}]}

Each invoice carries the field names of the contract (docs/invoices.md: the
shape of `import_invoices --json` and the API) plus the remaining EN 16931 fields
we store; amounts are decimal strings, dates ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from django.utils import timezone

from invoices.export.values import number_text, ordered, sorted_lines
from invoices.models import Invoice, InvoiceLine
from invoices.money import money_or_none, money_text, stored_amount
from invoices.representation import invoice_as_dict

# EN 16931 fields beyond the contract's, under their model names.
_MORE_TEXT = (
    "type_code",
    "profile",
    "buyer_reference",
    "purchase_order_reference",
    "seller_country",
    "buyer_vat_id",
    "buyer_country",
    "payment_iban",
)
_MORE_MONEY = ("line_total", "allowance_total", "charge_total", "prepaid_amount", "rounding_amount")


def write_json(invoices: Iterable[Invoice], *, exported_at: dt.datetime | None = None) -> bytes:
    """The invoices as UTF-8 JSON bytes, ordered by id. Prefetch `lines` and `issues` on the queryset."""
    document = {
        "exported_at": (exported_at or timezone.now()).isoformat(),
        "invoices": [invoice_export_dict(invoice) for invoice in ordered(invoices)],
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def invoice_export_dict(invoice: Invoice) -> dict:
    """One invoice as exported: the contract's object, the other EN 16931 fields, lines and VAT breakdown."""
    data = invoice_as_dict(invoice)
    data.update({name: getattr(invoice, name) or None for name in _MORE_TEXT})
    data.update({name: money_or_none(getattr(invoice, name)) for name in _MORE_MONEY})
    data["lines"] = [_line(line) for line in sorted_lines(invoice)]
    data["vat_breakdown"] = [_vat_row(row) for row in invoice.vat_breakdown or [] if isinstance(row, dict)]
    return data


def _line(line: InvoiceLine) -> dict:
    return {
        "position": line.position,
        "line_id": line.line_id or None,
        "name": line.name or None,
        "quantity": _number(line.quantity),
        "unit_code": line.unit_code or None,
        "net_price": _number(line.net_price),
        "line_amount": money_or_none(line.line_amount),
        "vat_category": line.vat_category or None,
        "vat_rate": _number(line.vat_rate),
    }


def _vat_row(row: dict) -> dict:
    """A stored breakdown row with its amounts written like every other amount ('1460.5' -> '1460.50')."""

    def amount(key: str) -> str | None:
        value = stored_amount(row.get(key))
        return money_text(value) if value is not None else _raw(row.get(key))

    rate = stored_amount(row.get("rate"))
    return {
        "category": row.get("category") or None,
        "rate": number_text(rate) if rate is not None else _raw(row.get("rate")),
        "taxable_amount": amount("taxable_amount"),
        "tax_amount": amount("tax_amount"),
        "exemption_reason": row.get("exemption_reason") or None,
    }


def _raw(value) -> str | None:
    return None if value in (None, "") else str(value)


def _number(value) -> str | None:
    return None if value is None else number_text(value)
