"""Scanning one mailbox: record every message once, then hand its invoice
attachments to the invoices ingest service.

Per folder: SELECT (UIDVALIDITY), UID SEARCH SINCE the lookback date, subtract
the UIDs already recorded (no header is fetched for them), fetch the headers of
the rest in bulk, record each message under a unique constraint *before* any
work is queued for it, then download only the messages with candidate
attachments. The invoices of a download batch are ingested together, their
processing jobs queued with one INSERT and one broker round trip
(invoice_ingest_many), in the same commit that records the batch's messages as
done; so a cancel, a crash or a dropped connection keeps every batch that was
done, and the next sync resumes without downloading those messages again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from emailsync.attachments import (
    MessageOverBudget,
    ParsedMessage,
    SkippedPart,
    candidate_attachments,
    message_too_large_reason,
)
from emailsync.bodypdf import BodyNotRenderable, body_to_pdf
from emailsync.errors import MailboxError, MailboxFolderMissing, MailboxProtocolError, UnparseableMessage
from emailsync.imap import ImapConnection, MessageSummary
from emailsync.models import Mailbox, MailLocation, MailMessage, MailRule, SyncRun
from emailsync.rules import Decision, default_decision, enabled_rules, message_facts, rules_decide
from invoices.models import InvoiceSource, InvoiceStatus
from invoices.services import IngestFile, invoice_ingest_many

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None, str | None], None]


@dataclass
class FolderPlan:
    name: str
    uidvalidity: int
    new_uids: list[int]
    retry_uids: list[int]
    matched: int


@dataclass
class SyncCounts:
    folders: int = 0
    messages_seen: int = 0
    messages_new: int = 0
    attachments: int = 0
    invoices_created: int = 0
    skipped: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SyncRun.COUNT_FIELDS}


def parse_message(raw: bytes) -> ParsedMessage:
    """The message's candidate attachments, within the configured size, zip and expansion limits
    (raises UnparseableMessage or MessageOverBudget)."""
    return candidate_attachments(
        raw,
        max_bytes=settings.INVOICE_MAX_FILE_BYTES,
        zip_max_members=settings.EMAILSYNC_ZIP_MAX_MEMBERS,
        zip_max_total_bytes=settings.EMAILSYNC_ZIP_MAX_TOTAL_BYTES,
        zip_max_ratio=settings.EMAILSYNC_ZIP_MAX_RATIO,
        message_max_bytes=settings.EMAILSYNC_MESSAGE_MAX_BYTES,
        message_max_expanded_bytes=settings.EMAILSYNC_MESSAGE_MAX_EXPANDED_BYTES,
    )


def lookback_date(months: int, today: dt.date | None = None) -> dt.date:
    return (today or timezone.now().date()) - relativedelta(months=months)


def mailbox_scan(
    *,
    mailbox: Mailbox,
    connection: ImapConnection,
    run: SyncRun,
    progress: Progress,
    months: int | None = None,
    folders: list[str] | None = None,
) -> SyncCounts:
    """Sync the given folders over an open connection; counts go to `run` as they change."""
    counts = SyncCounts()
    # With rules, every new message is downloaded: a rule may look at its body or recipients, take
    # the body as the invoice, or move a message that has no attachment at all.
    rules = enabled_rules(mailbox)
    since = lookback_date(months if months is not None else mailbox.lookback_months)
    names = mailbox.folder_list if folders is None else folders
    plans = [_plan_folder(mailbox, connection, name, since) for name in names]
    counts.folders = len(plans)
    counts.messages_seen = sum(plan.matched for plan in plans)
    total = sum(len(plan.new_uids) + len(plan.retry_uids) for plan in plans)
    done = 0
    progress(done, total, f"{total} message(s) to look at in {len(plans)} folder(s)")
    for plan in plans:
        connection.select_folder(plan.name)
        pending = _record_new(mailbox, connection, plan, counts, download_all=bool(rules))
        # A message is done once recorded, or, with candidate attachments, once processed.
        done += len(plan.new_uids) - len(pending)
        _save_counts(run, counts)
        progress(done, total, f"{plan.name}: {len(plan.new_uids)} new message(s) recorded")
        pending.extend(plan.retry_uids)
        batch_size = settings.EMAILSYNC_DOWNLOAD_BATCH
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            messages = {
                location.uid: location.message
                for location in MailLocation.objects.filter(
                    mailbox=mailbox,
                    folder=plan.name,
                    uidvalidity=plan.uidvalidity,
                    uid__in=batch,
                ).select_related("message")
            }
            batch = _without_oversize(batch, messages, counts)  # not even downloaded
            taken = _TakenBatch()
            for uid, raw in connection.fetch_raw(batch, batch_size=batch_size):
                work = _decide_message(mailbox, messages.get(uid), uid, raw, counts, rules=rules, folder=plan.name)
                if work is not None:
                    taken.add(work)
                if taken.size >= settings.EMAILSYNC_MESSAGE_MAX_EXPANDED_BYTES:  # bounds what waits in memory
                    _ingest_taken(mailbox, connection, taken, counts)
                    taken = _TakenBatch()
            _ingest_taken(mailbox, connection, taken, counts)
            done += len(batch)
            _save_counts(run, counts)
            progress(done, total, f"{plan.name}: attachments of {done} of {total} processed")
    return counts


def _without_oversize(uids: list[int], messages: dict[int, MailMessage], counts: SyncCounts) -> list[int]:
    """The UIDs worth downloading; messages whose size (RFC822.SIZE) is over
    EMAILSYNC_MESSAGE_MAX_BYTES are recorded as skipped with the reason instead."""
    limit = settings.EMAILSYNC_MESSAGE_MAX_BYTES
    kept = []
    for uid in uids:
        message = messages.get(uid)
        if (
            message is not None
            and message.size > limit
            and message.status in (MailMessage.Status.PENDING, MailMessage.Status.FAILED)
        ):
            message.attempts += 1
            _skip(message, message_too_large_reason(message.size, limit), counts)
        else:
            kept.append(uid)
    return kept


def group_folders(connection: ImapConnection) -> tuple[list[str], list[str]]:
    """The folders of the other users' and shared namespaces (RFC 2342) this login may read, and
    those it sees listed but may not open (e.g. an ACL with lookup but no read right)."""
    spaces = connection.namespaces()
    readable: list[str] = []
    refused: list[str] = []
    for prefix, _delimiter in (*spaces.other_users, *spaces.shared):
        if not prefix:  # a namespace at the root would be every folder again
            continue
        for name in connection.list_folders(under=prefix):
            if name in readable or name in refused:
                continue
            try:
                connection.select_folder(name, readonly=True)
            except (MailboxFolderMissing, MailboxProtocolError):
                refused.append(name)
                continue
            readable.append(name)
    return readable, refused


def _plan_folder(mailbox: Mailbox, connection: ImapConnection, name: str, since: dt.date) -> FolderPlan:
    state = connection.select_folder(name, readonly=True)
    matched = connection.search_since(since)
    known = set(
        MailLocation.objects.filter(mailbox=mailbox, folder=name, uidvalidity=state.uidvalidity).values_list(
            "uid", flat=True
        )
    )
    retry = MailMessage.objects.filter(
        mailbox=mailbox,
        locations__folder=name,
        locations__uidvalidity=state.uidvalidity,
        status__in=[MailMessage.Status.PENDING, MailMessage.Status.FAILED],
    ).values_list("locations__uid", flat=True)
    return FolderPlan(
        name=name,
        uidvalidity=state.uidvalidity,
        new_uids=[uid for uid in matched if uid not in known],
        retry_uids=sorted(set(retry) & set(matched)),
        matched=len(matched),
    )


def _record_new(
    mailbox: Mailbox, connection: ImapConnection, plan: FolderPlan, counts: SyncCounts, *, download_all: bool = False
) -> list[int]:
    """Record each new message (once per mailbox), a header batch per transaction;
    return the UIDs to download."""
    to_download: list[int] = []
    summaries = connection.fetch_summaries(plan.new_uids, batch_size=settings.EMAILSYNC_HEADER_BATCH)
    for batch in _batched(summaries, settings.EMAILSYNC_HEADER_BATCH):
        try:
            with transaction.atomic():
                recorded = _record_batch(mailbox, plan, batch, download_all)
        except IntegrityError:  # a concurrent run recorded some of them: go one by one
            recorded = [_record(mailbox, plan, summary, download_all) for summary in batch]
        for message, created in recorded:
            if not created:
                continue
            counts.messages_new += 1
            if message.status == MailMessage.Status.PENDING:
                to_download.append(message.uid)
            else:
                counts.skipped += 1
    return to_download


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _new_message(mailbox: Mailbox, plan: FolderPlan, summary: MessageSummary, download_all: bool) -> MailMessage:
    candidate = summary.has_candidate_attachment or download_all
    return MailMessage(
        mailbox=mailbox,
        message_id=(summary.message_id or "")[:500],
        folder=plan.name,
        uidvalidity=plan.uidvalidity,
        uid=summary.uid,
        subject=summary.subject[:500],
        sender=summary.sender[:300],
        sent_at=summary.date,
        size=summary.size,
        status=MailMessage.Status.PENDING if candidate else MailMessage.Status.NO_CANDIDATES,
        error="" if candidate else "No attachment that could be an invoice.",
    )


def _record_batch(
    mailbox: Mailbox, plan: FolderPlan, summaries: list[MessageSummary], download_all: bool
) -> list[tuple[MailMessage, bool]]:
    """Record a batch of messages and their locations with a few queries (inside a transaction)."""
    ids = {(s.message_id or "")[:500] for s in summaries} - {""}
    by_id = {m.message_id: m for m in MailMessage.objects.filter(mailbox=mailbox, message_id__in=ids)}
    new: list[MailMessage] = []
    for summary in summaries:
        message_id = (summary.message_id or "")[:500]
        if message_id and message_id in by_id:
            continue  # seen in another folder, or twice in this batch
        message = _new_message(mailbox, plan, summary, download_all)
        new.append(message)
        if message_id:
            by_id[message_id] = message
    MailMessage.objects.bulk_create(new)
    created = {id(m) for m in new}
    by_uid = {m.uid: m for m in new if not m.message_id}
    recorded = []
    for summary in summaries:
        message_id = (summary.message_id or "")[:500]
        message = by_id[message_id] if message_id else by_uid[summary.uid]
        # New for the summary that created it; a copy later in the batch only adds a location.
        recorded.append((message, id(message) in created and message.uid == summary.uid))
    MailLocation.objects.bulk_create(
        [
            MailLocation(
                mailbox=mailbox, message=message, folder=plan.name, uidvalidity=plan.uidvalidity, uid=summary.uid
            )
            for summary, (message, _) in zip(summaries, recorded, strict=True)
        ],
        ignore_conflicts=True,
    )
    return recorded


def _record(
    mailbox: Mailbox, plan: FolderPlan, summary: MessageSummary, download_all: bool
) -> tuple[MailMessage, bool]:
    """One message's row (created if new) and its location in this folder."""
    message_id = (summary.message_id or "")[:500]
    existing = MailMessage.objects.filter(mailbox=mailbox, message_id=message_id).first() if message_id else None
    created = False
    if existing is None:
        try:
            with transaction.atomic():
                existing = _new_message(mailbox, plan, summary, download_all)
                existing.save(force_insert=True)
                created = True
        except IntegrityError:  # recorded meanwhile (another folder, a concurrent run)
            existing = (
                MailMessage.objects.get(mailbox=mailbox, message_id=message_id)
                if message_id
                else MailMessage.objects.get(
                    mailbox=mailbox, folder=plan.name, uidvalidity=plan.uidvalidity, uid=summary.uid
                )
            )
    MailLocation.objects.get_or_create(
        mailbox=mailbox, folder=plan.name, uidvalidity=plan.uidvalidity, uid=summary.uid, defaults={"message": existing}
    )
    return existing, created


