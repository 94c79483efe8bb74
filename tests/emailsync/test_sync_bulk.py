"""A mailbox sync queues the processing of a download batch's invoices in bulk: one INSERT of
jobs and one publish to the broker per batch, not one per attachment, and nothing on a re-sync."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emailsync.models import MailMessage
from emailsync.services import mailbox_sync
from invoices.models import Invoice
from jobs.models import Job
from tests.emailsync.mailboxes import imap_mailbox, no_progress
from tests.emailsync.messages import numbered_invoices

# Transactional: the jobs are published to the real broker only when the sync's batches commit.
pytestmark = [pytest.mark.imap, pytest.mark.django_db(transaction=True)]


def job_inserts(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith('INSERT INTO "jobs_job"') and "invoices.process_invoice" in query["sql"]
    ]


def test_sync_of_30_invoice_mails_queues_each_batch_with_one_insert_and_one_publish(
    settings, dovecot, imap_user, make_user
):
    settings.EMAILSYNC_CA_FILE = str(dovecot.ca_file)
    settings.EMAILSYNC_DOWNLOAD_BATCH = 10
    imap_user.server.append_many(imap_user.name, "INBOX", numbered_invoices(30, "bulk"))
    owner = make_user("ap-owner")
    mailbox = imap_mailbox(imap_user, owner=owner)

    with CaptureQueriesContext(connection) as first:
        result = mailbox_sync(mailbox=mailbox, progress=no_progress)

    assert result["messages_new"] == 30 and result["invoices_created"] == 30 and result["errors"] == 0
    invoices = Invoice.objects.filter(source="email")
    jobs = Job.objects.filter(kind="invoices.process_invoice")
    # Every invoice has its processing job, owned as the invoice is.
    assert sorted(job.params["invoice_id"] for job in jobs) == sorted(invoices.values_list("pk", flat=True))
    assert set(jobs.values_list("owner", flat=True)) == {owner.pk}
    # Three download batches of 10: three INSERTs of jobs, and the broker was sent each batch's
    # jobs together (one publish, one published_at per batch), not 30 of each.
    assert len(job_inserts(first)) == 3
    assert not jobs.filter(published_at__isnull=True).exists()
    published = sorted(set(jobs.values_list("published_at", flat=True)))
    assert len(published) == 3
    assert sorted(jobs.values_list("published_at", flat=True)).count(published[0]) == 10
    assert MailMessage.objects.filter(mailbox=mailbox, status=MailMessage.Status.PROCESSED).count() == 30

    # A second sync finds nothing new and queues nothing.
    with CaptureQueriesContext(connection) as second:
        again = mailbox_sync(mailbox=mailbox, progress=no_progress)

    assert again["messages_new"] == 0 and again["invoices_created"] == 0
    assert job_inserts(second) == []
    assert jobs.count() == 30 and invoices.count() == 30
