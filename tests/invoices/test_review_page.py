"""The review page in the admin: the original beside the form, corrections through the
correction service, re-validation, decisions, the queue, and its permissions."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from PIL import Image

from core.models import AuditEntry
from invoices.models import Invoice, InvoiceCorrection, InvoiceStatus
from invoices.review_page.issues import issue_fields
from invoices.services import invoice_import_sync
from tests.invoices.einvoice_reference import SAMPLES
from tests.invoices.review_support import RIGHT_GROSS, WRONG_GROSS, needs_review_invoice

pytestmark = [pytest.mark.services, pytest.mark.django_db]

FACTURX = SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"
UBL = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk", staff=True)


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


def review_url(invoice) -> str:
    return reverse("admin:invoices_invoice_review", args=[invoice.pk])


def form_data(invoice, **changes) -> dict:
    """What the browser posts: every field of the page as shown, with `changes` typed over it."""
    from invoices.review_page.context import review_form

    form = review_form(Invoice.objects.get(pk=invoice.pk))
    data = {row.path: row.value for section in form.sections for row in section.rows}
    for line in form.lines:
        data.update({cell.path: cell.value for cell in line.cells})
    data.update(changes)
    return data


def test_a_pdf_invoice_shows_its_page_image_beside_the_form(clerk_client):
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name)
    page = clerk_client.get(review_url(invoice))
    assert page.status_code == 200
    html = page.content.decode()
    image_url = reverse("admin:invoices_invoice_page_image", args=[invoice.pk, 1])
    assert f'src="{image_url}?dpi=150"' in html
    assert 'name="total_gross"' in html and 'id="btn-approve"' in html
    assert "Download original" in html and "<script src=" in html and "<script>" not in html

    png = clerk_client.get(image_url)
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).width == pytest.approx(1240, abs=2)
    assert clerk_client.get(reverse("admin:invoices_invoice_page_image", args=[invoice.pk, 2])).status_code == 404


def test_a_ubl_invoice_is_rendered_from_its_xml(clerk_client):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename=UBL.name)
    # The extracted seller name is changed: the XML rendering still shows what the XML says.
    Invoice.objects.filter(pk=invoice.pk).update(seller_name="Misread Name")
    html = clerk_client.get(review_url(invoice)).content.decode()
    assert 'id="einvoice"' in html and "De Koksmaat" in html
    assert 'value="Misread Name"' in html
    assert "NL57 RABO 0107307510" in html  # payment account, read from the XML


def test_a_pdf_the_renderer_cannot_open_is_reported_and_the_form_still_saves(clerk_client):
    # An invoice that was read, whose PDF the renderer then cannot open (here: the stored bytes
    # replaced by a broken PDF): the page says so and corrections still save.
    from django.core.files.storage import default_storage

    invoice = needs_review_invoice()
    default_storage.delete(invoice.original.name)
    default_storage.save(invoice.original.name, io.BytesIO(b"%PDF-1.4\n%broken beyond repair"))
    html = clerk_client.get(review_url(invoice)).content.decode()
    assert 'id="original-error"' in html and "The PDF cannot be displayed" in html
    assert 'name="invoice_number"' in html and 'id="download-original"' in html
    image = clerk_client.get(reverse("admin:invoices_invoice_page_image", args=[invoice.pk, 1]))
    assert image.status_code == 422 and b"The PDF cannot be displayed" in image.content

    response = clerk_client.post(
        review_url(invoice), {**form_data(invoice, invoice_number="RE-4711"), "action": "save"}
    )
    assert response.status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).invoice_number == "RE-4711"
    assert InvoiceCorrection.objects.get(invoice=invoice).field_path == "invoice_number"


def test_a_failed_pdf_shows_why_and_the_form_is_read_only(clerk_client):
    invoice = invoice_import_sync(content=b"%PDF-1.4\n%broken beyond repair", filename="scan.pdf")
    assert invoice.status == InvoiceStatus.FAILED
    html = clerk_client.get(review_url(invoice)).content.decode()
    assert "The PDF cannot be displayed" in html and 'id="invoice-error"' in html
    assert '<fieldset class="rv-editable" disabled' in html


def test_issues_are_shown_at_their_field_and_re_validation_clears_them(clerk_client):
    invoice = needs_review_invoice()
    html = clerk_client.get(review_url(invoice)).content.decode()
    gross = html.split('data-path="total_gross"', 1)[1].split('data-path="prepaid_amount"', 1)[0]
    assert "totals.net_tax_gross" in gross and "rv-has-error" in html

    response = clerk_client.post(
        review_url(invoice),
        {**form_data(invoice, total_gross=RIGHT_GROSS), "reason": "misread", "action": "revalidate"},
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert not invoice.issues.filter(code="totals.net_tax_gross").exists()
    correction = InvoiceCorrection.objects.get(invoice=invoice, field_path="total_gross")
    assert (correction.extracted_value, correction.new_value, correction.reason) == (
        WRONG_GROSS,
        RIGHT_GROSS,
        "misread",
    )
    page = clerk_client.get(review_url(invoice)).content.decode()
    assert "corrected · extracted: " + WRONG_GROSS in page and 'id="corrections"' in page


def test_a_wrong_value_saves_nothing_and_keeps_what_was_typed(clerk_client):
    invoice = needs_review_invoice()
    response = clerk_client.post(
        review_url(invoice),
        {
            **form_data(
                invoice, total_gross="twelve", issue_date="2026-02-30", currency="EUX", invoice_number="TYPED-1"
            ),
            "action": "save",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved" in html
    for path in ("total_gross", "issue_date", "currency"):
        field = html.split(f'data-path="{path}"', 1)[1].split('class="rv-field', 1)[0]
        assert "rv-field-error" in field, path
    assert 'value="TYPED-1"' in html and 'value="twelve"' in html
    assert not InvoiceCorrection.objects.filter(invoice=invoice).exists()
    assert Invoice.objects.get(pk=invoice.pk).total_gross == invoice.total_gross


def test_lines_are_added_and_removed_as_corrections(clerk_client):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename=UBL.name)
    count = invoice.lines.count()
    response = clerk_client.post(
        review_url(invoice),
        {
            **form_data(invoice),
            "remove": ["2"],
            "new-0.name": "Freight",
            "new-0.quantity": "1",
            "new-0.line_amount": "12.50",
            "new-3.name": "Packaging",
            "new-3.line_amount": "2.00",
            "action": "save",
        },
    )
    assert response.status_code == 302
    names = list(invoice.lines.values_list("name", flat=True))
    assert len(names) == count + 1 and "Freight" in names and "Packaging" in names
    assert not invoice.lines.filter(position=2).exists()
    paths = sorted(InvoiceCorrection.objects.filter(invoice=invoice).values_list("field_path", flat=True))
    assert "lines[2]" in paths and len(paths) == 3
    history = clerk_client.get(review_url(invoice)).content.decode().split('id="corrections"', 1)[1]
    assert "(line removed)" in history and "name: Freight, quantity: 1" in history


def test_a_bad_value_in_a_new_line_is_shown_in_that_row(clerk_client):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename=UBL.name)
    response = clerk_client.post(
        review_url(invoice),
        {**form_data(invoice), "new-0.name": "Freight", "new-0.line_amount": "a lot", "action": "save"},
    )
    assert response.status_code == 400
    row = response.content.decode().split('data-new-index="0"', 1)[1].split("</tr>", 1)[0]
    assert 'value="a lot"' in row and "rv-cell-error" in row
    assert not InvoiceCorrection.objects.filter(invoice=invoice).exists()


def test_reject_needs_a_reason_and_approve_moves_to_the_next_invoice(clerk_client):
    first = needs_review_invoice("a")
    second = needs_review_invoice("b")
    response = clerk_client.post(review_url(first), {**form_data(first), "action": "reject", "decision_reason": ""})
    assert response.status_code == 400 and "reason for the rejection" in response.content.decode()
    assert Invoice.objects.get(pk=first.pk).status == InvoiceStatus.NEEDS_REVIEW

    response = clerk_client.post(review_url(first), {**form_data(first), "action": "approve"})
    assert response.status_code == 302 and response["Location"].startswith(review_url(second))
    assert Invoice.objects.get(pk=first.pk).status == InvoiceStatus.APPROVED
    assert AuditEntry.objects.filter(action="invoice.approve", target_id=str(first.pk)).exists()

    clerk_client.post(review_url(second), {**form_data(second), "action": "reject", "decision_reason": "Not ours"})
    second.refresh_from_db()
    assert (second.status, second.decision_reason) == (InvoiceStatus.REJECTED, "Not ours")


def test_next_and_previous_walk_the_queue_oldest_first(clerk_client):
    first, second, third = (needs_review_invoice(tag) for tag in "xyz")
    html = clerk_client.get(review_url(second)).content.decode()
    assert f'data-next-url="{review_url(third)}"' in html
    assert f'data-previous-url="{review_url(first)}"' in html
    assert "<kbd>N</kbd> next" in html and "<kbd>A</kbd> approve" in html


def test_the_admin_pages_are_for_staff_only(client, make_user, clerk):
    # Who may see which invoice is invoices_visible_to's business (the API test checks the 404 for
    # someone else's invoice); the admin pages are for staff, others go to the login page.
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name, owner=clerk)
    outsider = make_user("outsider")
    outsider.user_permissions.add(Permission.objects.get(codename="view_invoice", content_type__app_label="invoices"))
    client.force_login(outsider)
    for url in (
        review_url(invoice),
        reverse("admin:invoices_invoice_page_image", args=[invoice.pk, 1]),
        reverse("admin:invoices_invoice_review_queue"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    assert client.post(review_url(invoice), {"action": "save", "invoice_number": "X"}).status_code == 302
    assert not InvoiceCorrection.objects.exists()


def test_the_queue_lists_waiting_invoices_with_counts_and_assigns(clerk_client, clerk):
    waiting = needs_review_invoice()
    done = invoice_import_sync(content=UBL.read_bytes(), filename=UBL.name)
    Invoice.objects.filter(pk=done.pk).update(status=InvoiceStatus.APPROVED)
    url = reverse("admin:invoices_invoice_review_queue")
    html = clerk_client.get(url).content.decode()
    assert f'data-invoice-id="{waiting.pk}"' in html and f'data-invoice-id="{done.pk}"' not in html
    assert "need review" in html

    clerk_client.post(url, {"invoice_id": waiting.pk, "action": "assign_me"})
    assert Invoice.objects.get(pk=waiting.pk).assigned_to == clerk
    mine = clerk_client.get(url + "?mine=1").content.decode()
    assert f'data-invoice-id="{waiting.pk}"' in mine


def test_the_invoice_pages_link_to_the_review_page(clerk_client):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename=UBL.name)
    listing = clerk_client.get(reverse("admin:invoices_invoice_changelist")).content.decode()
    assert review_url(invoice) in listing and reverse("admin:invoices_invoice_review_queue") in listing
    detail = clerk_client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk])).content.decode()
    assert review_url(invoice) in detail


@pytest.mark.parametrize(
    ("code", "message", "fields"),
    [
        (
            "totals.net_tax_gross",
            "Total with VAT (BT-112) 10.00 is not total without VAT (BT-109) + VAT (BT-110).",
            ["total_gross", "total_net", "tax_total"],
        ),
        ("fields.missing", "Missing: seller VAT id (BT-31), currency (BT-5).", ["seller_vat_id", "currency"]),
        (
            "en16931.official",
            "[BR-CO-10] Sum of Invoice line net amount (BT-106) = Σ Invoice line net amount (BT-131).",
            ["line_total", "lines"],
        ),
        ("dates.issue_in_future", "The issue date 2030-01-01 is in the future.", ["issue_date"]),
        ("vendor.unknown", "The seller ACME is not in the vendor master.", ["vendor"]),
        ("en16931.official", "[BR-16] An Invoice shall have at least one Invoice line.", []),
    ],
)
def test_issues_map_to_the_fields_they_concern(code, message, fields):
    assert issue_fields(code, message) == fields


def test_fields_read_with_low_confidence_are_marked(clerk_client):
    # A plain PDF read by the text extractor: its guesses carry a confidence per field.
    path = SAMPLES / "unstructured-pdf" / "hetzner-2016-01-19.pdf"
    invoice = invoice_import_sync(content=path.read_bytes(), filename=path.name)
    assert invoice.format == "pdf-text"
    Invoice.objects.filter(pk=invoice.pk).update(
        confidence={**invoice.confidence, "total_gross": 0.4, "invoice_number": 0.95}
    )
    html = clerk_client.get(review_url(invoice)).content.decode()
    gross = html.split('data-path="total_gross"', 1)[1].split('class="rv-field', 1)[0]
    number = html.split('data-path="invoice_number"', 1)[1].split('class="rv-field', 1)[0]
    assert "low confidence 0.40" in gross and "rv-has-warning" in html
    assert "low confidence" not in number
    assert 'id="page-image"' in html
