"""Plain PDF invoices (no embedded XML): text extraction plus label heuristics in German, English, French.

What is read: invoice number, issue and due date, currency, seller name, seller
VAT id, payment IBAN and the document totals. Lines are not read. Every field
carries a confidence (see docs/formats.md, "## Plain PDF (text extraction)"):
about 0.9 for a labelled value that is confirmed (valid check digits, totals
that add up), 0.5 or less for a guess. A field that was not found is None / ""
with confidence 0.0, so the invoice goes to review instead of being trusted.

Each field has its own small `find_*` function (fields.py, identifiers.py,
totals.py) that takes the page text and returns a `Found` (value, confidence)
or None; they are tried on two renderings of the text (pypdf's layout mode,
which keeps columns and rows, and its plain mode, which keeps reading order)
and the more confident answer wins. reading.py gets the text out of the PDF.
"""

from __future__ import annotations

import re
from decimal import Decimal

from invoices.extract.base import ExtractedInvoice, Extractor
from invoices.extract.pdf_text.fields import (
    detect_document_type,
    find_currency,
    find_due_date,
    find_invoice_number,
    find_issue_date,
    find_seller_name,
)
from invoices.extract.pdf_text.identifiers import find_payment_iban, find_seller_vat_id
from invoices.extract.pdf_text.reading import PdfText, read_pdf_text
from invoices.extract.pdf_text.totals import TOTAL_FIELDS, find_totals, resolve_totals, total_candidates
from invoices.extract.pdf_text.values import Found, T, find_amounts, find_dates, infer_slash_date_order

__all__ = [
    "PdfText",
    "PdfTextExtractor",
    "detect_document_type",
    "find_amounts",
    "find_currency",
    "find_dates",
    "find_due_date",
    "find_invoice_number",
    "find_issue_date",
    "find_payment_iban",
    "find_seller_name",
    "find_seller_vat_id",
    "find_totals",
    "infer_slash_date_order",
    "read_pdf_text",
]

KEY_FIELDS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "seller_name",
    "seller_vat_id",
    "payment_iban",
    "total_net",
    "tax_total",
    "total_gross",
    "amount_due",
)
# Fewer visible characters than this in the whole document means a scan without a text layer.
MIN_TEXT_CHARS = 20


def _more_confident(*found: Found[T] | None) -> Found[T] | None:
    return max((f for f in found if f is not None), key=lambda f: f.confidence, default=None)


class PdfTextExtractor(Extractor):
    """Plain PDF invoices read from their text layer (see docs/formats.md, "## Plain PDF (text extraction)")."""

    format = "pdf-text"

    def can_handle(self, content: bytes) -> bool:
        """Any PDF: the header may follow up to 1 KB of junk, as PDF readers allow."""
        return b"%PDF-" in content[:1024]

    def extract(self, content: bytes) -> ExtractedInvoice:
        """Read the fields a person sees on the invoice; raise InvalidInvoice for unreadable PDFs."""
        return self.extract_text(read_pdf_text(content))

    def extract_text(self, pdf: PdfText) -> ExtractedInvoice:
        """Read the fields from text already taken out of a PDF (by pypdf, or by OCR for scanned pages)."""
        invoice = ExtractedInvoice(format=self.format, warnings=list(pdf.warnings))
        invoice.confidence = dict.fromkeys(KEY_FIELDS, 0.0)
        if len(re.sub(r"\s", "", pdf.plain)) < MIN_TEXT_CHARS:
            invoice.warnings.append(
                "The PDF has no text layer (a scan?) and OCR did not read it, so nothing could be read."
            )
            return invoice
        slash_order = infer_slash_date_order(pdf.plain)
        found: dict[str, Found | None] = {
            "invoice_number": _more_confident(*(find_invoice_number(t) for t in pdf.renderings)),
            "issue_date": _more_confident(*(find_issue_date(t, slash_order=slash_order) for t in pdf.renderings)),
            "due_date": _more_confident(*(find_due_date(t, slash_order=slash_order) for t in pdf.renderings)),
            "currency": _more_confident(*(find_currency(t) for t in pdf.renderings)),
            "seller_name": _more_confident(find_seller_name(pdf.plain), find_seller_name(pdf.layout)),
        }
        for name, finder in (("seller_vat_id", find_seller_vat_id), ("payment_iban", find_payment_iban)):
            results = [finder(t) for t in pdf.renderings]
            best = _more_confident(*(value for value, _ in results))
            found[name] = best
            if best is not None:
                invoice.warnings.extend(next(w for v, w in results if v is best))
        found.update(self._totals(pdf, invoice))
        for name, value in found.items():
            if value is not None:
                setattr(invoice, name, value.value)
                if name in KEY_FIELDS:
                    invoice.confidence[name] = round(value.confidence, 2)
        invoice.type = detect_document_type(pdf.layout)
        self._credit_note_signs(invoice)
        return invoice

    @staticmethod
    def _totals(pdf: PdfText, invoice: ExtractedInvoice) -> dict[str, Found[Decimal]]:
        merged: dict[str, list[Found[Decimal]]] = {name: [] for name in TOTAL_FIELDS}
        prepaid_mentioned = False
        for text in pdf.renderings:
            candidates, mentioned = total_candidates(text)
            prepaid_mentioned |= mentioned
            for name, values in candidates.items():
                merged[name].extend(values)
        totals, warnings = resolve_totals(merged, prepaid_mentioned=prepaid_mentioned)
        invoice.warnings.extend(warnings)
        return totals

    @staticmethod
    def _credit_note_signs(invoice: ExtractedInvoice) -> None:
        """EN 16931 credit notes carry positive amounts; many PDFs print them negative."""
        if invoice.type != "credit_note" or invoice.total_gross is None or invoice.total_gross >= 0:
            return
        for name in TOTAL_FIELDS:
            value = getattr(invoice, name)
            if value is not None:
                setattr(invoice, name, -value)
        invoice.warnings.append(
            "The credit note prints its amounts as negative; they were read as positive amounts of a credit note."
        )
