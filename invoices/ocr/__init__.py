"""OCR of scans and photos, as a step of processing an invoice (before extraction).

    outcome = document_ocr(content=..., progress=job.progress, deadline=...)
    extracted = extract_scanned(outcome) if outcome.pdf else extract(content)
    apply_word_confidence(extracted, outcome)        # field confidence x OCR word confidence

An image (JPEG, PNG, TIFF, multi-page TIFF) becomes a PDF, one page per frame.
A PDF's pages without a usable text layer are OCRed one by one with OCRmyPDF
(deskew, rotation), the others are kept as they are; the result is one
searchable PDF, stored beside the original as a derived file. A PDF whose pages
all have text, and every structured format, is not touched.

When OCR is switched off or not installed the outcome says so (status and a
reason a person reads) and the invoice goes to review; a page that cannot be
OCRed costs that page only, with a warning.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pypdf
from django.conf import settings

from invoices.extract import detect_format
from invoices.extract.base import ExtractedInvoice
from invoices.extract.images import image_kind, image_to_pdf
from invoices.extract.pdf_text import PdfTextExtractor, read_pdf_text
from invoices.models import OcrStatus
from invoices.ocr.confidence import field_word_confidence, mean_word_confidence, spelt
from invoices.ocr.engine import OcrPageError, Word, ocr_languages, ocr_page, ocr_unavailable_reason
from invoices.ocr.layout import page_renderings
from invoices.ocr.pages import open_pdf, pages_without_text

__all__ = [
    "OcrOutcome",
    "OcrStatus",
    "apply_word_confidence",
    "document_ocr",
    "extract_scanned",
    "ocr_unavailable_reason",
]

logger = logging.getLogger(__name__)

# What is left of the job's time when a page is not started any more: writing the result needs some.
DEADLINE_MARGIN_SECONDS = 10
OCR_FORMAT = "pdf-ocr"


@dataclass
class OcrOutcome:
    """What the OCR step did to one file."""

    status: str = OcrStatus.NOT_NEEDED
    reason: str = ""  # why OCR did not run, for the invoice (status unavailable / disabled)
    pdf: bytes | None = None  # the searchable PDF, when pages were OCRed
    page_count: int = 0
    pages_ocred: int = 0
    words: list[Word] = field(default_factory=list)
    # (layout, plain) text of each OCRed page (0-based), from Tesseract's word boxes (invoices/ocr/layout.py).
    page_texts: dict[int, tuple[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def mean_confidence(self) -> float | None:
        return mean_word_confidence(self.words)


def document_ocr(*, content: bytes, progress: Callable | None = None, deadline: float | None = None) -> OcrOutcome:
    """OCR the pages of `content` that have no text; see the module docstring.

    `progress(done, total, message)` is called before each page ("OCR page 2 of 5");
    `deadline` (time.monotonic()) stops before a page that could not finish in time.
    Raises InvalidInvoice for a damaged image; never for OCR trouble.
    """
    kind = detect_format(content)
    if kind == "image":
        pdf, page_count = image_to_pdf(content)  # InvalidInvoice for a damaged image
        reader = open_pdf(pdf)
        scanned = list(range(page_count))
        what = f"{image_kind(content).upper()} image"
    elif kind == "pdf-text":
        reader = open_pdf(content)
        if reader is None:
            return OcrOutcome()  # extraction says what is wrong with the PDF
        scanned = pages_without_text(reader)
        page_count = len(reader.pages)
        what = "PDF"
    else:
        return OcrOutcome()
    if not scanned or reader is None:
        return OcrOutcome(page_count=page_count)
    outcome = OcrOutcome(page_count=page_count)
    if not settings.OCR_ENABLED:
        outcome.status, outcome.reason = (
            OcrStatus.DISABLED,
            (f"The {what} is a scan without text and OCR is switched off (OCR_ENABLED=0): nothing could be read."),
        )
        return outcome
    unavailable = ocr_unavailable_reason()
    if unavailable:
        outcome.status, outcome.reason = OcrStatus.UNAVAILABLE, unavailable
        return outcome
    _ocr_pages(reader, _pages_within_limit(scanned, outcome), outcome, progress=progress, deadline=deadline)
    return outcome


def _pages_within_limit(scanned: list[int], outcome: OcrOutcome) -> list[int]:
    """At most OCR_MAX_PAGES pages: the first ones and the last (where the totals usually are)."""
    limit = max(1, settings.OCR_MAX_PAGES)
    if len(scanned) <= limit:
        return scanned
    chosen = [*scanned[: limit - 1], scanned[-1]]
    outcome.warnings.append(
        f"{len(scanned)} pages needed OCR; only {limit} were read (OCR_MAX_PAGES): "
        f"pages {', '.join(str(index + 1) for index in chosen)}."
    )
    return chosen


def _ocr_pages(
    reader: pypdf.PdfReader, pages: list[int], outcome: OcrOutcome, *, progress: Callable | None, deadline: float | None
) -> None:
    ocred: dict[int, pypdf.PageObject] = {}
    for done, index in enumerate(pages):
        if progress:
            progress(done, len(pages), f"OCR page {index + 1} of {outcome.page_count}")
        timeout = float(settings.OCR_PAGE_TIMEOUT)
        if deadline is not None:
            left = deadline - time.monotonic() - DEADLINE_MARGIN_SECONDS
            if left < min(timeout, 15):
                outcome.warnings.append(
                    f"OCR stopped before page {index + 1}: the job's time limit was near. "
                    f"{done} of {len(pages)} scanned pages were read."
                )
                break
            timeout = min(timeout, left)
        try:
            page = ocr_page(_single_page(reader, index), timeout=timeout)
        except OcrPageError as exc:
            outcome.warnings.append(f"Page {index + 1}: {exc}")
            continue
        ocred[index] = pypdf.PdfReader(io.BytesIO(page.pdf)).pages[0]
        outcome.words.extend(page.words)
        outcome.page_texts[index] = page_renderings(page.lines)
    if progress:
        progress(len(pages), len(pages), f"OCR of {len(ocred)} of {len(pages)} page(s) done")
    # OCR ran: with no page read (timeouts, failures) there are no words, and the invoice goes to review.
    outcome.status = OcrStatus.DONE
    outcome.pages_ocred = len(ocred)
    if not ocred:
        outcome.warnings.append("OCR read none of the scanned pages.")
        return
    writer = pypdf.PdfWriter()
    for index, page in enumerate(reader.pages):
        writer.add_page(ocred.get(index, page))
    buffer = io.BytesIO()
    writer.write(buffer)
    outcome.pdf = buffer.getvalue()
    mean = outcome.mean_confidence
    outcome.warnings.append(
        f"Read by OCR (Tesseract, languages {ocr_languages()}) from {len(ocred)} scanned page(s)"
        + (f"; mean word confidence {mean:.0%}." if mean is not None else "; no words were recognised.")
    )


def _single_page(reader: pypdf.PdfReader, index: int) -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_page(reader.pages[index])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def extract_scanned(outcome: OcrOutcome) -> ExtractedInvoice:
    """The plain-PDF extractor over the searchable PDF, with OCR's own text for the pages it read."""
    return PdfTextExtractor().extract_text(read_pdf_text(outcome.pdf, page_texts=outcome.page_texts))


def apply_word_confidence(extracted: ExtractedInvoice, outcome: OcrOutcome) -> None:
    """Scale each field's confidence by the OCR confidence of its words, and mark the format as OCR.

    A field read from words Tesseract was unsure of drops below the low-confidence threshold, so the
    invoice goes to review rather than being validated on a misread digit.
    """
    if outcome.status != OcrStatus.DONE:
        return
    extracted.format = OCR_FORMAT
    mean = outcome.mean_confidence or 0.0
    spelt_words = spelt(outcome.words)
    for name, confidence in list(extracted.confidence.items()):
        value = getattr(extracted, name, None)
        if value in (None, ""):
            continue
        words = field_word_confidence(value, outcome.words, spelt_words)
        extracted.confidence[name] = round(confidence * (words if words is not None else mean), 2)