@dataclass
class _Taken:
    """A downloaded message, decided: what to ingest from it and how to record it."""

    message: MailMessage
    uids: list[int]  # the message's UIDs in this folder (a copy under a second UID is marked too)
    decision: Decision
    files: list[IngestFile]
    skipped: list[SkippedPart]
    nothing_there: bool


@dataclass
class _TakenBatch:
    """The decided messages of a download batch, ingested together."""

    by_message: dict[int, _Taken] = field(default_factory=dict)
    size: int = 0

    def add(self, work: _Taken) -> None:
        known = self.by_message.get(work.message.pk)
        if known is not None:  # the same message under a second UID: processed once
            known.uids.extend(work.uids)
            return
        self.by_message[work.message.pk] = work
        self.size += sum(len(file.content) for file in work.files)


def _decide_message(
    mailbox: Mailbox,
    message: MailMessage | None,
    uid: int,
    raw: bytes,
    counts: SyncCounts,
    *,
    rules: list[MailRule],
    folder: str,
) -> _Taken | None:
    """Parse a downloaded message and decide what to take from it; a message that cannot be read
    (or whose body cannot be rendered) is recorded at once with its error, and None returned."""
    if message is None or message.status not in (MailMessage.Status.PENDING, MailMessage.Status.FAILED):
        return None
    message.attempts += 1
    try:
        parsed = parse_message(raw)
        decision = message_decision(mailbox, rules, raw, parsed, folder=folder)
    except MessageOverBudget as exc:
        _skip(message, exc.reason, counts)
        return None
    except UnparseableMessage as exc:
        _fail(message, f"The message cannot be read: {exc.reason}", counts)
        return None
    except Exception as exc:  # hostile input must never stop the scan
        logger.exception("Unexpected error parsing message %s of %s", uid, mailbox)
        _fail(message, f"The message cannot be read: {type(exc).__name__}: {exc}", counts)
        return None
    if decision.action == MailRule.Action.IGNORE:
        return _Taken(message, [uid], decision, files=[], skipped=[], nothing_there=False)
    owner = decision.invoice_owner or mailbox.owner
    files = [
        IngestFile(
            content=attachment.content,
            filename=attachment.filename or "attachment",
            source_ref=_source_ref(mailbox, message, attachment),
            owner=owner,
            vendor=decision.vendor,
        )
        for attachment in decision.take
    ]
    if decision.take_body:
        try:
            files.append(_body_file(mailbox, message, parsed, decision, owner))
        except BodyNotRenderable as exc:
            _fail(message, str(exc), counts)
            return None
    taken = {id(part) for part in decision.take}
    left_out = [part for part in parsed.candidates if id(part) not in taken]
    skipped = [
        *parsed.skipped,
        *(
            SkippedPart(
                filename=part.filename,
                content_type=part.content_type,
                reason=f"Not taken: rule {decision.rule_name!r} takes only matching attachments.",
                archive=part.archive,
            )
            for part in left_out
        ),
    ]
    nothing_there = not parsed.candidates and not parsed.skipped and not decision.take_body
    return _Taken(message, [uid], decision, files=files, skipped=skipped, nothing_there=nothing_there)


