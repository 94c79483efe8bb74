"""The invoices admin: upload, list, the invoice page, bulk actions, the original file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import AuditEntry
from invoices.models import Invoice, InvoiceStatus
from invoices.services import invoice_import_sync
from tests.invoices.einvoice_reference import SAMPLES

pytestmark = [pytest.mark.services, pytest.mark.django_db]

UBL = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"
PEPPOL = SAMPLES / "peppol-bis3" / "base-example.xml"


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", superuser=True))
    return client


def test_upload_page_stores_several_files(admin_client):
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in (UBL, PEPPOL)]
    response = admin_client.post(reverse("admin:invoices_invoice_upload"), {"files": files})
    assert response.status_code == 302
    assert sorted(Invoice.objects.values_list("original_filename", flat=True)) == sorted([UBL.name, PEPPOL.name])
    assert set(Invoice.objects.values_list("source", flat=True)) == {"admin"}


def test_list_page_and_original_download(admin_client):
    invoice = invoice_import_sync(content=PEPPOL.read_bytes(), filename=PEPPOL.name)
    page = admin_client.get(reverse("admin:invoices_invoice_changelist")).content.decode()
    assert invoice.invoice_number in page
    detail = admin_client.get(reverse("admin:invoices_invoice_change", args=[invoice.pk])).content.decode()
    assert "Download original" in detail and invoice.seller_name in detail
    original = admin_client.get(reverse("admin:invoices_invoice_original", args=[invoice.pk]))
    assert b"".join(original.streaming_content) == PEPPOL.read_bytes()


def test_bulk_approve_reports_what_it_could_not_do(admin_client):
    good = invoice_import_sync(content=PEPPOL.read_bytes(), filename=PEPPOL.name)
    broken = invoice_import_sync(content=b"<not-an-invoice/>", filename="x.xml")
    assert broken.status == InvoiceStatus.FAILED
    response = admin_client.post(
        reverse("admin:invoices_invoice_changelist"),
        {"action": "approve_selected", "_selected_action": [good.pk, broken.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "Approved 1 invoice(s)." in text and "Skipped" in text
    assert Invoice.objects.get(pk=good.pk).status == InvoiceStatus.APPROVED
    assert Invoice.objects.get(pk=broken.pk).status == InvoiceStatus.FAILED
    assert AuditEntry.objects.get(action="invoice.approve").source == "admin"


def test_reject_from_the_invoice_page_needs_a_reason(admin_client):
    invoice = invoice_import_sync(content=PEPPOL.read_bytes(), filename=PEPPOL.name)
    url = reverse("admin:invoices_invoice_decide", args=[invoice.pk])
    admin_client.post(url, {"decision": "reject", "reason": ""})
    assert Invoice.objects.get(pk=invoice.pk).status != InvoiceStatus.REJECTED
    admin_client.post(url, {"decision": "reject", "reason": "duplicate of paper invoice"})
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.REJECTED


def test_exporting_n_invoices_queues_one_job_from_the_admin_and_the_api(admin_client, client_for):
    from django.contrib.auth import get_user_model

    from invoices.models import ExportBatch
    from jobs.models import Job

    picked = [invoice_import_sync(content=path.read_bytes(), filename=path.name).pk for path in (UBL, PEPPOL)]
    Invoice.objects.filter(pk__in=picked).update(status=InvoiceStatus.APPROVED)
    admin_client.post(
        reverse("admin:invoices_invoice_changelist"), {"action": "export_csv", "_selected_action": picked}
    )
    api = client_for(get_user_model().objects.get(username="root"))
    response = api.post("/api/v1/exports/", {"format": "json", "invoice_ids": picked}, format="json")
    assert response.status_code == 202, response.content

    exports = Job.objects.filter(kind="invoices.export_invoices")
    assert exports.count() == 2  # one per export, whatever the number of invoices in it
    for batch in ExportBatch.objects.all():
        assert batch.items.count() == 2
        assert exports.filter(params__export_id=batch.pk).count() == 1
