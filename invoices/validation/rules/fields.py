"""Fields an invoice cannot be paid or booked without, and fields read with low confidence."""

from __future__ import annotations

from invoices.extract.pdf_text import KEY_FIELDS
from invoices.models import Invoice, OcrStatus
from invoices.validation.base import Finding, Rule, decimal_parameter, names_parameter

# Field -> how people call it (with its EN 16931 term).
FIELD_LABELS = {
    "invoice_number": "invoice number (BT-1)",
    "issue_date": "issue date (BT-2)",
    "due_date": "payment due date (BT-9)",
    "currency": "currency (BT-5)",
    "buyer_reference": "buyer reference (BT-10)",
    "purchase_order_reference": "purchase order (BT-13)",
    "seller_name": "seller name (BT-27)",
    "seller_vat_id": "seller VAT id (BT-31)",
    "seller_country": "seller country (BT-40)",
    "buyer_name": "buyer name (BT-44)",
    "buyer_vat_id": "buyer VAT id (BT-48)",
    "buyer_country": "buyer country (BT-55)",
    "payment_iban": "IBAN (BT-84)",
    "total_net": "total without VAT (BT-109)",
    "tax_total": "VAT total (BT-110)",
    "total_gross": "total with VAT (BT-112)",
    "amount_due": "amount due (BT-115)",
}


def _is_missing(invoice: Invoice, name: str) -> bool:
    value = getattr(invoice, name)
    return value is None or (isinstance(value, str) and not value.strip())


class MissingFieldsRule(Rule):
    code = "fields.missing"
    description = (
        "The fields listed in `fields` are present (by default: invoice number, issue date, currency, "
        "seller name, total with VAT)."
    )
    default_parameters = {"fields": ["invoice_number", "issue_date", "currency", "seller_name", "total_gross"]}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        names = names_parameter(params, "fields", allowed=FIELD_LABELS)
        missing = [FIELD_LABELS[name] for name in names if _is_missing(invoice, name)]
        if not missing:
            return []
        return [self.finding(f"Missing: {', '.join(missing)}.")]


class LowConfidenceRule(Rule):
    code = "extraction.low_confidence"
    description = (
        "Key fields read with a confidence below `threshold` (guesses of the PDF text reader) are "
        "checked by a person. Fields that were not found at all are `fields.missing`'s business."
    )
    default_parameters = {
        "threshold": "0.6",
        "fields": list(KEY_FIELDS),  # every field the PDF text reader gives a confidence
    }

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        threshold = decimal_parameter(params, "threshold")
        names = names_parameter(params, "fields", allowed=FIELD_LABELS)
        confidence = invoice.confidence if isinstance(invoice.confidence, dict) else {}
        doubtful = []
        for name in names:
            value = confidence.get(name)
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if is_number and value < float(threshold) and not _is_missing(invoice, name):
                doubtful.append(f"{FIELD_LABELS[name]} ({value:.2f})")
        if not doubtful:
            return []
        source = {"pdf-text": "the PDF text", "pdf-ocr": "the scan by OCR"}.get(invoice.format, "the file")
        return [
            self.finding(f"Read from {source} with low confidence; compare with the original: {', '.join(doubtful)}.")
        ]


class ScanRule(Rule):
    code = "extraction.ocr"
    description = (
        "A scan or photo is checked by a person when its text could not be read (OCR not installed or "
        "switched off) or was read by OCR with a mean word confidence below `min_confidence`."
    )
    default_parameters = {"min_confidence": "0.7"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        minimum = decimal_parameter(params, "min_confidence")
        if invoice.ocr_status == OcrStatus.UNAVAILABLE:
            return [
                self.finding(
                    "The file is a scan or photo and OCR is not installed, so nothing could be read. "
                    "Install OCR (docs/formats.md) and reprocess, or enter the invoice by hand."
                )
            ]
        if invoice.ocr_status == OcrStatus.DISABLED:
            return [
                self.finding(
                    "The file is a scan or photo and OCR is switched off (OCR_ENABLED), so nothing "
                    "could be read. Enter the invoice by hand, or switch OCR on and reprocess."
                )
            ]
        confidence = invoice.ocr_confidence
        if invoice.ocr_status == OcrStatus.DONE and (confidence is None or confidence < float(minimum)):
            read = "no words" if confidence is None else f"a mean word confidence of {confidence:.0%}"
            return [
                self.finding(
                    f"The scan was read by OCR with {read} (below {float(minimum):.0%}): compare "
                    "every field with the original."
                )
            ]
        return []
