"""XML e-invoices rendered from the XML itself (UBL, CII, XRechnung), CSV as a table,
and how the review page decides what to show of an original."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoices.documents.einvoice import render_einvoice, xml_source
from invoices.documents.errors import DocumentUnreadable
from invoices.documents.original import invoice_original_view
from invoices.services import invoice_import_sync
from tests.invoices.einvoice_reference import SAMPLES, reference_values, sample_files

XML_SAMPLES = [
    *sample_files("en16931-ubl", ".xml"),
    *sample_files("en16931-cii", ".xml"),
    *sample_files("peppol-bis3", ".xml"),
]


@pytest.mark.parametrize("path", XML_SAMPLES, ids=lambda p: p.name)
def test_every_sample_renders_with_the_numbers_the_xml_carries(path):
    content = path.read_bytes()
    reference = reference_values(content)

    document = render_einvoice(content)

    assert document.number == reference["invoice_number"]
    assert document.currency == reference["currency"]
    assert document.issue_date == reference["issue_date"].isoformat()
    assert document.seller.name == reference["seller_name"]
    totals = dict(document.totals)
    for label, key in [
        ("Total without VAT", "total_net"),
        ("Total with VAT", "total_gross"),
        ("Amount due", "amount_due"),
        ("VAT", "tax_total"),
    ]:
        if reference[key] is not None:
            assert Decimal(totals[label]) == reference[key], label
    assert document.lines, "every sample has at least one line"
    assert document.tax_rows


def test_a_ubl_invoice_shows_parties_lines_tax_breakdown_and_payment():
    document = render_einvoice((SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml").read_bytes())

    assert document.syntax == "UBL 2.1 Invoice" and document.title == "Invoice"
    assert document.type_code == "380 (Commercial invoice)"
    assert document.seller.name == "De Koksmaat"
    assert document.seller.vat_ids == ["NL8200.98.395.B.01"]
    assert document.seller.country == "NL" and document.seller.address
    assert document.buyer.name
    assert len(document.lines) == 20
    first = document.lines[0]
    assert first.name and first.quantity and first.unit and first.amount and first.vat_category
    assert len(document.tax_rows) == 2
    assert all(row.category.startswith(("S", "Z", "E", "AE")) for row in document.tax_rows)
    assert ("Amount due", "250.33") in document.totals
    assert document.payments and document.payments[0].account == "NL57 RABO 0107307510"
    assert ("Number", "12115118") in document.header


def test_a_ubl_credit_note_reads_credited_quantities():
    document = render_einvoice((SAMPLES / "en16931-ubl" / "ubl-tc434-creditnote1.xml").read_bytes())
    assert document.title == "Credit note" and document.syntax == "UBL 2.1 CreditNote"
    assert document.lines[0].quantity


def test_a_cii_invoice_shows_dates_as_iso_and_the_same_content_as_its_ubl_twin():
    cii = render_einvoice((SAMPLES / "en16931-cii" / "CII_example1.xml").read_bytes())
    ubl = render_einvoice((SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml").read_bytes())

    assert cii.syntax.startswith("UN/CEFACT CII")
    assert cii.issue_date == "2015-01-09"
    assert (cii.number, cii.seller.name, cii.seller.vat_ids) == (ubl.number, ubl.seller.name, ubl.seller.vat_ids)
    assert len(cii.lines) == len(ubl.lines) and cii.lines[0].name == ubl.lines[0].name
    assert [Decimal(line.amount) for line in cii.lines] == [Decimal(line.amount) for line in ubl.lines]


def test_xrechnung_cii_renders_its_buyer_reference():
    document = render_einvoice((SAMPLES / "en16931-cii" / "XRechnung-O.xml").read_bytes())
    assert document.buyer_reference
    assert ("Buyer reference", document.buyer_reference) in document.header


def test_a_document_with_a_doctype_is_refused_by_the_hardened_parser():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol;</Invoice>'
    )
    with pytest.raises(DocumentUnreadable, match="DOCTYPE"):
        render_einvoice(bomb)
    # The source view shows the bytes as sent: the entity reference is not expanded.
    assert "<Invoice" in xml_source(bomb) and ">&lol;</Invoice>" in xml_source(bomb)


def test_xml_that_is_not_an_invoice_is_refused_with_what_it_is():
    with pytest.raises(DocumentUnreadable, match="Order document"):
        render_einvoice(b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"><ID>1</ID></Order>')


@pytest.mark.services
@pytest.mark.django_db
class TestOriginalView:
    @pytest.fixture(autouse=True)
    def _media(self, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path / "media"

    def test_a_facturx_pdf_is_shown_as_pages(self):
        path = SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"
        view = invoice_original_view(invoice_import_sync(content=path.read_bytes(), filename=path.name))
        assert (view.kind, view.page_count, view.error) == ("pdf", 1, "")

    def test_a_ubl_invoice_is_shown_as_a_document(self):
        path = SAMPLES / "en16931-ubl" / "ubl-tc434-example2.xml"
        view = invoice_original_view(invoice_import_sync(content=path.read_bytes(), filename=path.name))
        assert view.kind == "einvoice" and view.document.number == "TOSL108"

    def test_unknown_xml_is_shown_as_its_source(self):
        content = b"<?xml version='1.0'?><Note><To>AP</To></Note>"
        view = invoice_original_view(invoice_import_sync(content=content, filename="note.xml"))
        assert view.kind == "xml" and "Note document" in view.error and "<To>AP</To>" in view.source

    def test_a_broken_pdf_is_a_pdf_view_with_the_reason(self):
        view = invoice_original_view(invoice_import_sync(content=b"%PDF-1.4\ngarbage", filename="scan.pdf"))
        assert view.kind == "pdf" and view.page_count == 0
        assert view.error.startswith("The PDF cannot be displayed")

    def test_a_csv_invoice_is_shown_as_a_table(self):
        content = (
            b"Invoice No;Invoice Date;Currency;Supplier;Description;Qty;Unit Price;Line Amount\n"
            b"INV-9;2026-01-15;EUR;Acme Ltd;Widgets;4;25.00;100.00\n"
            b"INV-9;2026-01-15;EUR;Acme Ltd;Books;2;25.00;50.00\n"
        )
        view = invoice_original_view(invoice_import_sync(content=content, filename="inv.csv"))
        assert view.kind == "csv"
        assert view.table_header[:2] == ["Invoice No", "Invoice Date"]
        assert [row[4] for row in view.table_rows] == ["Widgets", "Books"]

    def test_a_missing_original_says_so(self):
        from django.core.files.storage import default_storage

        path = SAMPLES / "en16931-ubl" / "ubl-tc434-example3.xml"
        invoice = invoice_import_sync(content=path.read_bytes(), filename=path.name)
        default_storage.delete(invoice.original.name)
        assert invoice_original_view(invoice).error == "The stored original file is missing."


@pytest.mark.services
@pytest.mark.django_db
class TestScans:
    """A scan (image) shows its own frames; once OCR stored a searchable PDF, that one's pages."""

    @pytest.fixture(autouse=True)
    def _media(self, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path / "media"

    @pytest.fixture
    def scan(self):
        import io

        from PIL import Image

        from invoices.documents import render_pdf_page
        from invoices.services import invoice_ingest

        pdf = (SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf").read_bytes()
        page = Image.open(io.BytesIO(render_pdf_page(pdf, 1, dpi=200)))
        buffer = io.BytesIO()
        page.convert("L").save(buffer, format="JPEG", quality=80)
        # Stored only: whether OCR is installed here does not matter to what the page shows.
        return invoice_ingest(content=buffer.getvalue(), filename="scan.jpg", source="upload", process=False), pdf

    def test_a_scan_without_a_searchable_copy_shows_its_image_at_page_width(self, scan):
        import io

        from PIL import Image

        from invoices.documents.original import invoice_page_image

        invoice, _pdf = scan
        view = invoice_original_view(invoice)
        assert (view.kind, view.page_count, view.searchable_copy, view.error) == ("pdf", 1, False, "")
        image = Image.open(io.BytesIO(invoice_page_image(invoice, 1, 150)))
        assert image.format == "PNG" and image.width == round(8.27 * 150)
        from invoices.documents.errors import PageOutOfRange

        with pytest.raises(PageOutOfRange, match="the image has 1"):
            invoice_page_image(invoice, 2, 150)

    def test_the_searchable_pdf_made_by_ocr_is_shown_when_there_is_one(self, scan):
        from django.core.files.base import ContentFile

        from invoices.documents import render_pdf_page
        from invoices.documents.original import invoice_page_image

        invoice, pdf = scan
        invoice.searchable_pdf.save(f"{invoice.sha256}-ocr.pdf", ContentFile(pdf))
        view = invoice_original_view(invoice)
        assert (view.kind, view.page_count, view.searchable_copy) == ("pdf", 1, True)
        assert invoice_page_image(invoice, 1, 100) == render_pdf_page(pdf, 1, 100)

    def test_a_damaged_image_is_reported(self):
        from invoices.services import invoice_ingest

        invoice = invoice_ingest(
            content=b"\xff\xd8\xff\xe0 not really a jpeg", filename="x.jpg", source="upload", process=False
        )
        view = invoice_original_view(invoice)
        assert view.kind == "pdf" and view.error.startswith("The image cannot be displayed")
