"""The clerk's review workflow through the API and the command line, with a real worker:
team visibility of drop-folder invoices, corrections with re-validation, approval,
the approval policy, reprocess keeping corrections, exports carrying corrected
values, the review queue and assignment, and duplicates that disclose nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import time

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from core.models import AuditEntry
from invoices.inbox import inbox_scan
from invoices.models import Invoice, InvoiceCorrection
from tests.invoices.review_support import (
    RIGHT_GROSS,
    VALID_IBAN,
    VALID_VAT_ID,
    WRONG_GROSS,
    misread_peppol,
    needs_review_invoice,
    set_approval_limit,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.services]

DEPENDENT = {"totals.net_tax_gross", "seller.vat_id_checksum", "payment.iban_checksum"}


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def codes(data: dict) -> set[str]:
    return {issue["code"] for issue in data["issues"]}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_drop_folder_invoice_is_corrected_approved_reprocessed_and_exported(celery_worker, clerk, client_for, tmp_path):
    client = client_for(clerk)
    dropped = tmp_path / "misread.xml"
    dropped.write_bytes(misread_peppol())
    old = time.time() - 120
    os.utime(dropped, (old, old))  # settled: not being written any more
    assert inbox_scan(directory=tmp_path)["ingested"] == 1
    invoice = Invoice.objects.get(source="folder")
    assert invoice.owner is None  # nobody uploaded it: the team sees it through invoices.view_all

    def state(status):
        data = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
        return data if data["status"] == status else None

    assert client.get("/api/v1/invoices/").json()["count"] == 1
    before = wait_for(lambda: state("needs_review"), timeout=60, what="needs_review")
    assert codes(before) >= DEPENDENT and before["total_gross"] == WRONG_GROSS
    assert [row["invoice_id"] for row in client.get("/api/v1/invoices/review-queue/").json()["results"]] == [invoice.pk]

    response = client.patch(
        f"/api/v1/invoices/{invoice.pk}/",
        {
            "total_gross": RIGHT_GROSS,
            "seller_vat_id": VALID_VAT_ID,
            "payment_iban": VALID_IBAN,
            "reason": "checked against the PDF",
            "revalidate": True,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    after = response.json()
    assert after["total_gross"] == RIGHT_GROSS and after["seller_vat_id"] == VALID_VAT_ID
    assert not DEPENDENT & codes(after) and after["status"] == "validated"
    history = client.get(f"/api/v1/invoices/{invoice.pk}/corrections/").json()
    assert {row["field_path"]: (row["extracted_value"], row["new_value"], row["user"]) for row in history} == {
        "total_gross": (WRONG_GROSS, RIGHT_GROSS, "clerk"),
        "seller_vat_id": ("GB1232434", VALID_VAT_ID, "clerk"),
        "payment_iban": ("IBAN32423940", VALID_IBAN, "clerk"),
    }

    approved = client.post(f"/api/v1/invoices/{invoice.pk}/approve/", {}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert AuditEntry.objects.filter(action="invoice.approve", actor=clerk, target_id=str(invoice.pk)).exists()

    export = client.post("/api/v1/exports/", {"format": "csv", "invoice_ids": [invoice.pk]}, format="json").json()
    done = wait_for(
        lambda: (e := client.get(f"/api/v1/exports/{export['export']['id']}/").json())["status"] == "done" and e,
        timeout=60,
        what="export done",
    )
    content = b"".join(client.get(done["download_url"]).streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert len(rows) == 2  # one row per invoice line
    assert all(RIGHT_GROSS in row.values() and VALID_VAT_ID in row.values() for row in rows)
    assert WRONG_GROSS not in content

    # Re-extraction (forced: the invoice was decided) keeps the corrections and applies them again.
    extracted_before = Invoice.objects.get(pk=invoice.pk).extracted_at
    assert client.post(f"/api/v1/invoices/{invoice.pk}/reprocess/", {"force": True}, format="json").status_code == 202

    def reprocessed():
        current = Invoice.objects.get(pk=invoice.pk)
        if current.extracted_at > extracted_before and current.status in ("validated", "needs_review"):
            return client.get(f"/api/v1/invoices/{invoice.pk}/").json()
        return None

    again = wait_for(reprocessed, timeout=60, what="reprocessed")
    assert again["total_gross"] == RIGHT_GROSS and again["seller_vat_id"] == VALID_VAT_ID
    assert not DEPENDENT & codes(again)
    assert InvoiceCorrection.objects.filter(invoice=invoice, discarded_at__isnull=True).count() == 3


@pytest.mark.django_db
def test_over_threshold_is_refused_without_the_permission_and_to_who_corrected_it(clerk, make_user, client_for):
    set_approval_limit("EUR", "1000.00")
    invoice = needs_review_invoice(owner=clerk)
    approver = make_user("approver", role="ap_approver")
    clerk_api, approver_api = client_for(clerk), client_for(approver)

    refused = clerk_api.post(f"/api/v1/invoices/{invoice.pk}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert "above" in refused.json()["detail"] and "approval threshold" in refused.json()["detail"]

    assert (
        approver_api.patch(f"/api/v1/invoices/{invoice.pk}/", {"total_gross": RIGHT_GROSS}, format="json").status_code
        == 200
    )
    four_eyes = approver_api.post(f"/api/v1/invoices/{invoice.pk}/approve/", {}, format="json")
    assert four_eyes.status_code == 403 and "four-eyes" in four_eyes.json()["detail"]
    assert Invoice.objects.get(pk=invoice.pk).status == "needs_review"

    colleague = client_for(make_user("colleague", role="ap_approver"))
    assert colleague.post(f"/api/v1/invoices/{invoice.pk}/approve/", {}, format="json").json()["status"] == "approved"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"total_gross": "one thousand"}, "total_gross"),
        ({"due_date": "2026-02-31"}, "due_date"),
        ({"currency": "XYZ"}, "currency"),
        ({"changes": {"lines[1].vat_rate": "19%"}}, "lines[1].vat_rate"),
        ({"owner": 1}, "owner"),
    ],
)
def test_bad_corrections_are_field_errors_and_nothing_is_saved(clerk, client_for, body, field):
    invoice = needs_review_invoice(owner=clerk)
    client = client_for(clerk)
    before = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    response = client.patch(f"/api/v1/invoices/{invoice.pk}/", {"seller_name": "Someone else", **body}, format="json")
    assert response.status_code == 400
    assert [key for key in response.json() if key not in ("detail", "code")] == [field]
    assert client.get(f"/api/v1/invoices/{invoice.pk}/").json() == before
    assert not InvoiceCorrection.objects.exists()


@pytest.mark.django_db
def test_a_duplicate_names_the_first_copy_only_to_who_may_see_it(clerk, make_user, client_for):
    content = misread_peppol("dup")
    first = needs_review_invoice("dup", owner=clerk)
    outsider = make_user("outsider")
    outsider.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="invoices", codename__in=["view_invoice", "add_invoice"])
    )

    def upload(user):
        handle = io.BytesIO(content)
        handle.name = "again.xml"
        return client_for(user).post("/api/v1/invoices/", {"files": [handle]}, format="multipart").json()[0]

    theirs = upload(outsider)
    assert theirs["status"] == "duplicate" and str(first.pk) not in (theirs["error"] or "")
    detail = client_for(outsider).get(f"/api/v1/invoices/{theirs['invoice_id']}/").json()
    assert detail["duplicate_of"] is None and str(first.pk) not in json.dumps(detail["error"])
    assert client_for(outsider).get(f"/api/v1/invoices/{first.pk}/").status_code == 404

    teammate = upload(make_user("teammate", role="ap_clerk"))
    assert teammate["error"] == f"The same file was received before as invoice {first.pk}."


@pytest.mark.django_db
def test_review_queue_filters_counts_assignment_and_the_command_line(clerk, make_user, client_for, capsys):
    set_approval_limit("EUR", "100000.00")
    first, second = needs_review_invoice("1", owner=clerk), needs_review_invoice("2", owner=clerk)
    client = client_for(clerk)
    page = client.get("/api/v1/invoices/review-queue/").json()
    assert [row["invoice_id"] for row in page["results"]] == [first.pk, second.pk]  # oldest first
    assert page["counts"]["total"] == 2 and page["counts"]["unassigned"] == 2

    assigned = client.post(f"/api/v1/invoices/{second.pk}/assign/", {}, format="json")
    assert assigned.json()["assigned_to"]["username"] == "clerk"
    assert [row["invoice_id"] for row in client.get("/api/v1/invoices/review-queue/?mine=true").json()["results"]] == [
        second.pk
    ]
    assert [
        row["invoice_id"] for row in client.get("/api/v1/invoices/review-queue/?unassigned=1").json()["results"]
    ] == [first.pk]
    assert client.get("/api/v1/invoices/review-queue/?rule=seller.vat_id_checksum").json()["count"] == 2
    assert client.get("/api/v1/invoices/review-queue/?amount_min=2000").json()["count"] == 0
    assert client.get("/api/v1/invoices/review-queue/?amount_min=abc").status_code == 400
    viewer = client_for(make_user("viewer", role="viewer"))
    assert viewer.post(f"/api/v1/invoices/{first.pk}/assign/", {"username": "clerk"}, format="json").status_code == 403
    assert AuditEntry.objects.filter(action="invoice.assign").count() == 1

    call_command("invoices", "--as", "clerk", "review-queue", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"]["mine"] == 1 and [row["invoice_id"] for row in listed["invoices"]] == [first.pk, second.pk]
    call_command(
        "invoices",
        "--as",
        "clerk",
        "correct",
        str(first.pk),
        "total_gross",
        RIGHT_GROSS,
        "--reason",
        "phone call",
        "--revalidate",
        "--json",
    )
    corrected = json.loads(capsys.readouterr().out)
    assert corrected["corrections"][0]["new_value"] == RIGHT_GROSS
    assert "totals.net_tax_gross" not in {issue["code"] for issue in corrected["issues"]}
    with pytest.raises(CommandError, match="not a number"):
        call_command("invoices", "--as", "clerk", "correct", str(first.pk), "tax_total", "lots")
    with pytest.raises(CommandError, match="There is no invoice"):
        call_command("invoices", "--as", "viewer", "correct", str(first.pk + 999), "tax_total", "1")


@pytest.mark.django_db
def test_reprocess_can_discard_the_corrections(clerk, client_for):
    invoice = needs_review_invoice(owner=clerk)
    client = client_for(clerk)
    client.patch(f"/api/v1/invoices/{invoice.pk}/", {"total_gross": RIGHT_GROSS}, format="json")
    assert (
        client.post(
            f"/api/v1/invoices/{invoice.pk}/reprocess/", {"discard_corrections": True}, format="json"
        ).status_code
        == 202
    )
    [row] = client.get(f"/api/v1/invoices/{invoice.pk}/corrections/").json()
    assert row["discarded_at"] is not None
    assert client.get(f"/api/v1/invoices/{invoice.pk}/").json()["corrected_fields"] == []
    entry = AuditEntry.objects.get(action="invoice.reprocess")
    assert entry.details["corrections_discarded"] == 1


@pytest.mark.django_db
def test_the_command_without_as_sees_the_whole_queue_and_owns_none_of_it(clerk, capsys):
    needs_review_invoice("1", owner=clerk)
    needs_review_invoice("2")
    call_command("invoices", "review-queue", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"]["total"] == 2 and listed["counts"]["mine"] == 0 and listed["counts"]["unassigned"] == 2
    call_command("invoices", "review-queue")
    assert "2 waiting: 2 need review" in capsys.readouterr().out
