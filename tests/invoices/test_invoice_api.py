"""/api/v1/invoices/ and /api/v1/exports/: upload, detail, decisions, exports,
and a real worker taking an upload to validated."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from core.models import AuditEntry
from invoices.extract.ubl import UblExtractor
from invoices.models import ExportBatch, Invoice, InvoiceStatus
from invoices.services import invoice_import_sync
from jobs.models import Job
from tests.invoices.einvoice_reference import SAMPLES, reference_values
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.services]

UBL = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"
CII = SAMPLES / "en16931-cii" / "CII_example1.xml"
PEPPOL = SAMPLES / "peppol-bis3" / "base-example.xml"


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def upload(client, *paths):
    files = [io.BytesIO(path.read_bytes()) for path in paths]
    for handle, path in zip(files, paths, strict=True):
        handle.name = path.name
    return client.post("/api/v1/invoices/", {"files": files}, format="multipart")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_is_processed_by_a_worker_to_its_final_state(celery_worker, clerk, client_for):
    client = client_for(clerk)
    response = upload(client, UBL, CII)
    assert response.status_code == 202
    received = response.json()
    assert [item["status"] for item in received] == ["received", "received"]

    def final(invoice_id):
        data = client.get(f"/api/v1/invoices/{invoice_id}/").json()
        return data if data["status"] in ("validated", "needs_review", "failed") else None

    details = [wait_for(lambda i=item["invoice_id"]: final(i), timeout=30) for item in received]
    assert [d["format"] for d in details] == ["ubl", "cii"]
    assert details[0]["invoice_number"] == reference_values(UBL.read_bytes())["invoice_number"]
    assert details[0]["lines"] and details[0]["lines"][0]["position"] == 1
    jobs = Job.objects.filter(kind="invoices.process_invoice", subject_id=str(details[0]["invoice_id"]))
    assert jobs.get().status == "succeeded" and jobs.get().subject_type == "invoices.invoice"


@pytest.mark.django_db
def test_invoices_are_the_teams_and_private_to_outsiders(clerk, make_user, client_for):
    from django.contrib.auth.models import Permission

    invoice_id = upload(client_for(clerk), UBL).json()[0]["invoice_id"]
    teammate = client_for(make_user("other", role="ap_clerk"))  # ap_clerk holds invoices.view_all
    assert teammate.get(f"/api/v1/invoices/{invoice_id}/").status_code == 200
    outsider_user = make_user("outsider")
    outsider_user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="invoices", codename__in=["view_invoice", "add_invoice"])
    )
    outsider = client_for(outsider_user)
    assert outsider.get(f"/api/v1/invoices/{invoice_id}/").status_code == 404
    assert outsider.get(f"/api/v1/invoices/{invoice_id}/original/").status_code == 404
    assert outsider.get("/api/v1/invoices/").json()["count"] == 0
    assert client_for(make_user("viewer", role="viewer")).post("/api/v1/invoices/", {}).status_code == 403
    assert client_for(clerk).get("/api/v1/invoices/").json()["count"] == 1


@pytest.mark.django_db
def test_original_downloads_byte_for_byte(clerk, client_for):
    client = client_for(clerk)
    invoice_id = upload(client, PEPPOL).json()[0]["invoice_id"]
    response = client.get(f"/api/v1/invoices/{invoice_id}/original/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PEPPOL.read_bytes()
    assert 'filename="base-example.xml"' in response["Content-Disposition"]


@pytest.mark.django_db
def test_upload_without_files_is_a_clear_400(clerk, client_for):
    response = client_for(clerk).post("/api/v1/invoices/", {"nothing": "here"}, format="multipart")
    assert response.status_code == 400 and "files" in response.json()


@pytest.mark.django_db
def test_approve_and_reject_are_audited_and_reject_needs_a_reason(clerk, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=clerk)
    client = client_for(clerk)
    assert client.post(f"/api/v1/invoices/{invoice.pk}/reject/", {}, format="json").status_code == 409
    approved = client.post(f"/api/v1/invoices/{invoice.pk}/approve/", {"reason": "checked"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    rejected = client.post(f"/api/v1/invoices/{invoice.pk}/reject/", {"reason": "wrong PO"}, format="json")
    assert rejected.json()["status"] == "rejected" and rejected.json()["decision_reason"] == "wrong PO"
    actions = list(AuditEntry.objects.filter(target_id=str(invoice.pk)).values_list("action", "reason"))
    assert sorted(actions) == [("invoice.approve", "checked"), ("invoice.reject", "wrong PO")]


@pytest.mark.django_db
def test_reprocess_queues_a_job_and_dedupes(clerk, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=clerk)
    client = client_for(clerk)
    first = client.post(f"/api/v1/invoices/{invoice.pk}/reprocess/", {}, format="json")
    assert first.status_code == 202 and first.json()["kind"] == "invoices.process_invoice"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_export_ubl_round_trip_and_idempotent_rerun(celery_worker, clerk, client_for):
    invoices = [
        invoice_import_sync(content=path.read_bytes(), filename=path.name, owner=clerk) for path in (UBL, CII, PEPPOL)
    ]
    for invoice in invoices:
        if invoice.status == InvoiceStatus.NEEDS_REVIEW:
            Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.APPROVED)
    client = client_for(clerk)

    response = client.post("/api/v1/exports/", {"format": "ubl"}, format="json")
    assert response.status_code == 202, response.content
    export_id = response.json()["export"]["id"]
    wait_for(lambda: ExportBatch.objects.get(pk=export_id).status == "done", timeout=30)
    download = client.get(f"/api/v1/exports/{export_id}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert len(archive.namelist()) == 3
    by_number = {i.invoice_number: i for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices])}
    for name in archive.namelist():
        read_back = UblExtractor().extract(archive.read(name))
        original = by_number[read_back.invoice_number]
        assert (read_back.total_net, read_back.tax_total, read_back.total_gross, read_back.amount_due) == (
            original.total_net,
            original.tax_total,
            original.total_gross,
            original.amount_due,
        )
    assert set(Invoice.objects.filter(pk__in=[i.pk for i in invoices]).values_list("status", flat=True)) == {"exported"}
    # Nothing left to export; a re-run of the same batch's job writes the same single file again.
    assert client.post("/api/v1/exports/", {"format": "csv"}, format="json").status_code == 400
    from invoices.exports import export_run

    storage = ExportBatch.objects.get(pk=export_id).file.storage
    before = sorted(storage.listdir("exports")[1])
    export_run(batch=ExportBatch.objects.get(pk=export_id))
    after = sorted(storage.listdir("exports")[1])
    assert before == after
    assert ExportBatch.objects.get(pk=export_id).items.count() == 3


@pytest.mark.django_db
def test_json_export_has_the_contract_fields(clerk):
    from core.actors import Actor
    from invoices.exports import export_create, export_run

    invoice = invoice_import_sync(content=PEPPOL.read_bytes(), filename="p.xml", owner=clerk)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.VALIDATED)
    batch, _ = export_create(format="json", actor=Actor(user=clerk, source="api"))
    export_run(batch=batch)
    payload = json.loads(ExportBatch.objects.get(pk=batch.pk).file.read())
    [exported] = payload["invoices"]
    assert exported["invoice_number"] == invoice.invoice_number
    assert exported["total_gross"] == f"{invoice.total_gross:.2f}"
