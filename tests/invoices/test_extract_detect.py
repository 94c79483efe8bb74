"""Format detection from content, the registry order, and the outcome for every sample file."""

from __future__ import annotations

import io

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from lxml import etree
from pypdf import PdfReader

import invoices.extract as extraction
from invoices.extract import detect_format, extract
from invoices.extract.base import ExtractedInvoice, Extractor, InvalidInvoice
from invoices.extract.pdf_text import PdfTextExtractor
from tests.invoices.einvoice_reference import SAMPLES, sample_files, sample_id

FOLDERS = ["en16931-ubl", "en16931-cii", "peppol-bis3", "facturx-zugferd", "problem-files"]
ALL_SAMPLES = [path for folder in FOLDERS for path in sample_files(folder)]

_XML_FORMATS = {
    "Invoice": "ubl",
    "CreditNote": "ubl",
    "CrossIndustryInvoice": "cii",
    "CrossIndustryDocument": "zugferd1",
}
_PDF_FORMATS = {"CrossIndustryInvoice": "facturx", "CrossIndustryDocument": "zugferd1"}

# Decided per file after reading it: fail1.pdf is a ZUGFeRD 1.0 invoice whose issue date has
# format="1020" and whose InvoiceCurrencyCode is empty, so it cannot become an invoice.
EXPECTED_FAILURES = {"fail1.pdf": ("BT-2", "BT-5")}


def expected_format(path) -> str:
    """What the file is, judged from its bytes by hand: XML root element, or the PDF's attached XML."""
    content = path.read_bytes()
    if content.startswith(b"%PDF"):
        attachments = {a.name.lower(): a.content for a in PdfReader(io.BytesIO(content)).attachment_list}
        xml = attachments.get("factur-x.xml") or attachments.get("zugferd-invoice.xml")
        # The one damaged sample declares an illegal encoding name; the root name is still plain text.
        root = etree.fromstring(xml.replace(b"UTF-8-W/O-BOM", b"UTF-8"))
        return _PDF_FORMATS[etree.QName(root).localname]
    return _XML_FORMATS[etree.QName(etree.fromstring(content)).localname]


def test_the_sample_folders_are_there():
    assert len(ALL_SAMPLES) >= 80, SAMPLES


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=sample_id)
def test_every_sample_file_is_detected_from_its_content_and_extracts_or_fails_clearly(path):
    content = path.read_bytes()
    fmt = expected_format(path)

    assert detect_format(content) == fmt
    if path.name in EXPECTED_FAILURES:
        with pytest.raises(InvalidInvoice) as caught:
            extract(content)
        assert all(term in str(caught.value) for term in EXPECTED_FAILURES[path.name])
        return
    invoice = extract(content)
    assert isinstance(invoice, ExtractedInvoice)
    assert invoice.format == fmt
    assert invoice.invoice_number and invoice.issue_date and invoice.currency


def test_eicar_test_files_are_ordinary_invoices_whose_attachment_is_kept_untouched():
    """The EICAR antivirus test string sits base64-encoded in an attachment element.

    Decision: extraction does not execute or decode attachments, so these are valid
    invoices; the original bytes are kept so a virus scanner downstream sees them.
    """
    for name in ("eicar.ubl.xml", "eicar.cii.xml"):
        content = (SAMPLES / "problem-files" / name).read_bytes()
        eicar_base64 = b"WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUh"
        assert eicar_base64 in content
        invoice = extract(content)
        assert invoice.xml == content


def test_a_pdf_with_embedded_xml_is_facturx_even_though_pdf_text_could_read_it():
    content = (SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf").read_bytes()
    assert PdfTextExtractor().can_handle(content)
    assert detect_format(content) == "facturx"


def test_a_pdf_without_embedded_xml_goes_to_the_text_reader():
    content = (SAMPLES / "unstructured-pdf" / "hetzner-2016-01-19.pdf").read_bytes()
    assert detect_format(content) == "pdf-text"


def test_detection_ignores_leading_whitespace_and_a_byte_order_mark():
    content = (SAMPLES / "peppol-bis3" / "base-example.xml").read_bytes()
    assert detect_format(b"\xef\xbb\xbf\n  " + content) == "ubl"
    assert extract(b"\xef\xbb\xbf\n  " + content).invoice_number


def test_utf16_encoded_invoice_is_read():
    content = (SAMPLES / "peppol-bis3" / "base-example.xml").read_bytes()
    utf16 = content.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert detect_format(utf16) == "ubl"
    assert extract(utf16).invoice_number == extract(content).invoice_number


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>', "rss"),
        (b'{"invoice_number": "1"}', "not an e-invoice"),
        (b"PK\x03\x04\x14\x00\x00\x00", "not an e-invoice"),
        (b"<Invoice><cbc:ID>1</Invoice>", "not well-formed"),
    ],
)
def test_unrecognised_content_is_invalid_with_a_description(content, detail):
    assert detect_format(content) is None
    with pytest.raises(InvalidInvoice, match=r"^Unrecognised file: ") as caught:
        extract(content)
    assert detail in str(caught.value)


def test_parser_error_behind_an_unrecognised_xml_is_chained():
    with pytest.raises(InvalidInvoice) as caught:
        extract(b"<Invoice><unclosed></Invoice>")
    assert isinstance(caught.value.__cause__, InvalidInvoice)
    assert isinstance(caught.value.__cause__.__cause__, etree.XMLSyntaxError)


class _Exploding(Extractor):
    """A reader with a bug, to show that callers never see anything but InvalidInvoice."""

    format = "exploding"

    def __init__(self, *, in_detection: bool = False, error: BaseException | None = None) -> None:
        self.in_detection = in_detection
        self.error = error or KeyError("no such field")

    def can_handle(self, content: bytes) -> bool:
        if self.in_detection:
            raise self.error
        return content.startswith(b"BOOM")

    def extract(self, content: bytes) -> ExtractedInvoice:
        raise self.error


def test_a_crash_inside_an_extractor_surfaces_as_invalid_invoice_with_the_cause_chained(monkeypatch):
    monkeypatch.setattr(extraction, "REGISTRY", (_Exploding(), *extraction.REGISTRY))
    with pytest.raises(InvalidInvoice, match="could not be read") as caught:
        extract(b"BOOM")
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_crash_during_detection_does_not_stop_the_other_extractors(monkeypatch):
    monkeypatch.setattr(extraction, "REGISTRY", (_Exploding(in_detection=True), *extraction.REGISTRY))
    content = (SAMPLES / "peppol-bis3" / "base-example.xml").read_bytes()
    assert extract(content).format == "ubl"
    with pytest.raises(InvalidInvoice, match="Unrecognised file") as caught:
        extract(b"\x00\x01\x02 binary")
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_task_time_limit_is_not_disguised_as_a_bad_file(monkeypatch):
    monkeypatch.setattr(extraction, "REGISTRY", (_Exploding(error=SoftTimeLimitExceeded()), *extraction.REGISTRY))
    with pytest.raises(SoftTimeLimitExceeded):
        extract(b"BOOM")
