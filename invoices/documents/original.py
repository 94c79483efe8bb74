"""What the review page shows of an invoice's original: which renderer, and its result.

The kind is decided from the bytes (a PDF header, an XML root), with the file
name and the extracted format only as a fallback: a file that failed
extraction still has an original a clerk must be able to look at.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.core.files.storage import default_storage

from invoices.documents.einvoice import EInvoiceDocument, render_einvoice, xml_source
from invoices.documents.errors import DocumentUnreadable
from invoices.documents.image import image_page_count, render_image_page
from invoices.documents.pdf import pdf_page_count, render_pdf_page
from invoices.extract.base import InvalidInvoice
from invoices.extract.csv_table import decode_csv_bytes, sniff_delimiter
from invoices.extract.facturx import looks_like_pdf
from invoices.extract.images import image_kind
from invoices.extract.xmlsafe import looks_like_xml
from invoices.models import Invoice

# A CSV invoice has one row per line; beyond this the table is cut (the download has all of it).
MAX_TABLE_ROWS = 1000
PDF_FORMATS = frozenset({"facturx", "pdf-text"})


class OriginalMissing(Exception):
    """The stored original is not in storage any more."""


@dataclass
class OriginalView:
    """The left pane of the review page."""

    kind: str  # "pdf" (PDF or scan: page images) | "einvoice" | "xml" | "csv" | "other"
    error: str = ""
    page_count: int = 0
    searchable_copy: bool = False  # pages come from the OCR's searchable PDF, not the original
    document: EInvoiceDocument | None = None
    source: str = ""
    table_header: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    table_cut: bool = False


def invoice_original_bytes(invoice: Invoice) -> bytes:
    """The stored original; OriginalMissing when storage lost it."""
    name = invoice.original.name
    if not name or not default_storage.exists(name):
        raise OriginalMissing("The stored original file is missing.")
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def invoice_display_pdf(invoice: Invoice, content: bytes | None = None) -> tuple[bytes, bool] | None:
    """The PDF whose pages the review page shows, and whether it is the OCR's searchable copy.

    The searchable PDF that OCR stored beside the original (issue 12) wins when it
    exists; else the original when it is a PDF; else None.
    """
    searchable = invoice.searchable_pdf.name
    if searchable and default_storage.exists(searchable):
        # A scan that OCR read: its searchable copy shows the same pages (deskewed, turned upright).
        with default_storage.open(searchable, "rb") as handle:
            return handle.read(), True
    content = invoice_original_bytes(invoice) if content is None else content
    if not _is_pdf(invoice, content):
        return None
    return content, False


def invoice_original_view(invoice: Invoice) -> OriginalView:
    """Decide how to show the original and render what the page needs up front.

    PDF pages themselves are fetched by the browser one by one (the page image
    view); here only the page count is read. Never raises for bad content: an
    original that cannot be shown becomes a view with `error` set.
    """
    try:
        content = invoice_original_bytes(invoice)
    except OriginalMissing as exc:
        return OriginalView(kind="other", error=str(exc))
    try:
        display = invoice_display_pdf(invoice, content)
    except OSError as exc:  # the searchable copy is there but unreadable: show why, keep the page
        return OriginalView(kind="pdf", error=f"The searchable copy made by OCR cannot be read: {exc}.")
    if display is not None:
        pdf, searchable = display
        try:
            return OriginalView(kind="pdf", page_count=pdf_page_count(pdf), searchable_copy=searchable)
        except DocumentUnreadable as exc:
            return OriginalView(kind="pdf", error=str(exc))
    if image_kind(content) is not None:
        try:
            return OriginalView(kind="pdf", page_count=image_page_count(content))
        except DocumentUnreadable as exc:
            return OriginalView(kind="pdf", error=str(exc))
    if looks_like_xml(content):
        try:
            return OriginalView(kind="einvoice", document=render_einvoice(content))
        except DocumentUnreadable as exc:
            return OriginalView(kind="xml", error=str(exc), source=xml_source(content))
    if invoice.format == "csv" or invoice.original_filename.lower().endswith((".csv", ".txt")):
        return _csv_view(content)
    return OriginalView(kind="other", error="This kind of file cannot be shown here; download the original.")


def _is_pdf(invoice: Invoice, content: bytes) -> bool:
    return (
        looks_like_pdf(content) or invoice.format in PDF_FORMATS or invoice.original_filename.lower().endswith(".pdf")
    )


def _csv_view(content: bytes) -> OriginalView:
    try:
        text, _warnings = decode_csv_bytes(content)
    except InvalidInvoice as exc:
        return OriginalView(kind="csv", error=str(exc))
    try:
        rows = [
            row
            for row in csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
            if any(cell.strip() for cell in row)
        ]
    except csv.Error as exc:
        return OriginalView(kind="csv", error=f"The CSV file cannot be read: {exc}.")
    if not rows:
        return OriginalView(kind="csv", error="The CSV file is empty.")
    return OriginalView(
        kind="csv",
        table_header=rows[0],
        table_rows=rows[1 : MAX_TABLE_ROWS + 1],
        table_cut=len(rows) - 1 > MAX_TABLE_ROWS,
    )


class NotAPdf(Exception):
    """The invoice's original is not a PDF, so it has no page images."""


def invoice_page_image(invoice: Invoice, page_number: int, dpi: int = 150) -> bytes:
    """PNG of one page (1-based) of the PDF the review page shows for `invoice`.

    Raises OriginalMissing, NotAPdf, PageOutOfRange, DocumentUnreadable, or
    ValueError for a dpi outside the renderer's range.
    """
    content = invoice_original_bytes(invoice)
    display = invoice_display_pdf(invoice, content)
    if display is not None:
        return render_pdf_page(display[0], page_number, dpi)
    if image_kind(content) is not None:  # a scan OCR did not turn into a PDF
        return render_image_page(content, page_number, dpi)
    raise NotAPdf("This invoice's original is not a PDF or an image; it has no page images.")