# What handling a message writes on it; a message the rules took also records which rule.
_OUTCOME_FIELDS = ("status", "attachments", "invoices_created", "skipped_parts", "error", "processed_at", "attempts")
_DONE_FIELDS = (*_OUTCOME_FIELDS, "rule", "rule_name")


def _save_done(messages: list[MailMessage]) -> None:
    """One UPDATE per set of equal values: most messages of a batch end alike (processed, one
    invoice, nothing skipped), and this costs a fraction of bulk_update's CASE per row."""
    groups: dict[str, tuple[dict, list[int]]] = {}
    for message in messages:
        values = {name: getattr(message, name) for name in _DONE_FIELDS}
        key = json.dumps({**values, "rule": message.rule_id}, sort_keys=True, default=str)
        groups.setdefault(key, (values, []))[1].append(message.pk)
    for values, pks in groups.values():
        MailMessage.objects.filter(pk__in=pks).update(**values)


def _ingest_taken(mailbox: Mailbox, connection: ImapConnection, batch: _TakenBatch, counts: SyncCounts) -> None:
    """Ingest the batch's files with one invoice_ingest_many (one INSERT of processing jobs, one
    broker round trip) and record its messages as done in the same commit; then apply the
    after-processing actions, so a message is marked or moved only once its invoices are safe.

    A crash before the commit leaves the messages pending with nothing ingested; one after it and
    before the marks leaves them done and unmarked, as before.
    """
    works = list(batch.by_message.values())
    if not works:
        return
    now = timezone.now()
    with transaction.atomic():
        invoices = invoice_ingest_many(
            [file for work in works for file in work.files], source=InvoiceSource.EMAIL, once_per_source_ref=True
        )
        start = 0
        for work in works:
            message, decision = work.message, work.decision
            mine = invoices[start : start + len(work.files)]
            start += len(work.files)
            message.rule, message.rule_name = decision.rule, decision.rule_name[:200]
            message.processed_at = now
            message.attachments = len(work.files)
            message.invoices_created = sum(1 for invoice in mine if invoice.status != InvoiceStatus.DUPLICATE)
            message.skipped_parts = [
                {"filename": part.filename, "content_type": part.content_type, "reason": part.reason}
                for part in work.skipped
            ]
            message.status, message.error = MailMessage.Status.PROCESSED, ""
            if decision.action == MailRule.Action.IGNORE:
                message.status = MailMessage.Status.IGNORED
            elif work.nothing_there:
                message.status = MailMessage.Status.NO_CANDIDATES
                message.error = "No attachment that could be an invoice."
        _save_done([work.message for work in works])
    for work in works:
        counts.attachments += len(work.files)
        counts.invoices_created += work.message.invoices_created
        counts.skipped += len(work.skipped)
    _after_processing(mailbox, connection, works)


