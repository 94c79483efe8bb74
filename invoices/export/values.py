"""How the export writers order invoices and write amounts, shared so the formats agree."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from invoices.models import Invoice, InvoiceLine


def ordered(invoices: Iterable[Invoice]) -> list[Invoice]:
    """The invoices by id: the same selection always gives the same file."""
    return sorted(invoices, key=lambda invoice: invoice.pk)


def sorted_lines(invoice: Invoice) -> list[InvoiceLine]:
    """The invoice's lines by position (from the prefetch cache when the caller prefetched `lines`)."""
    return sorted(invoice.lines.all(), key=lambda line: line.position)


def number_text(value: Decimal) -> str:
    """A quantity, price or rate without trailing zeros or exponent: '2', '0.125', '19', '100'."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text
