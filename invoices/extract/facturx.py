"""PDF invoices with embedded XML: Factur-X / ZUGFeRD 2.x (CII), ZUGFeRD 1.0, and UBL in a PDF.

The factur-x library finds the embedded file; the XML itself is parsed with our
hardened parser and read by the CII / UBL readers, so a PDF and a bare XML file
of the same invoice give the same result. A PDF with no embedded invoice XML is
not handled here (the pdf-text extractor reads those).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from io import BytesIO

import facturx
from lxml import etree
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError

from invoices.extract.base import ExtractedInvoice, Extractor, InvalidInvoice
from invoices.extract.cii import CII_TAG, ZUGFERD1_TAG, CiiExtractor, Zugferd1Extractor
from invoices.extract.ubl import CREDIT_NOTE_TAG, INVOICE_TAG, UblExtractor
from invoices.extract.xmlread import XmlExtractor
from invoices.extract.xmlsafe import parse_xml

logger = logging.getLogger(__name__)

# Names the standards give the embedded invoice file (compared in lower case).
INVOICE_XML_NAMES = frozenset({"factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml"})

# Root element of the embedded XML -> (reader, format reported for the PDF).
_READERS: dict[str, tuple[XmlExtractor, str]] = {
    CII_TAG: (CiiExtractor(), "facturx"),
    ZUGFERD1_TAG: (Zugferd1Extractor(), "zugferd1"),
    INVOICE_TAG: (UblExtractor(), "ubl"),
    CREDIT_NOTE_TAG: (UblExtractor(), "ubl"),
}

_ENCRYPTED_MESSAGE = (
    "The PDF is password-protected (encrypted), so the invoice data inside it cannot be read. "
    "Ask the supplier for an unprotected copy."
)

_local = threading.local()


def looks_like_pdf(content: bytes) -> bool:
    """PDF readers accept the %PDF- header anywhere in the first 1024 bytes."""
    return b"%PDF-" in content[:1024]


@dataclass
class _Embedded:
    """What a PDF carries: an invoice XML file (parsed once), or the fact that it is encrypted."""

    xml: bytes | None = None
    filename: str = ""
    encrypted: bool = False
    root: etree._Element | None = None
    notes: list[str] = field(default_factory=list)
    error: InvalidInvoice | None = None

    def parse(self) -> None:
        """Parse the embedded XML with the hardened parser, keeping the root or the error."""
        if self.xml is None:
            return
        try:
            self.root = parse_xml(self.xml, warnings=self.notes)
        except InvalidInvoice as exc:
            self.error = exc


class FacturxExtractor(Extractor):
    """PDFs with an embedded e-invoice XML; format "facturx" (CII), "zugferd1" or "ubl"."""

    format = "facturx"

    def can_handle(self, content: bytes) -> bool:
        """True for a PDF that carries invoice XML (even damaged XML) or that is encrypted."""
        if not looks_like_pdf(content):
            return False
        found = _embedded(content)
        if found is None:
            return False
        # Some other XML attached under another name (a delivery note, metadata) does not
        # make the PDF an e-invoice; the pdf-text reader should get it.
        return (
            found.encrypted
            or (found.root is not None and found.root.tag in _READERS)
            or found.filename.lower() in INVOICE_XML_NAMES
        )

    def detected_format(self, content: bytes) -> str:
        """The embedded XML's format: "zugferd1" or "ubl" for those syntaxes, else "facturx"."""
        found = _embedded(content)
        if found is not None and found.root is not None and found.root.tag in _READERS:
            return _READERS[found.root.tag][1]
        return self.format

    def extract(self, content: bytes) -> ExtractedInvoice:
        """Read the embedded XML; InvalidInvoice for encrypted PDFs and damaged or foreign XML."""
        try:
            found = _embedded(content)
            if found is None:
                raise InvalidInvoice("The PDF does not contain an embedded e-invoice (Factur-X, ZUGFeRD or UBL).")
            return _read(found)
        except InvalidInvoice:
            raise
        except Exception as exc:
            raise InvalidInvoice(f"The PDF's embedded invoice could not be read: {exc}") from exc
        finally:
            forget_embedded()


def _read(found: _Embedded) -> ExtractedInvoice:
    if found.encrypted:
        raise InvalidInvoice(_ENCRYPTED_MESSAGE)
    name = found.filename
    if found.error is not None:
        reason = str(found.error)
        raise InvalidInvoice(
            f"The invoice file {name} embedded in the PDF is damaged: {reason[:1].lower()}{reason[1:]}"
        ) from (found.error.__cause__ or found.error)
    root = found.root
    if root is None or root.tag not in _READERS:
        raise InvalidInvoice(
            f"The file {name} embedded in the PDF is not an invoice we read "
            f"(root element {root.tag if root is not None else 'none'}); expected Factur-X / ZUGFeRD CII or UBL."
        )
    reader, pdf_format = _READERS[root.tag]
    try:
        invoice = reader.read(root)
    except InvalidInvoice as exc:
        raise InvalidInvoice(f"{str(exc).rstrip('.')} (file {name} embedded in the PDF).") from exc
    invoice.format = pdf_format
    invoice.xml = found.xml
    invoice.warnings[:0] = [f"{name}: {note}" for note in found.notes]
    if pdf_format == "ubl":
        invoice.warnings.append(f"The PDF carries a UBL invoice ({name}) rather than Factur-X / ZUGFeRD CII.")
    return invoice


def _embedded(content: bytes) -> _Embedded | None:
    """The PDF's embedded invoice XML, remembered per thread for the same bytes object.

    Detection (`can_handle`) and extraction ask the same question of the same bytes;
    opening the PDF once is half the cost of this format.
    """
    memo = getattr(_local, "memo", None)
    if memo is not None and memo[0] is content:
        return memo[1]
    found = _find_embedded(content)
    if found is not None:
        found.parse()
    _local.memo = (content, found)
    return found


def forget_embedded() -> None:
    """Drop the remembered PDF and its parsed XML for this thread."""
    _local.memo = None


def _find_embedded(content: bytes) -> _Embedded | None:
    try:
        filename, xml = facturx.get_xml_from_pdf(content, check_xsd=False)
    except FileNotDecryptedError:
        return _Embedded(encrypted=True)
    except Exception:
        # A PDF pypdf cannot open is not recognisably an e-invoice; the pdf-text reader gets its turn.
        logger.debug("PDF could not be opened to look for embedded XML", exc_info=True)
        return None
    if xml:
        return _Embedded(xml=xml, filename=filename)
    return _find_damaged_invoice_xml(content)


def _find_damaged_invoice_xml(content: bytes) -> _Embedded | None:
    """An attachment named like an invoice XML that factur-x skipped because it does not parse.

    factur-x silently ignores embedded XML it cannot parse; such a PDF is still an
    e-invoice, and the user must hear why it cannot be read (or get it repaired).
    """
    try:
        for attachment in PdfReader(BytesIO(content)).attachment_list:
            if attachment.name.lower() in INVOICE_XML_NAMES and attachment.content:
                return _Embedded(xml=attachment.content, filename=attachment.name)
    except Exception:
        logger.debug("PDF attachments could not be listed", exc_info=True)
    return None