def message_decision(
    mailbox: Mailbox, rules: list[MailRule], raw: bytes, parsed: ParsedMessage, *, folder: str
) -> Decision:
    """What the mailbox's rules (or, without rules, the default) do with a downloaded message."""
    if not rules:  # no rules: no need to read the body or the recipients
        return default_decision(parsed, mailbox=mailbox)
    facts = message_facts(raw, parsed, folder=folder)
    return rules_decide(rules, facts, parsed, mailbox=mailbox)


def _body_file(mailbox: Mailbox, message: MailMessage, parsed: ParsedMessage, decision: Decision, owner) -> IngestFile:
    """The body rendered to a PDF, to be ingested as the message's invoice."""
    facts = decision.facts
    sent = message.sent_at.isoformat() if message.sent_at else ""
    pdf = body_to_pdf(
        subject=parsed.subject, sender=parsed.sender, sent_at=sent, body_html=facts.body_html, body_text=facts.body_text
    )
    return IngestFile(
        content=pdf,
        filename=_body_filename(parsed.subject),
        source_ref=f"email:{mailbox.pk}:{message.pk}:body",
        owner=owner,
        vendor=decision.vendor,
    )


def _body_filename(subject: str) -> str:
    cleaned = "".join(char if char.isalnum() or char in " -_." else "_" for char in subject).strip(" ._")
    return f"{(cleaned or 'message body')[:100]}.pdf"


