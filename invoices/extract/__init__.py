"""Invoice extraction: detect a file's format from its content, then read it with that format's extractor.

The file name is never consulted: mail attachments are misnamed too often, and a
name is not evidence. Every failure reaches the caller as InvalidInvoice with a
message a person can act on; the original exception stays chained for the logs.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded

from invoices.extract.base import ExtractedInvoice, Extractor, InvalidInvoice
from invoices.extract.cii import CiiExtractor, Zugferd1Extractor
from invoices.extract.csv_table import CsvExtractor
from invoices.extract.facturx import FacturxExtractor, forget_embedded, looks_like_pdf
from invoices.extract.images import ImageExtractor, image_kind, looks_like_page
from invoices.extract.pdf_text import PdfTextExtractor
from invoices.extract.ubl import UblExtractor
from invoices.extract.xmlsafe import forget_shared, looks_like_xml, parse_xml

__all__ = [
    "REGISTRY",
    "ExtractedInvoice",
    "InvalidInvoice",
    "detect_format",
    "extract",
    "image_kind",
    "looks_like_page",
]

logger = logging.getLogger(__name__)

# Order matters: structured data first (a PDF with embedded XML is Factur-X, not text),
# the guessing extractors last.
REGISTRY: tuple[Extractor, ...] = (
    FacturxExtractor(),
    UblExtractor(),
    CiiExtractor(),
    Zugferd1Extractor(),
    PdfTextExtractor(),
    ImageExtractor(),
    CsvExtractor(),
)

# Exceptions that are not about the file and must keep their meaning for the job runner.
_PASS_THROUGH = (SoftTimeLimitExceeded,)


def detect_format(content: bytes) -> str | None:
    """The format of `content` ("ubl", "cii", "facturx", "zugferd1", "pdf-text", "image", "csv"), or None."""
    extractor, _ = _find_extractor(content)
    try:
        return extractor.detected_format(content) if extractor is not None else None
    finally:
        _forget_parsed()


def extract(content: bytes) -> ExtractedInvoice:
    """Detect the format of `content` and extract the invoice.

    Raises InvalidInvoice ("Unrecognised file: ..." when no extractor reads this
    kind of file); never any other exception for bad input.
    """
    extractor, detection_error = _find_extractor(content)
    if extractor is None:
        _forget_parsed()
        description, cause = _describe_unrecognised(content)
        raise InvalidInvoice(f"Unrecognised file: {description}") from (cause or detection_error)
    try:
        invoice = extractor.extract(content)
    except (InvalidInvoice, *_PASS_THROUGH):
        raise
    except Exception as exc:
        logger.exception("Extractor %s crashed", extractor.format)
        raise InvalidInvoice(f"The {extractor.format} file could not be read: {exc}") from exc
    finally:
        _forget_parsed()
    if not isinstance(invoice, ExtractedInvoice):
        raise InvalidInvoice(f"The {extractor.format} reader returned no invoice.")
    return invoice


def _forget_parsed() -> None:
    """Detection keeps the last parsed document per thread; a large one must not outlive the call."""
    forget_shared()
    forget_embedded()


def _find_extractor(content: bytes) -> tuple[Extractor | None, Exception | None]:
    """The first extractor that claims `content`, and the first error any `can_handle` raised.

    A crash while one extractor examines the file must not stop the others from trying.
    """
    first_error: Exception | None = None
    if not content:
        return None, None
    for extractor in REGISTRY:
        try:
            if extractor.can_handle(content):
                return extractor, first_error
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            logger.warning("Format detection by %s failed", extractor.format, exc_info=True)
            first_error = first_error or exc
    return None, first_error


def _describe_unrecognised(content: bytes) -> tuple[str, Exception | None]:
    """Say what the file looks like, so the person can tell what went wrong (and the parser's error)."""
    if not content or not content.strip():
        return "the file is empty.", None
    if looks_like_xml(content):
        try:
            root = parse_xml(content)
        except InvalidInvoice as exc:
            return _lower_first(str(exc)), exc
        return (
            f"the XML document's root element is {root.tag}, which is not an invoice format we read "
            "(UBL Invoice / CreditNote, CII CrossIndustryInvoice, ZUGFeRD 1.0 CrossIndustryDocument).",
            None,
        )
    if looks_like_pdf(content):
        return "the PDF has no embedded e-invoice and its text could not be read as an invoice.", None
    return (
        "it is not an e-invoice (UBL, CII, Factur-X / ZUGFeRD), a PDF, an image (JPEG, PNG, TIFF) "
        "or a CSV table we can read "
        f"(it starts with {content[:16]!r}).",
        None,
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
