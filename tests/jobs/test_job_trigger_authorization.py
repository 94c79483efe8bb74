"""The job trigger cannot reach objects its caller could not open (issue 11, item 1).

Each test replays the attack as it was found: POST /api/v1/jobs/ naming
someone else's invoice or mailbox, a missing id, and a 409 that showed another
user's job in full. Re-processing a decided invoice needs `force` and the right
to decide.
"""

from __future__ import annotations

import pytest

from core.actors import Actor
from core.models import AuditEntry
from emailsync.models import Mailbox
from invoices.models import Invoice, InvoiceStatus
from invoices.services import invoice_import_sync
from jobs.models import Job
from jobs.services import job_enqueue
from tests.invoices.einvoice_reference import SAMPLES
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.services]

UBL = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"


@pytest.fixture
def alice(make_user):
    return make_user("alice", role="ap_clerk")


@pytest.fixture
def mallory(make_user):
    """A clerk outside alice's team: every ap_clerk permission but invoices.view_all."""
    from django.contrib.auth.models import Group

    user = make_user("mallory")
    user.user_permissions.set(
        Group.objects.get(name="ap_clerk").permissions.exclude(content_type__app_label="invoices", codename="view_all")
    )
    return user


def trigger(client, kind, **params):
    return client.post("/api/v1/jobs/", {"kind": kind, "params": params}, format="json")


@pytest.mark.django_db
def test_someone_elses_invoice_is_answered_like_a_missing_one_and_nothing_is_written(alice, mallory, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=alice)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.APPROVED)
    client = client_for(mallory)
    jobs_before, audit_before = Job.objects.count(), AuditEntry.objects.count()

    others = trigger(client, "invoices.process_invoice", invoice_id=invoice.pk)
    missing = trigger(client, "invoices.process_invoice", invoice_id=invoice.pk + 1000)

    assert others.status_code == missing.status_code == 404
    assert others.json()["detail"].replace(str(invoice.pk), "N") == missing.json()["detail"].replace(
        str(invoice.pk + 1000), "N"
    )
    assert Job.objects.count() == jobs_before and AuditEntry.objects.count() == audit_before
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.APPROVED
    assert trigger(client, "invoices.validate_invoice", invoice_id=invoice.pk).status_code == 404


@pytest.mark.django_db
def test_someone_elses_mailbox_cannot_be_synced_through_the_job_trigger(alice, mallory, client_for):
    mailbox = Mailbox.objects.create(name="alice-ap", host="imap.example.com", username="alice", owner=alice)
    response = trigger(client_for(mallory), "emailsync.sync_mailbox", mailbox_id=mailbox.pk)
    assert response.status_code == 404 and "mailbox" in response.json()["detail"]
    assert not Job.objects.filter(kind="emailsync.sync_mailbox").exists()

    own = trigger(client_for(alice), "emailsync.sync_mailbox", mailbox_id=mailbox.pk)
    assert own.status_code == 202 and own.json()["subject"]["id"] == str(mailbox.pk)


@pytest.mark.django_db
def test_staff_may_trigger_on_anyones_object(alice, make_user, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=alice)
    admin = make_user("root", superuser=True)
    response = trigger(client_for(admin), "invoices.validate_invoice", invoice_id=invoice.pk)
    assert response.status_code == 202 and response.json()["subject"]["id"] == str(invoice.pk)


@pytest.mark.django_db
def test_a_409_shows_only_what_the_caller_may_see(alice, make_user, client_for):
    """Staff started a sync of Alice's mailbox; Alice's own sync is refused without
    showing the staff member's job (params, owner, id, result)."""
    mailbox = Mailbox.objects.create(name="alice-ap", host="imap.example.com", username="alice", owner=alice)
    admin = make_user("root", superuser=True)
    staff_job = job_enqueue(
        "emailsync.sync_mailbox", {"mailbox_id": mailbox.pk, "months": 7}, owner=admin, publish=False
    )

    for response in (
        client_for(alice).post(f"/api/v1/mailboxes/{mailbox.pk}/sync/", {}, format="json"),
        trigger(client_for(alice), "emailsync.sync_mailbox", mailbox_id=mailbox.pk),
    ):
        assert response.status_code == 409
        body = response.json()
        assert body["status"] == "queued" and body["detail"]
        assert not {"id", "owner", "params", "result", "error", "subject"} & set(body)
        assert str(staff_job.pk) not in response.content.decode()

    own = client_for(admin).post(f"/api/v1/mailboxes/{mailbox.pk}/sync/", {}, format="json")
    assert own.status_code == 409 and own.json()["id"] == str(staff_job.pk)  # staff see their own job in full


@pytest.mark.django_db
def test_a_decided_invoice_is_not_reprocessed_without_force(alice, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=alice)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.APPROVED)
    client = client_for(alice)

    for response in (
        trigger(client, "invoices.process_invoice", invoice_id=invoice.pk),
        client.post(f"/api/v1/invoices/{invoice.pk}/reprocess/", {}, format="json"),
    ):
        assert response.status_code == 409 and "force" in response.json()["detail"]
    assert not Job.objects.filter(kind="invoices.process_invoice").exists()
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.APPROVED


@pytest.mark.django_db
def test_forcing_needs_the_right_to_decide(make_user, client_for):
    operator = make_user("ops", role="operator")  # may reprocess, may not approve
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=operator)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.EXPORTED)
    response = trigger(client_for(operator), "invoices.process_invoice", invoice_id=invoice.pk, force=True)
    assert response.status_code == 403
    assert not Job.objects.filter(kind="invoices.process_invoice").exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_forced_reprocess_drops_the_decision_and_audits_it(celery_worker, alice, client_for):
    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=alice)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.APPROVED)
    response = client_for(alice).post(
        f"/api/v1/invoices/{invoice.pk}/reprocess/", {"force": True, "reason": "misread total"}, format="json"
    )
    assert response.status_code == 202

    job = wait_for(lambda: Job.objects.filter(pk=response.json()["id"], status="succeeded").first(), timeout=30)
    assert Invoice.objects.get(pk=invoice.pk).status in (InvoiceStatus.VALIDATED, InvoiceStatus.NEEDS_REVIEW)
    dropped = AuditEntry.objects.get(action="invoice.decision_dropped", target_id=str(invoice.pk))
    assert dropped.details == {"previous_status": "approved"} and dropped.actor == alice
    requested = AuditEntry.objects.get(action="invoice.reprocess", target_id=str(invoice.pk))
    assert requested.details["force"] is True and requested.reason == "misread total" and requested.job_id == job.pk


@pytest.mark.django_db
def test_a_job_started_without_force_refuses_a_decision_made_meanwhile(alice):
    """The trigger checked the state, but a clerk approved before the worker ran."""
    from invoices.services import InvoiceNotAllowed, invoice_process

    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=alice)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.APPROVED)
    with pytest.raises(InvoiceNotAllowed):
        invoice_process(invoice=Invoice.objects.get(pk=invoice.pk), actor=Actor.system())
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.APPROVED


@pytest.mark.django_db
def test_the_command_line_refuses_the_same_way(alice, mallory):
    from django.core.management import CommandError, call_command

    invoice = invoice_import_sync(content=UBL.read_bytes(), filename="a.xml", owner=alice)
    with pytest.raises(CommandError, match="There is no invoice"):
        call_command(
            "jobs", "--as", "mallory", "run", "invoices.process_invoice", "--param", f"invoice_id={invoice.pk}"
        )
    assert not Job.objects.filter(kind="invoices.process_invoice").exists()
