"""Invoices as one CSV table: one row per invoice line, the invoice's columns repeated on each.

The column names are those of the CSV import (invoices/extract/csv_table.py, docs/formats.md),
so one exported invoice can be imported again; a few more columns follow for the ERP, under
names the import ignores. UTF-8, comma, decimal point, ISO dates.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal

from invoices.export.values import number_text, ordered, sorted_lines
from invoices.extract.csv_table import INVOICE_LEVEL_COLUMNS, LINE_COLUMNS, TOTAL_COLUMNS
from invoices.models import Invoice, InvoiceLine
from invoices.money import money_text

# Columns the import does not read (it ignores them), for the ERP and for tracing back to us.
EXTRA_COLUMNS = (
    "record_id",
    "status",
    "format",
    "type_code",
    "seller_country",
    "buyer_vat_id",
    "buyer_reference",
    "sum_of_lines",
    "allowance_total",
    "charge_total",
    "prepaid_amount",
    "rounding_amount",
    "buyer_country",
)
COLUMNS = (*INVOICE_LEVEL_COLUMNS, *TOTAL_COLUMNS, *LINE_COLUMNS, *EXTRA_COLUMNS)

# Invoice attribute behind a column, where the names differ.
_INVOICE_ATTRIBUTES = {"record_id": "pk", "sum_of_lines": "line_total"}
_LINE_ATTRIBUTES = {"line_name": "name"}
_MONEY = frozenset(
    {
        *TOTAL_COLUMNS,
        "line_amount",
        "sum_of_lines",
        "allowance_total",
        "charge_total",
        "prepaid_amount",
        "rounding_amount",
    }
)
_NUMBERS = frozenset({"quantity", "net_price", "vat_rate"})
# A spreadsheet runs a cell that starts like a formula; suppliers choose their own names.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def write_csv(invoices: Iterable[Invoice]) -> bytes:
    """The invoices as CSV bytes, ordered by invoice id and line position.

    Prefetch `lines` on the queryset; an invoice without lines gets one row whose
    line columns are empty.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for invoice in ordered(invoices):
        invoice_cells = {
            column: _invoice_cell(invoice, column)
            for column in (*INVOICE_LEVEL_COLUMNS, *TOTAL_COLUMNS, *EXTRA_COLUMNS)
        }
        for line in sorted_lines(invoice) or [None]:
            line_cells = {column: _line_cell(line, column) for column in LINE_COLUMNS}
            writer.writerow([_safe(column, {**invoice_cells, **line_cells}[column]) for column in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def _invoice_cell(invoice: Invoice, column: str) -> str:
    return _text(column, getattr(invoice, _INVOICE_ATTRIBUTES.get(column, column)))


def _line_cell(line: InvoiceLine | None, column: str) -> str:
    if line is None:
        return ""
    return _text(column, getattr(line, _LINE_ATTRIBUTES.get(column, column)))


def _text(column: str, value) -> str:
    if value is None:
        return ""
    if column in _MONEY:
        return money_text(value)
    if column in _NUMBERS:
        return number_text(value)
    if isinstance(value, Decimal):
        return number_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _safe(column: str, text: str) -> str:
    """Defuse text that a spreadsheet would run as a formula (CSV injection); numbers stay as they are."""
    if column in _MONEY or column in _NUMBERS:
        return text
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text