def _source_ref(mailbox: Mailbox, message: MailMessage, attachment) -> str:
    # Stable per message and attachment, so re-processing a message after a
    # crash finds the invoice it already made instead of adding a duplicate.
    name = attachment.filename or "attachment"
    inner = f"{attachment.archive}/{name}" if getattr(attachment, "archive", None) else name
    return f"email:{mailbox.pk}:{message.pk}:{inner}"[:300]


def _skip(message: MailMessage, reason: str, counts: SyncCounts) -> None:
    """A message over a per-message limit: recorded as done with the reason, never retried."""
    counts.skipped += 1
    message.status = MailMessage.Status.NO_CANDIDATES
    message.attachments = message.invoices_created = 0
    message.skipped_parts, message.error = [], reason
    message.processed_at = timezone.now()
    message.save(update_fields=_OUTCOME_FIELDS)


def _fail(message: MailMessage, error: str, counts: SyncCounts) -> None:
    counts.errors += 1
    gave_up = message.attempts >= settings.EMAILSYNC_MAX_MESSAGE_ATTEMPTS
    message.status = MailMessage.Status.GAVE_UP if gave_up else MailMessage.Status.FAILED
    message.error = error + (f" (gave up after {message.attempts} attempts)" if gave_up else "")
    message.save(update_fields=["status", "error", "attempts"])


def _after_processing(mailbox: Mailbox, connection: ImapConnection, works: list[_Taken]) -> None:
    """The after-processing actions of a batch, one IMAP command per action and target folder."""
    groups: dict[tuple[str, str], list[int]] = {}
    for work in works:
        decision = work.decision
        if decision.after_processing == Mailbox.AfterProcessing.NOTHING:
            continue
        if decision.after_processing == Mailbox.AfterProcessing.MOVE and not decision.move_to_folder:
            continue
        groups.setdefault((decision.after_processing, decision.move_to_folder), []).extend(work.uids)
    if groups and connection.selected_read_only:
        logger.info("Not marking or moving %s message(s) in %s: the folder may only be read", len(works), mailbox)
        return
    for (action, folder), uids in groups.items():
        try:
            if action == Mailbox.AfterProcessing.MARK_SEEN:
                connection.mark_seen(uids)
            elif action == Mailbox.AfterProcessing.FLAG:
                connection.add_flag(uids, "\\Flagged")
            elif action == Mailbox.AfterProcessing.MOVE:
                connection.move(uids, folder)
        except MailboxError as exc:  # the invoices are safe; the mark is a courtesy
            logger.warning("Could not %s messages %s in %s: %s", action, uids, mailbox, exc)


def _save_counts(run: SyncRun, counts: SyncCounts) -> None:
    SyncRun.objects.filter(pk=run.pk).update(**counts.as_dict())
