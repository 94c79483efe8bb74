"""Mailbox operations: create or change a mailbox, test it, sync it, cancel a sync.

Every operator action checks permission, runs in a transaction and is audited.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor, require_permission
from core.audit import audit_record
from core.errors import Invalid
from core.saves import audited_save
from emailsync.errors import (
    MailboxAuthError,
    MailboxDNSError,
    MailboxError,
    MailboxFolderMissing,
    MailboxTLSError,
    UnparseableMessage,
)
from emailsync.hostcheck import check_host_allowed
from emailsync.imap import ImapConnection, ImapSettings
from emailsync.models import Mailbox, MailMessage, MailRule, SyncRun
from emailsync.oauth import access_token_for
from emailsync.rules import RuleInvalid, enabled_rules, rule_validate
from emailsync.sync import Progress, SyncCounts, group_folders, mailbox_scan, message_decision, parse_message
from jobs.errors import JobCancelled, JobNotAllowed
from jobs.models import ACTIVE_STATUSES, Job
from jobs.services import job_cancel, job_enqueue

logger = logging.getLogger(__name__)

# Failures a person must fix: the mailbox is flagged and the job is not retried.
NEEDS_A_PERSON = (MailboxAuthError, MailboxTLSError, MailboxFolderMissing)
MAILBOX_FIELDS = (
    "name",
    "host",
    "port",
    "security",
    "username",
    "auth",
    "oauth_provider",
    "folders",
    "lookback_months",
    "enabled",
    "after_processing",
    "move_to_folder",
)


class MailboxInvalid(Invalid, ValueError):
    """A mailbox setting is not acceptable; the message says why, `field` which setting (400)."""

    def __init__(self, message: str, *, field: str | None = None, field_errors: dict | None = None) -> None:
        super().__init__(message, field_errors=field_errors or ({field: [message]} if field else None))


def imap_settings_for(mailbox: Mailbox) -> ImapSettings:
    return ImapSettings(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        secret=access_token_for(mailbox),
        security=mailbox.security,
        auth=mailbox.auth,
        ca_file=settings.EMAILSYNC_CA_FILE or None,
        timeout=settings.EMAILSYNC_TIMEOUT,
        allow_private=settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS,
        allow_insecure=settings.EMAILSYNC_ALLOW_INSECURE,
    )


def mailbox_validate_settings(
    *, host: str, security: str, port: int | None = None, require_resolvable: bool = True
) -> None:
    """Refuse plain IMAP and internal hosts unless the settings allow them, and a port outside 1-65535.

    With `require_resolvable=False` a host name that does not resolve here and now passes (it
    is no danger: the host is checked again before each connection)."""
    if port is not None and not 1 <= port <= 65535:
        raise MailboxInvalid(f"The port {port} is outside 1-65535.", field="port")
    if security == Mailbox.Security.PLAIN and not settings.EMAILSYNC_ALLOW_INSECURE:
        raise MailboxInvalid(
            "Plain (unencrypted) IMAP is not allowed; use SSL or STARTTLS, or set EMAILSYNC_ALLOW_INSECURE=1.",
            field="security",
        )
    try:
        check_host_allowed(host, allow_private=settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS)
    except MailboxDNSError as exc:
        if require_resolvable:
            raise MailboxInvalid(str(exc), field="host") from exc
    except MailboxError as exc:
        raise MailboxInvalid(str(exc), field="host") from exc


def mailbox_save(
    *,
    actor: Actor,
    mailbox: Mailbox | None = None,
    secret: str | None = None,
    refresh_token: str | None = None,
    owner=None,
    reason: str = "",
    require_resolvable: bool = True,
    **fields,
) -> Mailbox:
    """Create or change a mailbox (host and security checked: mailbox_validate_settings), audited
    as mailbox.create / mailbox.change. `secret` / `refresh_token` replace the stored ones when
    given. `require_resolvable=False` (a configuration restore) accepts a host name that does not
    resolve here yet."""
    creating = mailbox is None
    require_permission(actor.user, "emailsync.add_mailbox" if creating else "emailsync.change_mailbox")

    def prepare(row: Mailbox) -> None:
        if fields.keys() & {"host", "security", "port"} or creating:
            mailbox_validate_settings(
                host=row.host, security=row.security, port=row.port, require_resolvable=require_resolvable
            )
        if secret is not None:
            row.set_secret(secret)
            row.access_token_expires_at = None
        if refresh_token is not None:
            row.set_refresh_token(refresh_token)
        if secret is not None or fields.keys() & {"host", "port", "username", "auth"}:
            row.needs_attention, row.reconnect_required, row.last_error = False, False, ""

    return audited_save(
        mailbox or Mailbox(owner=owner if owner is not None else _user_or_none(actor)),
        actor=actor,
        action="mailbox.create" if creating else "mailbox.change",
        fields=fields,
        allowed=MAILBOX_FIELDS,
        reason=reason,
        details={"secret_changed": secret is not None},
        prepare=prepare,
    )


def mailbox_delete(*, mailbox: Mailbox, actor: Actor, reason: str = "") -> None:
    require_permission(actor.user, "emailsync.delete_mailbox")
    with transaction.atomic():
        audit_record(actor=actor, action="mailbox.delete", target=mailbox, reason=reason)
        mailbox.delete()


def _user_or_none(actor: Actor):
    return actor.user if getattr(actor.user, "pk", None) else None


def mailbox_test_connection(*, mailbox: Mailbox) -> dict:
    """Log in and open every configured folder; a clear message for each failure."""
    folders: dict[str, int] = {}
    try:
        with ImapConnection(imap_settings_for(mailbox)) as connection:
            for name in mailbox.folder_list:
                folders[name] = connection.select_folder(name, readonly=True).exists
    except MailboxError as exc:
        return {"ok": False, "error": str(exc), "error_type": type(exc).__name__, "folders": folders}
    return {"ok": True, "error": None, "error_type": None, "folders": folders}


def mailbox_sync_enqueue(
    *,
    mailbox: Mailbox,
    actor: Actor,
    months: int | None = None,
    folders: list[str] | None = None,
    groups: bool = False,
    reason: str = "",
) -> Job:
    """Queue a sync; returns the active one instead when a sync of this mailbox is already active
    (then `job.deduplicated` is True). `groups` scans the shared and other users' folders
    instead of the mailbox's own."""
    require_permission(actor.user, "emailsync.sync_mailbox")
    params: dict = {"mailbox_id": mailbox.pk}
    if months is not None:
        params["months"] = months
    if folders:
        params["folders"] = folders
    if groups:
        params["groups"] = True
    with transaction.atomic():
        job = job_enqueue(
            "emailsync.sync_mailbox",
            params,
            owner=_user_or_none(actor) or mailbox.owner,
            subject=mailbox,
            priority=3,
            source=actor.source,
        )
        if not job.deduplicated:
            audit_record(
                actor=actor,
                action="mailbox.sync_groups" if groups else "mailbox.sync",
                job=job,
                target=mailbox,
                reason=reason,
            )
    return job


