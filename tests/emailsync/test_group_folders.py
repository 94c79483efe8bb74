"""The group / shared folders scan on a Dovecot with an other-users and a public namespace (RFC 2342)
governed by ACLs: only folders the mailbox may read are scanned, recorded and resumed like the inbox."""

from __future__ import annotations

import secrets

import pytest

from core.models import AuditEntry
from emailsync.imap import Namespaces, parse_namespace_line
from emailsync.models import Mailbox, MailLocation, MailMessage, SyncRun
from emailsync.services import mailbox_sync, mailbox_sync_enqueue
from invoices.models import Invoice
from jobs.errors import JobCancelled
from jobs.models import Job, JobStatus
from tests.emailsync.mailboxes import no_progress
from tests.emailsync.messages import CII, file_attachment, invoice_mail, numbered_invoices
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.imap]


def test_namespace_answers_are_parsed():
    assert parse_namespace_line(b'(("" "/")) (("shared/" "/")) (("Public/" "/"))') == (
        (("", "/"),),
        (("shared/", "/"),),
        (("Public/", "/"),),
    )
    assert parse_namespace_line(b'(("INBOX." ".")) (("#Users/" "/" "X-EXT" ("a"))) NIL') == (
        (("INBOX.", "."),),
        (("#Users/", "/"),),
        (),
    )
    assert Namespaces(*parse_namespace_line(b'(("" NIL)) NIL NIL')).other_users == ()
    for broken in (b'(( "" "/")', b"NIL NIL", b'(("" "/")) NIL NIL extra', b"garbage"):
        with pytest.raises(ValueError):
            parse_namespace_line(broken)


@pytest.fixture
def shared_world(dovecot_shared, settings):
    """alice shares Invoices (not Private) with bob; Public/AP is readable by bob; Public/Board he may
    only see listed. Returns (server, bob's name, names of the folders)."""
    settings.EMAILSYNC_CA_FILE = str(dovecot_shared.ca_file)
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = True
    tag = secrets.token_hex(4)
    alice, bob, poster = f"alice-{tag}", f"bob-{tag}", f"poster-{tag}"
    for name in (alice, bob, poster):
        dovecot_shared.add_user(name, f"pw-{name}")
    dovecot_shared.append_many(alice, "Invoices", numbered_invoices(5, f"shared-{tag}"))
    dovecot_shared.append(alice, "Private", invoice_mail("Alice's private invoice", [file_attachment(CII)]))
    dovecot_shared.share_folder(alice, "Invoices", bob, "lr")
    dovecot_shared.create_public_folder(f"AP-{tag}", {bob: "lr", poster: "lrwsti"})
    dovecot_shared.create_public_folder(f"Board-{tag}", {bob: "l", poster: "lrwsti"})
    dovecot_shared.append_many(poster, f"Public/AP-{tag}", numbered_invoices(3, f"public-{tag}"))
    dovecot_shared.append(poster, f"Public/Board-{tag}", invoice_mail("Board only", [file_attachment(CII)]))
    dovecot_shared.append(bob, "INBOX", invoice_mail("Bob's own", [file_attachment(CII)]))
    return (
        dovecot_shared,
        bob,
        {
            "shared": f"shared/{alice}/Invoices",
            "public": f"Public/AP-{tag}",
            "board": f"Public/Board-{tag}",
            "tag": tag,
        },
    )


def bobs_mailbox(server, bob) -> Mailbox:
    mailbox = Mailbox(
        name=f"box-{bob}", host=server.host, port=server.port, security="ssl", username=bob, folders=["INBOX"]
    )
    mailbox.set_secret(f"pw-{bob}")
    mailbox.save()
    return mailbox


@pytest.mark.django_db
def test_group_scan_reads_only_the_shared_folders_it_may_read(shared_world):
    server, bob, folders = shared_world
    mailbox = bobs_mailbox(server, bob)

    result = mailbox_sync(mailbox=mailbox, progress=no_progress, groups=True)

    assert sorted(result["group_folders"]) == sorted([folders["shared"], folders["public"]])
    assert result["refused_folders"] == [folders["board"]]  # listed, but no read right
    assert result["messages_new"] == 8 and result["invoices_created"] == 8
    seen_in = set(MailLocation.objects.filter(mailbox=mailbox).values_list("folder", flat=True))
    assert seen_in == {folders["shared"], folders["public"]}  # not INBOX, not alice's Private, not Board
    assert not MailMessage.objects.filter(subject__in=["Alice's private invoice", "Board only", "Bob's own"]).exists()
    assert Invoice.objects.filter(original_filename__startswith=f"shared-{folders['tag']}-").count() == 5
    assert SyncRun.objects.get(mailbox=mailbox).status == SyncRun.Status.SUCCEEDED

    again = mailbox_sync(mailbox=mailbox, progress=no_progress, groups=True)
    assert again["messages_seen"] == 8 and again["messages_new"] == 0 and again["invoices_created"] == 0
    # The mailbox's own scan is unchanged: its INBOX only.
    own = mailbox_sync(mailbox=mailbox, progress=no_progress)
    assert own["messages_new"] == 1 and "group_folders" not in own


