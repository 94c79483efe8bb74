"""Amounts: the one place that rounds them and writes them as text.

EN 16931 amounts have two decimals; rounding is half up (as the standard's
examples and the ERP imports expect).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")


def round_cents(value: Decimal) -> Decimal:
    """An amount rounded half up to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(value: Decimal) -> str:
    """An amount with two decimals and a decimal point: '1234.50', '-7.90' (files and JSON)."""
    return f"{value:.2f}"


def money_or_none(value: Decimal | None) -> str | None:
    """money_text, or None for a missing amount (the JSON contract's null)."""
    return None if value is None else money_text(value)


def money_label(value: Decimal | None, currency: str = "") -> str:
    """An amount as people read it in a message: '1234.50 EUR', or '(none)'."""
    if value is None:
        return "(none)"
    return f"{money_text(value)} {currency}".strip()


def stored_amount(value: object) -> Decimal | None:
    """An amount as stored in JSON (the VAT breakdown keeps strings) as Decimal; None when
    empty, unreadable or not finite."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
