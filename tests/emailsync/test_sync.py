"""Mailbox sync against a real Dovecot: every message recorded once, every
invoice created once, nothing fetched again on the next sync."""

from __future__ import annotations

import hashlib

import pytest

from emailsync.models import MailLocation, MailMessage, SyncRun
from emailsync.services import mailbox_sync
from invoices.models import Invoice, InvoiceStatus
from tests.emailsync.mailboxes import imap_mailbox, no_progress
from tests.emailsync.messages import (
    CII,
    FACTURX,
    PEPPOL_A,
    PEPPOL_B,
    PLAIN_PDF,
    SPAM,
    UBL,
    file_attachment,
    invoice_mail,
    plain_mail,
    zip_attachment,
)

pytestmark = [pytest.mark.imap, pytest.mark.django_db]


@pytest.fixture
def imap_settings(settings, dovecot):
    settings.EMAILSYNC_CA_FILE = str(dovecot.ca_file)
    settings.INVOICE_MAX_FILE_BYTES = 200_000  # so one generated attachment is over the limit
    return settings


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def loaded_mailbox(imap_settings, imap_user):
    server = imap_user.server
    shared_id = "<same-message-in-two-folders@supplier.example>"
    server.append_many(
        imap_user.name,
        "INBOX",
        [
            invoice_mail("UBL invoice", [file_attachment(UBL)]),
            invoice_mail("CII invoice", [file_attachment(CII)]),
            invoice_mail("Factur-X invoice", [file_attachment(FACTURX)]),
            plain_mail("Just saying hello"),
            invoice_mail("Copied to two folders", [file_attachment(PEPPOL_B)], message_id=shared_id),
            invoice_mail("Too big", [("huge.pdf", b"%PDF-1.4\n" + b"0" * 300_000, "application/pdf")]),
        ],
    )
    server.append_many(
        imap_user.name,
        "Suppliers",
        [
            invoice_mail("Plain PDF invoice", [file_attachment(PLAIN_PDF)]),
            invoice_mail("Two invoices zipped", [zip_attachment("invoices.zip", [PEPPOL_A, UBL])]),
            plain_mail("Meeting notes"),
            invoice_mail("Copied to two folders", [file_attachment(PEPPOL_B)], message_id=shared_id),
        ],
    )
    spam = sorted(SPAM.glob("*.eml"))
    server.append_many(imap_user.name, "Spam", [path.read_bytes() for path in spam])
    mailbox = imap_mailbox(imap_user, folders=["INBOX", "Suppliers", "Spam"])
    return mailbox, len(spam)


def test_first_sync_records_every_message_once_and_each_invoice_once(loaded_mailbox):
    mailbox, spam_count = loaded_mailbox

    result = mailbox_sync(mailbox=mailbox, progress=no_progress)

    generated = 6 + 4
    assert result["folders"] == 3
    assert result["messages_seen"] == generated + spam_count
    assert result["messages_new"] == generated - 1 + spam_count  # the copy in a second folder is the same message
    assert MailMessage.objects.filter(mailbox=mailbox).count() == generated - 1 + spam_count
    assert MailLocation.objects.filter(mailbox=mailbox).count() == generated + spam_count
    # Messages without attachments are recorded too, and not downloaded again later.
    no_attachments = MailMessage.objects.filter(mailbox=mailbox, status=MailMessage.Status.NO_CANDIDATES)
    assert {"Just saying hello", "Meeting notes"} <= set(no_attachments.values_list("subject", flat=True))

    # Each generated invoice file exists exactly once as an original, from email.
    email_invoices = Invoice.objects.filter(source="email")
    for path in (UBL, CII, FACTURX, PLAIN_PDF, PEPPOL_A, PEPPOL_B):
        originals = email_invoices.filter(sha256=sha(path)).exclude(status=InvoiceStatus.DUPLICATE)
        assert originals.count() == 1, path.name
    # UBL arrived twice (alone, and in the zip): the second is a duplicate row linked to the first.
    ubl_rows = email_invoices.filter(sha256=sha(UBL))
    assert ubl_rows.count() == 2 and ubl_rows.filter(status=InvoiceStatus.DUPLICATE).count() == 1
    # The oversized attachment is skipped with the reason, and counted.
    too_big = MailMessage.objects.get(mailbox=mailbox, subject="Too big")
    assert too_big.status == MailMessage.Status.PROCESSED
    assert "size limit" in too_big.skipped_parts[0]["reason"]
    # Real spam: the scan finished, each message once; unreadable ones carry an error instead of stopping it.
    spam_rows = MailMessage.objects.filter(mailbox=mailbox, locations__folder="Spam").distinct()
    assert spam_rows.count() == spam_count
    assert not spam_rows.filter(status=MailMessage.Status.PENDING).exists()
    run = SyncRun.objects.get(mailbox=mailbox)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (
        run.invoices_created
        == result["invoices_created"]
        == email_invoices.exclude(status=InvoiceStatus.DUPLICATE).count()
    )
    assert result["attachments"] == email_invoices.count()


