"""Email sync job kinds. Thin: load ids, call a service."""

from __future__ import annotations

from rest_framework import serializers

from emailsync.errors import (
    MailboxConnectionLost,
    MailboxConnectionRefused,
    MailboxServerUnavailable,
    MailboxTimeout,
)
from emailsync.models import Mailbox
from emailsync.selectors import mailboxes_visible_to
from emailsync.services import mailbox_sync, mailboxes_sync_all
from jobs.kinds import TRANSIENT_ERRORS, JobSubject
from jobs.registry import job_kind

# A dropped connection or a server that is restarting: try again with backoff.
# Bad credentials, certificates or folders are not here: they need a person.
SYNC_RETRY_ON = (
    *TRANSIENT_ERRORS,
    MailboxTimeout,
    MailboxConnectionLost,
    MailboxServerUnavailable,
    MailboxConnectionRefused,
)


class SyncParams(serializers.Serializer):
    mailbox_id = serializers.IntegerField(min_value=1)
    months = serializers.IntegerField(
        min_value=1,
        max_value=120,
        required=False,
        help_text="Look back this many months (default: the mailbox's setting).",
    )
    folders = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        allow_empty=False,
        help_text="Folders to scan (default: the mailbox's folders).",
    )
    groups = serializers.BooleanField(
        required=False, help_text="Scan the shared and other users' folders the mailbox may read."
    )


MAILBOX = JobSubject(
    param="mailbox_id", noun="mailbox", everything=Mailbox.objects.all, visible_to=mailboxes_visible_to
)


@job_kind(
    "emailsync.sync_mailbox",
    label="Scan a mailbox for invoices",
    queue="email",
    priority=5,
    params=SyncParams,
    permission="emailsync.sync_mailbox",
    subject=MAILBOX,
    unique_key="mailbox:{mailbox_id}",
    max_attempts=5,
    backoff_base=10,
    backoff_max=300,
    retry_on=SYNC_RETRY_ON,
    soft_time_limit=3300,
    time_limit=3600,
)
def sync_mailbox(
    job, *, mailbox_id: int, months: int | None = None, folders: list[str] | None = None, groups: bool = False
) -> dict:
    return mailbox_sync(
        mailbox=Mailbox.objects.get(pk=mailbox_id),
        progress=job.progress,
        job_id=job.id,
        months=months,
        folders=folders,
        groups=groups,
    )


@job_kind(
    "emailsync.sync_all_mailboxes",
    label="Queue a sync of every enabled mailbox",
    queue="email",
    priority=6,
    staff_only=True,
    unique_key="emailsync.sync_all_mailboxes",
    max_attempts=1,
)
def sync_all_mailboxes(job) -> dict:
    return mailboxes_sync_all()
