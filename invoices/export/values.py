"""How the export writers order invoices and write amounts, shared so the formats agree."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

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


def stored_decimal(value: object) -> Decimal | None:
    """An amount as the VAT breakdown stores it (a string) as Decimal; None when empty or unreadable."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