def test_second_sync_fetches_nothing_new(loaded_mailbox):
    mailbox, spam_count = loaded_mailbox
    mailbox_sync(mailbox=mailbox, progress=no_progress)
    invoices_before = Invoice.objects.count()

    again = mailbox_sync(mailbox=mailbox, progress=no_progress)

    assert again["messages_seen"] == 10 + spam_count
    assert again["messages_new"] == 0
    assert again["attachments"] == 0
    assert again["invoices_created"] == 0
    assert Invoice.objects.count() == invoices_before


def test_new_message_after_a_sync_is_picked_up_alone(loaded_mailbox, imap_user):
    mailbox, _ = loaded_mailbox
    mailbox_sync(mailbox=mailbox, progress=no_progress)
    imap_user.server.append(imap_user.name, "INBOX", invoice_mail("Late invoice", [file_attachment(PEPPOL_A)]))

    again = mailbox_sync(mailbox=mailbox, progress=no_progress)

    assert again["messages_new"] == 1
    assert again["attachments"] == 1
    assert again["invoices_created"] == 0  # same bytes as the zipped one: recorded as a duplicate, not a new invoice


def test_changed_uidvalidity_does_not_duplicate(imap_settings, imap_user):
    server = imap_user.server
    messages = [invoice_mail("UBL", [file_attachment(UBL)]), invoice_mail("CII", [file_attachment(CII)])]
    server.append_many(imap_user.name, "Archive", messages)
    mailbox = imap_mailbox(imap_user, folders=["Archive"])
    first = mailbox_sync(mailbox=mailbox, progress=no_progress)
    old_validity = server.uidvalidity(imap_user.name, "Archive")

    server.delete_folder(imap_user.name, "Archive")  # recreated: same messages, new UIDVALIDITY
    server.append_many(imap_user.name, "Archive", messages)
    assert server.uidvalidity(imap_user.name, "Archive") != old_validity
    second = mailbox_sync(mailbox=mailbox, progress=no_progress)

    assert first["invoices_created"] == 2
    assert second["messages_new"] == 0  # known by Message-ID
    assert second["invoices_created"] == 0
    assert MailMessage.objects.filter(mailbox=mailbox).count() == 2
    assert MailLocation.objects.filter(mailbox=mailbox).count() == 4  # old and new UIDs both known now


def test_lookback_limits_what_is_scanned(imap_settings, imap_user):
    import datetime as dt

    server = imap_user.server
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
    server.append(imap_user.name, "INBOX", invoice_mail("Old", [file_attachment(UBL)]), date=old)
    server.append(imap_user.name, "INBOX", invoice_mail("Recent", [file_attachment(CII)]))
    mailbox = imap_mailbox(imap_user, folders=["INBOX"])

    three_months = mailbox_sync(mailbox=mailbox, progress=no_progress)
    twelve_months = mailbox_sync(mailbox=mailbox, progress=no_progress, months=12)

    assert three_months["messages_seen"] == 1 and three_months["invoices_created"] == 1
    assert twelve_months["messages_seen"] == 2 and twelve_months["invoices_created"] == 1


def test_bad_password_flags_the_mailbox(imap_settings, imap_user):
    from emailsync.errors import MailboxAuthError

    mailbox = imap_mailbox(imap_user, folders=["INBOX"])
    mailbox.set_secret("wrong password")
    mailbox.save()

    with pytest.raises(MailboxAuthError):
        mailbox_sync(mailbox=mailbox, progress=no_progress)

    mailbox.refresh_from_db()
    assert mailbox.needs_attention
    assert "password" in mailbox.last_error
    assert SyncRun.objects.get(mailbox=mailbox).status == SyncRun.Status.FAILED


def test_missing_folder_is_a_clear_error(imap_settings, imap_user):
    from emailsync.services import mailbox_test_connection

    mailbox = imap_mailbox(imap_user, folders=["INBOX", "Nope"])
    result = mailbox_test_connection(mailbox=mailbox)
    assert result["ok"] is False
    assert result["error_type"] == "MailboxFolderMissing"
    assert "Nope" in result["error"]
