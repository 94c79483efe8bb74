"""Who sent an invoice and which number it carries, as the duplicate rules compare them.

Kept on every invoice (`seller_key`, `number_key`) so the rules find earlier
invoices of the same seller through an index instead of normalising every row
in SQL.
"""

from __future__ import annotations


def normalise_vat_id(value: str) -> str:
    """A VAT id as compared: upper case, without spaces, dots and dashes ('de 136.695.976' -> 'DE136695976')."""
    return "".join(value.split()).replace(".", "").replace("-", "").upper()


def normalise_invoice_number(value: str) -> str:
    """An invoice number as compared: no whitespace, case-folded (' r 2024-01 ' == 'R2024-01')."""
    return "".join(value.split()).casefold()


def seller_key_for(vat_id: str, name: str) -> str:
    """The normalised VAT id, else the case-folded name; '' when neither is known."""
    vat_id = normalise_vat_id(vat_id)
    if vat_id:
        return f"vat:{vat_id}"
    name = " ".join(name.split()).casefold()
    return f"name:{name}" if name else ""
