"""Helpers shared by the structured-format extractors: numbers, dates, document type.

Values in e-invoices are strings; these turn them into Decimal and datetime.date
with the strict lexical rules the standards use (xsd:decimal, ISO dates, UN/CEFACT
date format 102), so that "1,234.50" or "NaN" are never read as money.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import fields
from decimal import Decimal, InvalidOperation

from invoices.extract.base import ExtractedInvoice, InvalidInvoice

# xsd:decimal: optional sign, digits, optional fraction; no exponent, no grouping.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
# xsd:date with an optional time zone; UBL writes 2024-11-15 (sometimes with "Z" or "+01:00").
_ISO_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T[\d:.]+)?(?:Z|[+-]\d{2}:\d{2})?", re.ASCII)
_DATE_102_RE = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)  # re.ASCII: "٢٠٢٤" is not a year here

# UNTDID 1001 codes that EN 16931 and its CIUS (Peppol, XRechnung, CIUS-FR) treat as credit notes.
CREDIT_NOTE_TYPE_CODES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "502", "503", "532"}
)

# The fields whose absence makes a file unusable as an invoice, with how users know them.
MANDATORY_FIELDS = {
    "invoice_number": ("invoice number", "BT-1"),
    "issue_date": ("issue date", "BT-2"),
    "currency": ("invoice currency code", "BT-5"),
}


def parse_decimal(text: str | None) -> Decimal | None:
    """Read an xsd:decimal; None when empty. Raises ValueError for anything else."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    if not _DECIMAL_RE.fullmatch(value):
        raise ValueError(f"{value[:40]!r} is not a decimal number")
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid literals
        raise ValueError(f"{value[:40]!r} is not a decimal number") from exc


def parse_iso_date(text: str | None) -> dt.date | None:
    """Read an ISO 8601 date (YYYY-MM-DD, time or zone ignored); None when empty."""
    if text is None or not text.strip():
        return None
    match = _ISO_DATE_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text.strip()[:40]!r} is not a date in the form YYYY-MM-DD")
    return _date(*match.groups(), original=text)


def parse_cefact_date(text: str | None, date_format: str | None) -> dt.date | None:
    """Read a UN/CEFACT DateTimeString; format 102 (YYYYMMDD) is the one EN 16931 allows.

    A missing format attribute is read as 102; an ISO date is tolerated because some
    generators write one, and the meaning is unambiguous.
    """
    if text is None or not text.strip():
        return None
    value = text.strip()
    if date_format not in (None, "", "102"):
        raise ValueError(f"date format {date_format!r} is not 102 (YYYYMMDD)")
    match = _DATE_102_RE.fullmatch(value)
    if match:
        return _date(*match.groups(), original=value)
    if _ISO_DATE_RE.fullmatch(value):
        return parse_iso_date(value)
    raise ValueError(f"{value[:40]!r} is not a date in format 102 (YYYYMMDD)")


def _date(year: str, month: str, day: str, *, original: str) -> dt.date:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError as exc:
        raise ValueError(f"{original.strip()[:40]!r} is not a valid calendar date") from exc


class ValueReader:
    """Reads typed values from element text; a value that cannot be read becomes None plus a warning.

    Only the mandatory fields stop extraction (see `require_mandatory`); a garbled optional
    amount must not hide the rest of the invoice, but a person has to be told about it.
    """

    def __init__(self) -> None:
        self.warnings: list[str] = []
        # Mandatory fields whose value is present but unreadable: field name -> reason.
        self.unreadable: dict[str, str] = {}

    def mandatory(self, read, *args: str | None, field: str):
        """Read a mandatory value with `read` (a parse_* function); failures go to `unreadable`."""
        try:
            return read(*args)
        except ValueError as exc:
            self.unreadable[field] = str(exc)
            return None

    def amount(self, text: str | None, label: str) -> Decimal | None:
        """An xsd:decimal, or None (with a warning if something unreadable was written)."""
        try:
            return parse_decimal(text)
        except ValueError as exc:
            self.warnings.append(f"{label}: {exc}; the value was ignored.")
            return None

    def iso_date(self, text: str | None, label: str) -> dt.date | None:
        """An ISO date (UBL), or None with a warning."""
        try:
            return parse_iso_date(text)
        except ValueError as exc:
            self.warnings.append(f"{label}: {exc}; the value was ignored.")
            return None

    def cefact_date(self, text: str | None, date_format: str | None, label: str) -> dt.date | None:
        """A UN/CEFACT date (CII), or None with a warning."""
        try:
            return parse_cefact_date(text, date_format)
        except ValueError as exc:
            self.warnings.append(f"{label}: {exc}; the value was ignored.")
            return None


def one_line(text: str | None) -> str:
    """Names are shown on one line; generators wrap long ones inside the element."""
    return " ".join(text.split()) if text else ""


def document_type(type_code: str, *, credit_note_root: bool = False) -> str:
    """'credit_note' for a CreditNote document or a credit-note type code, else 'invoice'."""
    if credit_note_root or type_code in CREDIT_NOTE_TYPE_CODES:
        return "credit_note"
    return "invoice"


def require_mandatory(
    invoice: ExtractedInvoice, *, syntax: str, elements: dict[str, str], unreadable: dict[str, str]
) -> None:
    """Raise InvalidInvoice naming every mandatory field (BT number and element) missing or unreadable.

    `unreadable` maps a field name to why its value could not be read (e.g. a bad date).
    """
    problems = []
    for name, (label, term) in MANDATORY_FIELDS.items():
        where = f"{label} ({term}, {elements[name]})"
        if name in unreadable:
            problems.append(f"the {where} cannot be read: {unreadable[name]}")
        elif not getattr(invoice, name):
            problems.append(f"the {where} is missing")
    if problems:
        raise InvalidInvoice(f"The {syntax} document cannot be read as an invoice: {'; '.join(problems)}.")


def complete_amount_due(invoice: ExtractedInvoice, *, stated: str) -> None:
    """Derive BT-115 from BT-112 - BT-113 + BT-114 when a document leaves it out (ZUGFeRD 1.0 BASIC does).

    `stated` is the document's own text for BT-115: a written but unreadable value is
    reported, never papered over. Payment needs the amount due; the derived value is
    marked as derived (confidence 0.9) and a warning says so.
    """
    if stated.strip() or invoice.amount_due is not None or invoice.total_gross is None:
        return
    invoice.amount_due = invoice.total_gross - (invoice.prepaid_amount or 0) + (invoice.rounding_amount or 0)
    invoice.confidence["amount_due"] = 0.9
    invoice.warnings.append(
        "The amount due for payment (BT-115) is not stated; it was computed as total with VAT (BT-112) "
        "minus paid amount (BT-113) plus rounding (BT-114)."
    )


def fill_confidence(invoice: ExtractedInvoice) -> None:
    """Structured formats state their values: confidence 1.0 for every field that was read."""
    for name in _SCALAR_FIELDS:
        value = getattr(invoice, name)
        if value is not None and value != "":
            invoice.confidence.setdefault(name, 1.0)


# The single-valued invoice fields a confidence applies to (computed once: this runs per invoice).
_SCALAR_FIELDS = tuple(
    f.name
    for f in fields(ExtractedInvoice)
    if f.name not in {"format", "type", "confidence", "warnings", "xml", "vat_breakdown", "lines"}
)
