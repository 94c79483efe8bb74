"""Per-message limits on a real Dovecot: a message over the size limit is not downloaded and
several zips that together expand past the budget are not expanded; both are recorded as
skipped with the reason, and the sync goes on with the next message."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from emailsync.models import MailMessage
from emailsync.services import mailbox_sync
from invoices.models import Invoice
from tests.emailsync.mailboxes import imap_mailbox
from tests.emailsync.messages import UBL, file_attachment, invoice_mail

pytestmark = [pytest.mark.imap, pytest.mark.django_db]


def _zip(name: str, size: int, seed: int) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.pdf", random.Random(seed).randbytes(size))
    return f"{name}.zip", buffer.getvalue(), "application/zip"


def test_message_limits_skip_with_a_reason_and_the_sync_goes_on(settings, dovecot, imap_user):
    settings.EMAILSYNC_CA_FILE = str(dovecot.ca_file)
    settings.EMAILSYNC_ZIP_MAX_TOTAL_BYTES = 500_000
    settings.EMAILSYNC_MESSAGE_MAX_EXPANDED_BYTES = 1_000_000
    settings.EMAILSYNC_MESSAGE_MAX_BYTES = 3_000_000
    imap_user.server.append_many(
        imap_user.name,
        "INBOX",
        [
            invoice_mail("Six zips", [_zip(f"part{n}", 300_000, n) for n in range(6)]),
            invoice_mail(
                "Huge", [("huge.pdf", b"%PDF-1.7\n" + random.Random(9).randbytes(3_200_000), "application/pdf")]
            ),
            invoice_mail("UBL invoice", [file_attachment(UBL)]),
        ],
    )
    mailbox = imap_mailbox(imap_user)

    counts = mailbox_sync(mailbox=mailbox, progress=lambda *args: None)

    by_subject = {m.subject: m for m in MailMessage.objects.filter(mailbox=mailbox)}
    zips, huge = by_subject["Six zips"], by_subject["Huge"]
    assert zips.status == MailMessage.Status.NO_CANDIDATES
    assert "expand to more than" in zips.error
    assert huge.status == MailMessage.Status.NO_CANDIDATES
    assert "over the limit" in huge.error
    assert by_subject["UBL invoice"].status == MailMessage.Status.PROCESSED
    assert counts["invoices_created"] == 1 and Invoice.objects.count() == 1

    again = mailbox_sync(mailbox=mailbox, progress=lambda *args: None)  # skipped means done: not retried
    assert again["messages_new"] == 0
    assert MailMessage.objects.get(pk=zips.pk).attempts == zips.attempts
