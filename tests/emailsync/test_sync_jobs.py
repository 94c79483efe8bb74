"""Mailbox syncs as jobs on real worker processes: cancel and resume, an IMAP
server outage mid-sync, and two mailboxes at once on two workers."""

from __future__ import annotations

import pytest

from core.actors import Actor
from core.models import TriggerSource
from emailsync.models import Mailbox, MailMessage, SyncRun
from emailsync.services import mailbox_sync_enqueue
from invoices.models import Invoice, InvoiceStatus
from jobs.models import Job, JobStatus
from tests.emailsync.mailboxes import imap_mailbox
from tests.emailsync.messages import numbered_invoices
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor(user=None, source=TriggerSource.COMMAND)


@pytest.fixture
def email_worker_env(dovecot):
    return {
        "EMAILSYNC_CA_FILE": str(dovecot.ca_file),
        "EMAILSYNC_DOWNLOAD_BATCH": "2",
        "JOB_PROGRESS_WRITE_INTERVAL": "0",
        "JOB_HEARTBEAT_SECONDS": "1",
    }


def email_worker(env, name="email"):
    return WorkerProcess(name=name, queues="email", concurrency=1, env=env).start()


def job_of(job_id):
    return Job.objects.get(pk=job_id)


def assert_each_invoice_once(prefix: str, count: int):
    rows = Invoice.objects.filter(original_filename__startswith=f"{prefix}-")
    assert rows.count() == count
    assert rows.filter(status=InvoiceStatus.DUPLICATE).count() == 0
    assert len(set(rows.values_list("sha256", flat=True))) == count


def test_cancel_mid_sync_then_sync_again_completes_without_duplicates(
    no_session_worker, email_worker_env, imap_user, settings
):
    imap_user.server.append_many(imap_user.name, "INBOX", numbered_invoices(80, "cancel"))
    mailbox = imap_mailbox(imap_user, name="cancel-box")
    worker = email_worker(email_worker_env)
    try:
        job = mailbox_sync_enqueue(mailbox=mailbox, actor=SYSTEM)
        wait_for(lambda: 0 < job_of(job.pk).progress_done < 80, timeout=30, interval=0.01, what="mid-sync")
        from jobs.services import job_cancel

        job_cancel(job=job_of(job.pk), actor=SYSTEM, reason="test")
        cancelled = wait_for(lambda: (j := job_of(job.pk)).status == JobStatus.CANCELLED and j, timeout=30)
        done_before = MailMessage.objects.filter(mailbox=mailbox, status=MailMessage.Status.PROCESSED).count()
        assert 0 < done_before < 80, "the cancel landed mid-sync"
        assert SyncRun.objects.get(job=cancelled).status == SyncRun.Status.CANCELLED

        again = mailbox_sync_enqueue(mailbox=mailbox, actor=SYSTEM)
        finished = wait_for(lambda: (j := job_of(again.pk)).status == JobStatus.SUCCEEDED and j, timeout=60)
    finally:
        worker.stop()
    assert finished.result["messages_new"] == 0  # every message was recorded by the first run
    assert finished.result["invoices_created"] == 80 - done_before  # only the rest was downloaded
    assert MailMessage.objects.filter(mailbox=mailbox, status=MailMessage.Status.PROCESSED).count() == 80
    assert_each_invoice_once("cancel", 80)


def test_imap_server_stopped_mid_sync_then_back_ends_complete(no_session_worker, email_worker_env, imap_user):
    server = imap_user.server
    server.append_many(imap_user.name, "INBOX", numbered_invoices(80, "outage"))
    mailbox = imap_mailbox(imap_user, name="outage-box")
    worker = email_worker(email_worker_env)
    try:
        job = mailbox_sync_enqueue(mailbox=mailbox, actor=SYSTEM)
        wait_for(lambda: 0 < job_of(job.pk).progress_done < 80, timeout=30, interval=0.01, what="mid-sync")
        server.stop()
        try:
            retrying = wait_for(lambda: (j := job_of(job.pk)).status == JobStatus.RETRYING and j, timeout=60)
        finally:
            server.start()
        assert "Mailbox" in retrying.error and "retrying in" in retrying.error
        finished = wait_for(lambda: (j := job_of(job.pk)).status == JobStatus.SUCCEEDED and j, timeout=90)
    finally:
        worker.stop()
    assert finished.attempts >= 2
    assert MailMessage.objects.filter(mailbox=mailbox, status=MailMessage.Status.PROCESSED).count() == 80
    assert_each_invoice_once("outage", 80)


def test_two_mailboxes_sync_at_the_same_time_on_two_workers(no_session_worker, email_worker_env, dovecot):
    import secrets

    boxes = []
    for name in ("north", "south"):
        user, password = f"{name}-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        dovecot.add_user(user, password)
        dovecot.append_many(user, "INBOX", numbered_invoices(60, name))
        mailbox = Mailbox(
            name=name, host=dovecot.host, port=dovecot.port, security="ssl", username=user, folders=["INBOX"]
        )
        mailbox.set_secret(password)
        mailbox.save()
        boxes.append(mailbox)
    workers = [email_worker(email_worker_env, name="email-a"), email_worker(email_worker_env, name="email-b")]
    try:
        jobs = [mailbox_sync_enqueue(mailbox=box, actor=SYSTEM) for box in boxes]
        finished = [
            wait_for(lambda j=j: (x := job_of(j.pk)).status == JobStatus.SUCCEEDED and x, timeout=90) for j in jobs
        ]
    finally:
        for worker in workers:
            worker.stop()
    first, second = finished
    assert first.worker != second.worker
    assert first.started_at < second.finished_at and second.started_at < first.finished_at  # they overlapped
    assert_each_invoice_once("north", 60)
    assert_each_invoice_once("south", 60)


def test_bad_credentials_fail_at_once_without_retry(no_session_worker, email_worker_env, imap_user):
    mailbox = imap_mailbox(imap_user, name="wrong-box")
    mailbox.set_secret("not the password")
    mailbox.save()
    worker = email_worker(email_worker_env)
    try:
        job = mailbox_sync_enqueue(mailbox=mailbox, actor=SYSTEM)
        failed = wait_for(lambda: (j := job_of(job.pk)).status == JobStatus.FAILED and j, timeout=30)
    finally:
        worker.stop()
    assert failed.attempts == 1
    assert "MailboxAuthError" in failed.error
    mailbox.refresh_from_db()
    assert mailbox.needs_attention
