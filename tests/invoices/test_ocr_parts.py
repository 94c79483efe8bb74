"""The pieces of OCR that need no OCR program: which pages need OCR, image sniffing, hOCR words and their
layout, per-field word confidence, the API and admin links to the searchable PDF, mail attachments."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from email.message import EmailMessage

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from emailsync.attachments import candidate_attachments
from invoices.extract import detect_format, image_kind, looks_like_page
from invoices.extract.pdf_text import PdfTextExtractor
from invoices.extract.pdf_text.reading import read_pdf_text
from invoices.models import Invoice, InvoiceSource, InvoiceStatus, OcrStatus
from invoices.ocr.confidence import field_word_confidence, mean_word_confidence
from invoices.ocr.engine import Word, parse_hocr
from invoices.ocr.layout import page_renderings
from invoices.ocr.pages import text_is_usable
from invoices.services import searchable_pdf_path

HOCR = b"""<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><body><div class='ocr_page' title='bbox 0 0 1700 2300'>
<span class='ocr_line' title="bbox 100 100 400 130">
<span class='ocrx_word' title='bbox 100 100 250 130; x_wconf 95'>Rechnung</span>
<span class='ocrx_word' title='bbox 260 100 400 130; x_wconf 91'>471102</span></span>
<span class='ocr_line' title="bbox 100 500 300 530">
<span class='ocrx_word' title='bbox 100 500 300 530; x_wconf 93'>Gesamtbetrag</span></span>
<span class='ocr_line' title="bbox 1200 502 1400 532">
<span class='ocrx_word' title='bbox 1200 502 1330 532; x_wconf 41'>1.234,56</span>
<span class='ocrx_word' title='bbox 1340 502 1400 532; x_wconf 88'>EUR</span></span>
<span class='ocr_separator' title='bbox 0 600 1700 610'></span>
</div></body></html>"""


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


# --- which pages need OCR ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "usable"),
    [
        ("Rechnung Nr. 471102 vom 05.03.2024\nGesamtbetrag 1.234,56 EUR", True),
        ("Invoice 2024-17  Total due 99.00", True),
        ("1.234,56  17,00  19 %\n 4711  0815  2024-03-05", True),  # a table of numbers is still text
        ("", False),
        ("   \n\f  ", False),
        ("Seite 1", False),  # a stamp or a page number on a scanned page
        ("(cid:12)(cid:34)(cid:56)(cid:78)(cid:90)(cid:11)(cid:22)(cid:33)", False),  # no Unicode map
        ("\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a", False),
        ("Qwrtz Pfldk Brstn Xkcd Mnbv Cxyz Lkjh Gfds Trwq Zxcv Bnml", False),  # letter salad
    ],
)
def test_a_text_layer_counts_only_when_it_reads_as_text(text, usable):
    assert text_is_usable(text) is usable


# --- images ----------------------------------------------------------------------------------------------


def test_images_are_recognised_from_their_bytes_not_their_name():
    page = png(1240, 1754)
    assert image_kind(page) == "png" and detect_format(page) == "image"
    jpeg = io.BytesIO()
    Image.new("RGB", (10, 10)).save(jpeg, format="JPEG")
    assert image_kind(jpeg.getvalue()) == "jpeg"
    tiff = io.BytesIO()
    Image.new("L", (10, 10)).save(tiff, format="TIFF")
    assert image_kind(tiff.getvalue()) == "tiff"
    assert image_kind(b"%PDF-1.7 ...") is None and image_kind(b"GIF89a") is None
    assert looks_like_page(page) and not looks_like_page(png(300, 80))  # a logo is not an invoice


def test_a_page_sized_image_in_a_mail_is_a_candidate_and_a_logo_is_not():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "ap@example.com", "Rechnung"
    message["Message-ID"] = "<scan@example.com>"
    message.set_content("Anbei die Rechnung.")
    message.add_attachment(png(1240, 1754), maintype="image", subtype="png", filename="scan.png")
    message.add_attachment(png(200, 60), maintype="image", subtype="png", filename="logo.png")
    parsed = candidate_attachments(message.as_bytes())
    assert [(a.filename, a.detected_kind) for a in parsed.candidates] == [("scan.png", "image")]
    assert [(p.filename, p.reason) for p in parsed.skipped] == [("logo.png", "not an invoice type (image/png)")]


# --- hOCR, layout, word confidence -------------------------------------------------------------------------


def test_hocr_lines_keep_reading_order_boxes_and_confidences():
    lines = parse_hocr(HOCR)
    assert [[word.text for word in line.words] for line in lines] == [
        ["Rechnung", "471102"],
        ["Gesamtbetrag"],
        ["1.234,56", "EUR"],
    ]
    assert lines[2].words[0] == Word("1.234,56", 0.41, (1200, 502, 1330, 532))
    assert parse_hocr(b"not xml at all") == []


def test_the_layout_rendering_puts_a_label_and_its_amount_on_one_row():
    layout, plain = page_renderings(parse_hocr(HOCR))
    assert plain.splitlines() == ["Rechnung 471102", "Gesamtbetrag", "1.234,56 EUR"]
    rows = layout.splitlines()
    assert rows[0].split() == ["Rechnung", "471102"]
    assert rows[-1].split() == ["Gesamtbetrag", "1.234,56", "EUR"]  # same height: one row, far apart
    assert "" in rows  # the gap between them
    assert rows[-1].index("1.234,56") > rows[-1].index("Gesamtbetrag") + 20


def test_a_fields_confidence_is_that_of_the_words_it_was_read_from():
    words = [word for line in parse_hocr(HOCR) for word in line.words]
    assert field_word_confidence("471102", words) == 0.91
    assert field_word_confidence(Decimal("1234.56"), words) == 0.41  # printed "1.234,56"
    assert field_word_confidence(Decimal("99.00"), words) is None  # not on the page
    assert field_word_confidence(dt.date(2024, 3, 5), [Word("05.03.2024", 0.8)]) == 0.8
    assert (
        field_word_confidence("DE 123 456 789", [Word("USt-IdNr:", 0.9), Word("DE123", 0.7), Word("456789", 0.95)])
        == 0.7
    )
    assert mean_word_confidence([Word("-", 0.1), Word("ab", 0.8), Word("cd", 0.6)]) == pytest.approx(0.7)


def test_the_extractor_reads_ocr_text_given_for_a_page():
    layout, plain = page_renderings(parse_hocr(HOCR))
    blank = io.BytesIO()
    Image.new("L", (800, 1100), 255).save(blank, format="PDF", resolution=100.0)
    text = read_pdf_text(blank.getvalue(), page_texts={0: (layout, plain)})
    assert text.layout == layout and text.plain == plain
    invoice = PdfTextExtractor().extract_text(text)
    assert invoice.total_gross == Decimal("1234.56")


# --- API and admin ------------------------------------------------------------------------------------------


@pytest.fixture
def ocred_invoice(db, make_user):
    owner = make_user("clerk", role="ap_clerk")
    invoice = Invoice.objects.create(
        source=InvoiceSource.UPLOAD,
        owner=owner,
        original="originals/xx",
        original_filename="scan.jpg",
        sha256="ab" * 32,
        size=10,
        status=InvoiceStatus.NEEDS_REVIEW,
        format="pdf-ocr",
        ocr_status=OcrStatus.DONE,
        ocr_pages=1,
        ocr_confidence=0.91,
    )
    name = searchable_pdf_path(invoice.sha256)
    if default_storage.exists(name):
        default_storage.delete(name)
    invoice.searchable_pdf = default_storage.save(name, ContentFile(b"%PDF-1.7 searchable"))
    invoice.save()
    return invoice


def test_the_api_shows_what_ocr_did_and_serves_the_searchable_pdf_to_its_owner_only(
    ocred_invoice, client_for, make_user
):
    client = client_for(ocred_invoice.owner)
    detail = client.get(f"/api/v1/invoices/{ocred_invoice.pk}/").json()
    url = f"/api/v1/invoices/{ocred_invoice.pk}/searchable-pdf/"
    assert detail["ocr"] == {"status": "done", "pages": 1, "confidence": 0.91, "searchable_pdf_url": url}
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == b"%PDF-1.7 searchable"
    outsider = make_user("outsider")  # every clerk permission but invoices.view_all: sees only their own
    outsider.user_permissions.set(
        Group.objects.get(name="ap_clerk").permissions.exclude(content_type__app_label="invoices", codename="view_all")
    )
    assert client_for(outsider).get(url).status_code == 404
    ocred_invoice.searchable_pdf = ""
    ocred_invoice.save()
    assert client.get(url).status_code == 404
    assert client.get(f"/api/v1/invoices/{ocred_invoice.pk}/").json()["ocr"]["searchable_pdf_url"] is None


def test_the_admin_links_the_searchable_pdf(ocred_invoice, client, make_user):
    client.force_login(make_user("admin", staff=True, superuser=True))
    page = client.get(f"/admin/invoices/invoice/{ocred_invoice.pk}/change/").content.decode()
    link = f"/admin/invoices/invoice/{ocred_invoice.pk}/searchable-pdf/"
    assert link in page
    assert b"".join(client.get(link).streaming_content) == b"%PDF-1.7 searchable"
