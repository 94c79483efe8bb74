"""PDF invoices with embedded XML: Factur-X / ZUGFeRD 2.x, ZUGFeRD 1.0, and the problem PDFs."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from invoices.extract import extract
from invoices.extract.base import InvalidInvoice
from invoices.extract.facturx import FacturxExtractor
from tests.invoices.einvoice_reference import (
    SAMPLES,
    assert_matches_reference,
    embedded_xml,
    reference_values,
    sample_files,
    sample_id,
)

PDF_SAMPLES = sample_files("facturx-zugferd", ".pdf")


@pytest.mark.parametrize("path", PDF_SAMPLES, ids=sample_id)
def test_every_facturx_and_zugferd_pdf_extracts_the_values_of_its_embedded_xml(path):
    content = path.read_bytes()
    xml = embedded_xml(content)

    invoice = extract(content)

    assert invoice.format == ("zugferd1" if path.name.startswith("ZUGFeRD_1p0") else "facturx")
    assert_matches_reference(invoice, xml)
    assert invoice.xml == xml


def test_pdf_generated_by_another_library_extracts():
    content = (SAMPLES / "problem-files" / "python-factur-x.pdf").read_bytes()
    xml = embedded_xml(content)
    invoice = extract(content)
    assert invoice.format == "facturx"
    assert_matches_reference(invoice, xml)


def test_embedded_xml_with_an_invalid_encoding_name_is_recovered_and_the_user_is_told():
    """The file declares encoding="UTF-8-W/O-BOM" (not a legal name); its bytes are plain UTF-8.

    Decision: read it as UTF-8, because the invoice data is intact and the declared
    name can only mean UTF-8; a warning names the problem so the supplier can be told.
    """
    content = (SAMPLES / "problem-files" / "factur-x-invalid-xml-encoding-attribute.pdf").read_bytes()
    attachments = {a.name: a.content for a in PdfReader(io.BytesIO(content)).attachment_list}
    raw = attachments["factur-x.xml"]
    assert b'encoding="UTF-8-W/O-BOM"' in raw
    repaired_copy = raw.replace(b'encoding="UTF-8-W/O-BOM"', b'encoding="UTF-8"')

    invoice = extract(content)

    assert invoice.format == "facturx"
    assert_matches_reference(invoice, repaired_copy)
    assert invoice.xml == raw, "the original embedded bytes are kept, not the repaired copy"
    assert any("UTF-8-W/O-BOM" in w for w in invoice.warnings)


def test_zugferd1_pdf_with_broken_date_format_and_no_currency_fails_with_both_reasons():
    """fail1.pdf: ZUGFeRD 1.0 with IssueDateTime format="1020" and an empty InvoiceCurrencyCode."""
    content = (SAMPLES / "problem-files" / "fail1.pdf").read_bytes()
    with pytest.raises(InvalidInvoice) as caught:
        extract(content)
    message = str(caught.value)
    assert "BT-2" in message and "1020" in message
    assert "BT-5" in message and "missing" in message


def test_pdf_without_embedded_xml_is_not_a_facturx_file():
    content = (SAMPLES / "unstructured-pdf" / "hetzner-2016-01-19.pdf").read_bytes()
    assert not FacturxExtractor().can_handle(content)


def _pdf(attachments: dict[str, bytes] | None = None, *, source: bytes | None = None, user_password=None) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source))) if source else PdfWriter()
    if not source:
        writer.add_blank_page(width=595, height=842)
    for name, data in (attachments or {}).items():
        writer.add_attachment(name, data)
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


FACTURX_SAMPLE = SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"


def test_password_protected_pdf_is_refused_with_a_clear_message():
    content = _pdf(source=FACTURX_SAMPLE.read_bytes(), user_password="secret")
    with pytest.raises(InvalidInvoice, match="password-protected"):
        extract(content)


def test_pdf_encrypted_only_against_editing_is_still_read():
    original = FACTURX_SAMPLE.read_bytes()
    content = _pdf(source=original, user_password="")
    assert PdfReader(io.BytesIO(content)).is_encrypted

    invoice = extract(content)

    assert_matches_reference(invoice, embedded_xml(original))


def test_damaged_embedded_invoice_xml_is_reported_not_passed_to_text_extraction():
    xml = embedded_xml(FACTURX_SAMPLE.read_bytes())
    content = _pdf({"factur-x.xml": xml[: len(xml) // 2]})

    assert FacturxExtractor().can_handle(content)
    with pytest.raises(InvalidInvoice, match=r"factur-x\.xml.*damaged.*not well-formed"):
        extract(content)


def test_ubl_invoice_embedded_in_a_pdf_is_read_as_ubl():
    ubl = (SAMPLES / "peppol-bis3" / "base-example.xml").read_bytes()
    content = _pdf({"xrechnung.xml": ubl})

    invoice = extract(content)

    assert invoice.format == "ubl"
    assert_matches_reference(invoice, ubl)
    assert invoice.xml == ubl


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title></channel></rss>',
        b'<?xml version="1.0"?><ShopInvoice xmlns="urn:example:shop"><Total>1.00</Total></ShopInvoice>',
    ],
)
def test_pdf_with_an_unrelated_xml_attachment_is_not_a_facturx_file(xml):
    content = _pdf({"data.xml": xml})
    assert not FacturxExtractor().can_handle(content)


def test_same_invoice_as_pdf_and_as_bare_xml_gives_the_same_data():
    content = FACTURX_SAMPLE.read_bytes()
    from_pdf = extract(content)
    from_xml = extract(embedded_xml(content))
    assert reference_values(from_pdf.xml) == reference_values(from_xml.xml)
    assert from_pdf.lines == from_xml.lines
    assert from_pdf.vat_breakdown == from_xml.vat_breakdown
    assert (from_pdf.format, from_xml.format) == ("facturx", "cii")