def mailbox_active_sync(mailbox: Mailbox) -> Job | None:
    return Job.objects.filter(unique_key=f"mailbox:{mailbox.pk}", status__in=ACTIVE_STATUSES).first()


def mailbox_cancel_sync(*, mailbox: Mailbox, actor: Actor, reason: str = "") -> Job:
    require_permission(actor.user, "emailsync.sync_mailbox")
    job = mailbox_active_sync(mailbox)
    if job is None:
        raise JobNotAllowed("No sync of this mailbox is running or queued.")
    return job_cancel(job=job, actor=actor, reason=reason)


def mailboxes_sync_all() -> dict:
    """Queue one sync per enabled mailbox (the 5-minute schedule)."""
    queued = deduplicated = 0
    for mailbox in Mailbox.objects.filter(enabled=True, needs_attention=False):
        job = job_enqueue(
            "emailsync.sync_mailbox",
            {"mailbox_id": mailbox.pk},
            owner=mailbox.owner,
            subject=mailbox,
            priority=6,
            source="schedule",
            expires=settings.EMAILSYNC_SYNC_INTERVAL_SECONDS,
        )
        if job.deduplicated:
            deduplicated += 1
        else:
            queued += 1
    return {"queued": queued, "already_active": deduplicated}


def mailbox_sync(
    *,
    mailbox: Mailbox,
    progress: Progress,
    job_id: str | None = None,
    months: int | None = None,
    folders: list[str] | None = None,
    groups: bool = False,
) -> dict:
    """Scan one mailbox now (inside a job, or in-process with `sync_mailbox --sync`).

    With `groups`, the folders scanned are those of the server's shared and other
    users' namespaces this login may read (found with NAMESPACE and LIST), recorded
    and resumed exactly like the mailbox's own folders.

    Returns the run's counts. Bad credentials or certificates flag the mailbox
    as needing attention and raise (no retry); network trouble raises a
    transient error that the job retries, resuming where it stopped.
    """
    run = SyncRun.objects.create(mailbox=mailbox, job_id=job_id)
    counts = None
    shared: dict = {}
    try:
        with ImapConnection(imap_settings_for(mailbox)) as connection:
            if groups:
                folders, refused = group_folders(connection)
                shared = {"group_folders": folders, "refused_folders": refused}
                progress(0, None, f"{len(folders)} shared folder(s) this mailbox may read")
            counts = (
                mailbox_scan(
                    mailbox=mailbox, connection=connection, run=run, progress=progress, months=months, folders=folders
                )
                if folders != []
                else SyncCounts()
            )
    except JobCancelled:
        _finish_run(run, SyncRun.Status.CANCELLED, "Cancelled")
        raise
    except NEEDS_A_PERSON as exc:
        # An OAuth account whose token or refresh the provider refused must be connected again;
        # the mailbox says so, the schedule skips it and the monitoring alert fires.
        reconnect = mailbox.auth == Mailbox.Auth.XOAUTH2 and isinstance(exc, MailboxAuthError)
        Mailbox.objects.filter(pk=mailbox.pk).update(
            needs_attention=True, last_error=str(exc), reconnect_required=reconnect
        )
        _finish_run(run, SyncRun.Status.FAILED, str(exc))
        raise
    except Exception as exc:
        Mailbox.objects.filter(pk=mailbox.pk).update(last_error=str(exc)[:2000])
        _finish_run(run, SyncRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    Mailbox.objects.filter(pk=mailbox.pk).update(
        last_sync_at=timezone.now(), last_error="", needs_attention=False, reconnect_required=False
    )
    SyncRun.objects.filter(pk=run.pk).update(**counts.as_dict())
    _finish_run(run, SyncRun.Status.SUCCEEDED, "")
    return {"mailbox": mailbox.name, "sync_run": run.pk, **counts.as_dict(), **shared}


def _finish_run(run: SyncRun, status: str, error: str) -> None:
    SyncRun.objects.filter(pk=run.pk).update(status=status, error=error[:2000], finished_at=timezone.now())


# -- mail rules ---------------------------------------------------------------------------------------------

RULE_FIELDS = (
    "position",
    "name",
    "enabled",
    *MailRule.CONDITION_FIELDS,
    "action",
    "vendor",
    "invoice_owner",
    "after_processing",
    "move_to_folder",
)
RULES_TEST_MAX = 200


def mail_rule_save(
    *, actor: Actor, mailbox: Mailbox | None = None, rule: MailRule | None = None, reason: str = "", **fields
) -> MailRule:
    """Create a rule on `mailbox`, or change `rule`. Patterns are checked (RuleInvalid says which is wrong);
    only staff may hand the invoices to another user than themselves."""
    require_permission(actor.user, "emailsync.change_mailbox")
    creating = rule is None
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise RuleInvalid(dict.fromkeys(sorted(unknown), "Unknown rule field."))
    if creating:
        if mailbox is None:
            raise RuleInvalid({"mailbox": "A rule belongs to a mailbox."})
        rule = MailRule(mailbox=mailbox)
    for name, value in fields.items():
        setattr(rule, name, value.strip() if isinstance(value, str) and name != "name" else value)
    user = _user_or_none(actor)
    if rule.invoice_owner_id and user is not None and not user.is_staff and rule.invoice_owner_id != user.pk:
        raise RuleInvalid({"invoice_owner": "Only staff may give the invoices to another user."})
    rule_validate(rule)
    with transaction.atomic():
        if creating and "position" not in fields:
            last = MailRule.objects.filter(mailbox=rule.mailbox).order_by("-position").first()
            rule.position = (last.position + 10) if last else 10
        rule.save()
        audit_record(
            actor=actor,
            action="mailbox.rule_create" if creating else "mailbox.rule_change",
            target=rule.mailbox,
            reason=reason,
            details={"rule": rule.pk, "name": rule.name, "fields": sorted(fields)},
        )
    return rule


def mail_rule_delete(*, rule: MailRule, actor: Actor, reason: str = "") -> None:
    """Delete a rule (messages it decided keep its name)."""
    require_permission(actor.user, "emailsync.change_mailbox")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="mailbox.rule_delete",
            target=rule.mailbox,
            reason=reason,
            details={"rule": rule.pk, "name": rule.name},
        )
        rule.delete()


