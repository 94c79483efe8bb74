"""Scanned invoices and photos: OCR with the real OCRmyPDF and Tesseract, through invoice processing.

The scans are made here from the Factur-X / ZUGFeRD samples (tests/invoices/scans.py) and the fields read
from them are compared with the XML embedded in the original. Without OCR installed these tests are
skipped, except those about a missing OCR, which point OCR_COMMAND at a program that does not exist.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import time

import pypdf
import pytest
from django.core.checks import run_checks
from django.core.files.storage import default_storage
from PIL import Image

from invoices.extract import detect_format
from invoices.extract.pdf_text import PdfTextExtractor
from invoices.models import Invoice, InvoiceSource, InvoiceStatus, OcrStatus
from invoices.ocr import document_ocr
from invoices.services import invoice_import_sync, invoice_ingest
from jobs.models import Job
from tests.invoices.scans import FACTURX, encode, mismatches, page_images, truth
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]

needs_ocr = pytest.mark.skipif(
    shutil.which("ocrmypdf") is None or shutil.which("tesseract") is None,
    reason="OCR is not installed (scripts/setup-system.sh)",
)

FRENCH = FACTURX / "Facture_FR_BASICWL.pdf"
GERMAN = FACTURX / "ZUGFeRD_1p0_BASIC_Einfach.pdf"
HETZNER = FACTURX.parent / "unstructured-pdf" / "hetzner-2016-01-19.pdf"
MISSING_PROGRAM = "/nonexistent/bin/ocrmypdf"


def stored_bytes(invoice: Invoice) -> bytes:
    with default_storage.open(invoice.original.name, "rb") as handle:
        return handle.read()


def assert_read_like_the_xml(invoice: Invoice, expected: dict) -> None:
    """All but at most one field as the XML says; an invoice with a field read otherwise is not validated."""
    misread = mismatches(invoice, expected)
    assert len(misread) <= 1, misread
    if misread:
        assert invoice.status == InvoiceStatus.NEEDS_REVIEW, (misread, invoice.confidence)


def assert_low_confidence_is_reviewed(invoice: Invoice) -> None:
    """Never validated on a doubtful reading: any key field under 0.6 means needs_review."""
    doubtful = {
        name: value
        for name, value in invoice.confidence.items()
        if value < 0.6 and getattr(invoice, name) not in (None, "")
    }
    if doubtful:
        assert invoice.status == InvoiceStatus.NEEDS_REVIEW, doubtful
        assert invoice.issues.filter(code="extraction.low_confidence").exists()


# --- through a worker: progress on the Job row -----------------------------------------------------------


@needs_ocr
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_sideways_speckled_scan_pdf_is_ocred_by_the_worker_page_by_page(celery_worker):
    original = FRENCH.read_bytes()
    scan = encode(page_images(original, rotate=True, noise=0.001), "PDF")
    assert detect_format(scan) == "pdf-text"  # an image-only PDF: no XML, no text

    invoice = invoice_ingest(content=scan, filename="scan.pdf", source=InvoiceSource.UPLOAD)
    job = wait_for(
        lambda: Job.objects.filter(
            kind="invoices.process_invoice", subject_id=str(invoice.pk), status__in=["succeeded", "failed"]
        ).first(),
        timeout=240,
    )
    invoice.refresh_from_db()

    assert job.status == "succeeded", job.error
    assert job.result["ocr_pages"] == 1
    assert (job.progress_done, job.progress_total) == (1, 1)
    assert job.progress_message == "OCR of 1 of 1 page(s) done"
    assert invoice.format == "pdf-ocr" and invoice.ocr_status == OcrStatus.DONE and invoice.ocr_pages == 1
    assert_read_like_the_xml(invoice, truth(original))
    assert 0.5 < invoice.ocr_confidence <= 1
    assert any(w.startswith("Read by OCR (Tesseract, languages eng+deu+fra)") for w in invoice.extraction_warnings)
    assert_low_confidence_is_reviewed(invoice)
    # The derived searchable PDF has the text; the original is stored unchanged and still dedupes.
    with default_storage.open(invoice.searchable_pdf.name, "rb") as handle:
        searchable = pypdf.PdfReader(io.BytesIO(handle.read()))
    assert invoice.invoice_number in searchable.pages[0].extract_text()
    assert stored_bytes(invoice) == scan and invoice.sha256 == hashlib.sha256(scan).hexdigest()
    again = invoice_ingest(content=scan, filename="scan-again.pdf", source=InvoiceSource.UPLOAD)
    assert again.status == InvoiceStatus.DUPLICATE and again.duplicate_of_id == invoice.pk


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_pdf_with_a_text_layer_is_not_ocred(celery_worker):
    invoice = invoice_ingest(content=HETZNER.read_bytes(), filename="hetzner.pdf", source=InvoiceSource.UPLOAD)
    job = wait_for(
        lambda: Job.objects.filter(
            kind="invoices.process_invoice", subject_id=str(invoice.pk), status__in=["succeeded", "failed"]
        ).first(),
        timeout=60,
    )
    invoice.refresh_from_db()
    assert job.status == "succeeded", job.error
    # No OCR step ran: no page progress was ever reported and no page was read.
    assert job.result["ocr_pages"] == 0
    assert (job.progress_total, job.progress_message) == (0, "")
    assert invoice.format == "pdf-text" and invoice.ocr_status == OcrStatus.NOT_NEEDED
    assert not invoice.searchable_pdf and invoice.invoice_number


# --- in this process (import_invoices --sync path) -----------------------------------------------------------


@needs_ocr
@pytest.mark.django_db
@pytest.mark.parametrize(("sample", "fmt"), [(GERMAN, "PNG"), (FRENCH, "JPEG")], ids=["german-png", "french-jpeg"])
def test_photos_as_png_and_jpeg_are_read_like_the_original(sample, fmt):
    original = sample.read_bytes()
    photo = encode(page_images(original, pages=1), fmt)
    invoice = invoice_import_sync(content=photo, filename=f"photo.{fmt.lower()}")

    assert invoice.format == "pdf-ocr" and invoice.ocr_pages == 1, invoice.error
    # The fields the text layer of the original gets right, the photo gets right too (or flags).
    text_layer = PdfTextExtractor().extract(original)
    expected = {
        name: value for name, value in truth(original).items() if name not in mismatches(text_layer, {name: value})
    }
    assert len(expected) >= 5
    assert_read_like_the_xml(invoice, expected)
    assert invoice.searchable_pdf.name.endswith(f"{invoice.sha256}-ocr.pdf")
    assert stored_bytes(invoice) == photo
    assert_low_confidence_is_reviewed(invoice)


@needs_ocr
@pytest.mark.django_db
def test_a_multi_page_tiff_reports_each_page_and_keeps_page_order(settings):
    original = FRENCH.read_bytes()
    page = page_images(original, pages=1)[0]
    blank_with_words = page.crop((0, 0, page.width, page.height // 3))  # a second, different page
    tiff = encode([page, blank_with_words.resize(page.size)], "TIFF")
    reported = []

    outcome = document_ocr(content=tiff, progress=lambda done, total, message: reported.append((done, total, message)))

    assert outcome.status == OcrStatus.DONE and (outcome.page_count, outcome.pages_ocred) == (2, 2)
    assert reported == [(0, 2, "OCR page 1 of 2"), (1, 2, "OCR page 2 of 2"), (2, 2, "OCR of 2 of 2 page(s) done")]
    searchable = pypdf.PdfReader(io.BytesIO(outcome.pdf))
    assert len(searchable.pages) == 2
    assert "FA-2017-0010" in searchable.pages[0].extract_text()


@needs_ocr
@pytest.mark.django_db
def test_ocr_stops_before_a_page_that_would_overrun_the_job_time_limit():
    scan = encode(page_images(FRENCH.read_bytes(), pages=1), "PNG")
    outcome = document_ocr(content=scan, deadline=time.monotonic() + 5)
    assert outcome.pages_ocred == 0 and outcome.pdf is None
    assert any("time limit" in warning for warning in outcome.warnings)


@needs_ocr
@pytest.mark.django_db
def test_the_check_names_a_missing_language_pack(settings):
    settings.OCR_LANGUAGES = "eng+xyz"
    [warning] = [message for message in run_checks() if message.id == "invoices.W001"]
    assert "xyz" in warning.msg and "tesseract-ocr-xyz" in warning.msg


# --- OCR missing, switched off, bad images ------------------------------------------------------------------


@pytest.fixture
def photo() -> bytes:
    return encode(page_images(FRENCH.read_bytes(), pages=1, dpi=100), "PNG")


@pytest.mark.django_db
def test_without_ocr_a_photo_goes_to_review_saying_ocr_is_not_installed(settings, photo):
    settings.OCR_COMMAND = MISSING_PROGRAM
    invoice = invoice_import_sync(content=photo, filename="photo.png")
    assert invoice.status == InvoiceStatus.NEEDS_REVIEW
    assert invoice.ocr_status == OcrStatus.UNAVAILABLE and invoice.format == "image" and not invoice.searchable_pdf
    [issue] = invoice.issues.filter(code="extraction.ocr")
    assert "OCR is not installed" in issue.message
    assert any("OCR is not installed" in warning for warning in invoice.extraction_warnings)
    assert stored_bytes(invoice) == photo


@pytest.mark.django_db
def test_without_ocr_a_scanned_pdf_goes_to_review_too(settings, photo):
    settings.OCR_COMMAND = MISSING_PROGRAM
    scan = encode([Image.open(io.BytesIO(photo))], "PDF")
    invoice = invoice_import_sync(content=scan, filename="scan.pdf")
    assert invoice.status == InvoiceStatus.NEEDS_REVIEW and invoice.ocr_status == OcrStatus.UNAVAILABLE
    assert "OCR is not installed" in invoice.issues.get(code="extraction.ocr").message


@pytest.mark.django_db
def test_check_warns_when_ocr_is_enabled_but_missing(settings):
    settings.OCR_COMMAND = MISSING_PROGRAM
    [warning] = [message for message in run_checks() if message.id == "invoices.W001"]
    assert "OCR is not installed" in warning.msg and MISSING_PROGRAM in warning.msg
    settings.OCR_ENABLED = False
    assert not [message for message in run_checks() if message.id == "invoices.W001"]


@pytest.mark.django_db
def test_ocr_switched_off_sends_a_photo_to_review(settings, photo):
    settings.OCR_ENABLED = False
    invoice = invoice_import_sync(content=photo, filename="photo.png")
    assert invoice.status == InvoiceStatus.NEEDS_REVIEW and invoice.ocr_status == OcrStatus.DISABLED
    assert "switched off" in invoice.issues.get(code="extraction.ocr").message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fmt", "enabled"),
    [("PNG", True), ("JPEG", True), ("PNG", False)],
    ids=["png-ocr-on", "jpeg-ocr-on", "png-ocr-off"],
)
def test_a_corrupt_image_fails_with_a_readable_error_and_is_kept(settings, fmt, enabled):
    settings.OCR_ENABLED = enabled
    image = encode(page_images(FRENCH.read_bytes(), pages=1, dpi=100), fmt)
    corrupt = image[: len(image) // 2]  # a truncated upload
    invoice = invoice_import_sync(content=corrupt, filename=f"broken.{fmt.lower()}")
    assert invoice.status == InvoiceStatus.FAILED
    assert invoice.error.startswith(f"The {fmt} image is damaged and cannot be read")
    assert stored_bytes(invoice) == corrupt