@pytest.mark.django_db
def test_an_interrupted_group_scan_resumes_without_duplicates(shared_world, settings):
    settings.EMAILSYNC_DOWNLOAD_BATCH = 2
    server, bob, folders = shared_world
    mailbox = bobs_mailbox(server, bob)
    reports = []

    def cancel_midway(done, total=None, message=None):
        reports.append((done, total, message))
        if total and 0 < done < total and "processed" in (message or ""):
            raise JobCancelled("test cancel")

    with pytest.raises(JobCancelled):
        mailbox_sync(mailbox=mailbox, progress=cancel_midway, groups=True)
    assert reports[0][2].startswith("2 shared folder(s)")
    processed_before = MailMessage.objects.filter(mailbox=mailbox, status="processed").count()
    recorded_before = MailMessage.objects.filter(mailbox=mailbox).count()
    assert 0 < processed_before < 8
    assert SyncRun.objects.get(mailbox=mailbox).status == SyncRun.Status.CANCELLED

    finished = mailbox_sync(mailbox=mailbox, progress=no_progress, groups=True)

    # What was recorded before the cancel is not recorded again; the rest of the folders is.
    assert finished["messages_new"] == 8 - recorded_before
    assert MailMessage.objects.filter(mailbox=mailbox, status="processed").count() == 8
    names = Invoice.objects.filter(original_filename__contains=folders["tag"]).values_list(
        "original_filename", flat=True
    )
    assert len(names) == len(set(names)) == 8


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sync_groups_api_runs_a_tracked_job_with_progress(
    no_session_worker, shared_world, make_user, client_for, monkeypatch
):
    server, bob, folders = shared_world
    clerk = make_user("clerk", role="ap_clerk")
    mailbox = bobs_mailbox(server, bob)
    mailbox.owner = clerk
    mailbox.save()
    worker = WorkerProcess(
        name="email-groups",
        queues="email",
        concurrency=1,
        env={
            "EMAILSYNC_CA_FILE": str(server.ca_file),
            "EMAILSYNC_ALLOW_PRIVATE_HOSTS": "1",
            "JOB_PROGRESS_WRITE_INTERVAL": "0",
        },
    ).start()
    try:
        response = client_for(clerk).post(f"/api/v1/mailboxes/{mailbox.pk}/sync-groups/", {}, format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        job = wait_for(
            lambda: (j := Job.objects.get(pk=job_id)).status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and j,
            timeout=60,
            what="the group scan job",
        )
    finally:
        worker.stop()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.params["groups"] is True
    assert sorted(job.result["group_folders"]) == sorted([folders["shared"], folders["public"]])
    assert job.progress_total == 8 and job.progress_done == 8
    assert AuditEntry.objects.filter(action="mailbox.sync_groups", actor_label="clerk").exists()
    other = client_for(make_user("other", role="ap_clerk"))
    assert other.post(f"/api/v1/mailboxes/{mailbox.pk}/sync-groups/", {}, format="json").status_code == 404


@pytest.mark.django_db
def test_sync_mailbox_command_with_groups(shared_world):
    import json
    from io import StringIO

    from django.core.management import call_command

    server, bob, folders = shared_world
    mailbox = bobs_mailbox(server, bob)
    out = StringIO()
    call_command("sync_mailbox", mailbox.name, "--groups", "--sync", "--json", stdout=out, stderr=StringIO())
    summary = json.loads(out.getvalue())
    assert summary["status"] == "succeeded" and summary["messages_new"] == 8
    assert summary["refused_folders"] == [folders["board"]]


@pytest.mark.django_db
def test_admin_button_queues_the_group_scan(shared_world, make_user, client):
    server, bob, _ = shared_world
    mailbox = bobs_mailbox(server, bob)
    admin_user = make_user("boss", superuser=True)
    client.force_login(admin_user)
    page = client.get(f"/admin/emailsync/mailbox/{mailbox.pk}/change/")
    assert "Sync group folders" in page.content.decode()
    response = client.post(f"/admin/emailsync/mailbox/{mailbox.pk}/sync-groups/")
    assert response.status_code == 302
    job = Job.objects.get(kind="emailsync.sync_mailbox")
    assert job.params == {"mailbox_id": mailbox.pk, "groups": True}
    assert mailbox_sync_enqueue  # the same service the API and the command call