def mailbox_rules_test(*, mailbox: Mailbox, actor: Actor, limit: int = 20) -> dict:
    """Dry run: what the current rules would do with the mailbox's last `limit` recorded messages.

    The messages are downloaded again (read-only, nothing marked), decided by the
    rules, and reported; nothing is ingested, moved or changed.
    """
    require_permission(actor.user, "emailsync.sync_mailbox")
    limit = max(1, min(limit, RULES_TEST_MAX))
    rules = enabled_rules(mailbox)
    messages = list(
        MailMessage.objects.filter(mailbox=mailbox)
        .prefetch_related("locations")
        .order_by("-first_seen_at", "-pk")[:limit]
    )
    by_folder: dict[tuple[str, int], dict[int, MailMessage]] = {}
    for message in messages:
        location = min(message.locations.all(), key=lambda loc: (loc.folder != message.folder, loc.pk), default=None)
        if location is not None:
            by_folder.setdefault((location.folder, location.uidvalidity), {})[location.uid] = message
    raw_of: dict[int, tuple[str, bytes]] = {}
    try:
        with ImapConnection(imap_settings_for(mailbox)) as connection:
            for (folder, uidvalidity), wanted in by_folder.items():
                try:
                    state = connection.select_folder(folder, readonly=True)
                except MailboxFolderMissing:
                    continue
                if state.uidvalidity != uidvalidity:
                    continue  # the folder was recreated: those UIDs mean other messages now
                for uid, raw in connection.fetch_raw(sorted(wanted)):
                    raw_of[wanted[uid].pk] = (folder, raw)
    except MailboxError as exc:
        return {"ok": False, "error": str(exc), "rules": len(rules), "messages": []}
    results = [_rule_test_result(mailbox, rules, message, raw_of.get(message.pk)) for message in messages]
    return {"ok": True, "error": None, "rules": len(rules), "messages": results}


def _rule_test_result(
    mailbox: Mailbox, rules: list[MailRule], message: MailMessage, found: tuple[str, bytes] | None
) -> dict:
    row = {
        "message": message.pk,
        "subject": message.subject,
        "sender": message.sender,
        "folder": message.folder,
        "recorded_status": message.status,
        "recorded_rule": message.rule_name or None,
        "rule": None,
        "rule_id": None,
        "action": None,
        "attachments": [],
        "body_as_invoice": False,
        "vendor": None,
        "invoice_owner": None,
        "after_processing": None,
        "move_to_folder": None,
        "outcome": "",
    }
    if found is None:
        row["outcome"] = "The message is not on the server any more."
        return row
    folder, raw = found
    try:
        parsed = parse_message(raw)
        decision = message_decision(mailbox, rules, raw, parsed, folder=folder)
    except UnparseableMessage as exc:
        row["outcome"] = f"The message cannot be read: {exc.reason}"
        return row
    except Exception as exc:  # hostile input: report it, go on with the next message
        row["outcome"] = f"The message cannot be read: {type(exc).__name__}: {exc}"
        return row
    row.update(
        rule=decision.rule_name or None,
        rule_id=decision.rule.pk if decision.rule else None,
        action=decision.action,
        attachments=[a.filename or "attachment" for a in decision.take],
        body_as_invoice=decision.take_body,
        vendor=getattr(decision.vendor, "name", None),
        invoice_owner=getattr(decision.invoice_owner, "username", None),
        after_processing=decision.after_processing,
        move_to_folder=decision.move_to_folder or None,
        outcome=decision.describe(),
    )
    return row
