"""Invoice business operations: ingest, process, decide, export.

The original bytes are always stored first (content-addressed by SHA-256),
then the Invoice row; nothing a supplier sent is lost, whatever its content.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, models, transaction
from django.utils import timezone

from core.actors import Actor, require_permission
from core.audit import audit_record
from core.errors import Conflict, Invalid
from core.saves import audited_save
from events.services import event_publish
from invoices import corrections as fields
from invoices.corrections import InvalidCorrection
from invoices.extract import extract
from invoices.extract.base import ExtractedInvoice, InvalidInvoice
from invoices.identity import normalise_iban, normalise_vat_id
from invoices.models import (
    ExportBatch,
    Invoice,
    InvoiceCorrection,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    InvoiceType,
    Severity,
    ValidationIssue,
    ValidationRuleSetting,
    Vendor,
)
from invoices.ocr import OcrOutcome, apply_word_confidence, document_ocr, extract_scanned
from invoices.representation import invoice_as_dict
from invoices.selectors import invoice_approval_need, invoices_visible_to
from invoices.validation import RULES, match_vendor, validate
from jobs.services import job_enqueue, job_enqueue_many

logger = logging.getLogger(__name__)

EXTRACTED_FIELDS = (
    "invoice_number",
    "type_code",
    "issue_date",
    "due_date",
    "currency",
    "buyer_reference",
    "purchase_order_reference",
    "seller_name",
    "seller_vat_id",
    "seller_country",
    "buyer_name",
    "buyer_vat_id",
    "buyer_country",
    "payment_iban",
    *fields.TOTAL_FIELDS,
    "profile",
)


class InvoiceNotAllowed(Conflict):
    """The invoice cannot take this action in its current state (409)."""


# A person decided these: extracting again would silently drop that decision.
DECIDED_STATUSES = (InvoiceStatus.APPROVED, InvoiceStatus.REJECTED, InvoiceStatus.EXPORTED)


def original_path(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _store_original(content: bytes, sha256: str) -> str:
    """Write the bytes once per content; return the storage name."""
    name = original_path(sha256)
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(content))
        if saved != name:  # a concurrent writer won; keep one copy
            default_storage.delete(saved)
    return name


def invoice_ingest(
    *,
    content: bytes,
    filename: str,
    source: str,
    owner=None,
    source_ref: str = "",
    process: bool = True,
    once_per_source_ref: bool = False,
    vendor=None,
) -> Invoice:
    """Store a file and record it as an invoice; queue its processing on commit.

    The same bytes twice give a `duplicate` row linked to the first, not a
    second invoice. With `once_per_source_ref`, the same bytes from the same
    source_ref (an email attachment processed again after a crash) return the
    invoice made the first time. A file over INVOICE_MAX_FILE_BYTES is kept
    and marked failed with the reason. A `vendor` given (by a mail rule) is kept
    by validation instead of the one matched from the seller.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    if once_per_source_ref and source_ref:
        again = Invoice.objects.filter(sha256=sha256, source_ref=source_ref[:300]).first()
        if again is not None:
            return again
    name = _store_original(content, sha256)
    fields = {
        "source": source,
        "source_ref": source_ref[:300],
        "owner": owner,
        "original": name,
        "original_filename": (filename or "unnamed")[-255:],
        "sha256": sha256,
        "size": len(content),
    }
    if vendor is not None:
        fields.update(vendor=vendor, vendor_confirmed=True)  # a rule a person set up decided it
    first = Invoice.objects.filter(sha256=sha256, duplicate_of__isnull=True).first()
    if first is None:
        try:
            with transaction.atomic():
                invoice = Invoice.objects.create(**fields)
        except IntegrityError:  # the same bytes arrived concurrently
            first = Invoice.objects.get(sha256=sha256, duplicate_of__isnull=True)
    if first is not None:
        # The first copy may be someone else's: the stored message names no invoice; the API adds the
        # id only for callers who may see it (invoices/representation.py).
        return Invoice.objects.create(
            **fields, status=InvoiceStatus.DUPLICATE, duplicate_of=first, error="The same file was received before."
        )
    if len(content) > settings.INVOICE_MAX_FILE_BYTES:
        invoice.status = InvoiceStatus.FAILED
        invoice.error = (
            f"The file is {len(content) / 1_048_576:.1f} MiB; the limit is "
            f"{settings.INVOICE_MAX_FILE_BYTES / 1_048_576:.1f} MiB. It was kept but not read."
        )
        invoice.save(update_fields=["status", "error", "updated_at"])
        _emit("invoice.failed", invoice)
        return invoice
    if process:
        job_enqueue(
            "invoices.process_invoice",
            {"invoice_id": invoice.pk},
            owner=owner,
            subject=invoice,
            priority=_process_priority(source),
        )
    return invoice


def _process_priority(source: str) -> int:
    # A person waiting at a screen goes before a folder, a command or a mailbox.
    return 3 if source in (InvoiceSource.UPLOAD, InvoiceSource.ADMIN) else 5


class IngestFile(NamedTuple):
    """One file for invoice_ingest_many; owner and vendor, when given, override the batch's
    (a mail rule decides them per message)."""

    content: bytes
    filename: str
    source_ref: str = ""
    owner: Any = None
    vendor: Any = None


def invoice_ingest_many(
    files: Iterable[tuple], *, source: str, owner=None, once_per_source_ref: bool = False
) -> list[Invoice]:
    """Ingest a batch of files, each an IngestFile or (content, filename, source_ref), as
    invoice_ingest does, and queue the processing of those that need it with one
    job_enqueue_many (one INSERT, one broker round trip) instead of one job per file;
    one per owner when files name different owners (a job belongs to its invoice's owner).

    The invoices and their jobs commit together (with the caller's transaction, if any): a
    crash before the commit leaves no invoice without its job (and the caller's files where
    they were).
    """
    with transaction.atomic():
        invoices = []
        # Duplicates and over-size files are not processed; a file returned again
        # (once_per_source_ref) whose job is still active is deduplicated by its unique key.
        waiting: dict[Any, tuple[Any, dict[int, None]]] = {}  # owner pk: (owner, invoice pks)
        for item in files:
            file = IngestFile(*item)
            file_owner = file.owner if file.owner is not None else owner
            invoice = invoice_ingest(
                content=file.content,
                filename=file.filename,
                source=source,
                owner=file_owner,
                source_ref=file.source_ref,
                process=False,
                once_per_source_ref=once_per_source_ref,
                vendor=file.vendor,
            )
            invoices.append(invoice)
            if invoice.status == InvoiceStatus.RECEIVED:
                waiting.setdefault(getattr(file_owner, "pk", None), (file_owner, {}))[1][invoice.pk] = None
        for job_owner, pks in waiting.values():
            job_enqueue_many(
                "invoices.process_invoice",
                [{"invoice_id": pk} for pk in pks],
                owner=job_owner,
                priority=_process_priority(source),
            )
    return invoices


def invoice_process(
    *, invoice: Invoice, force: bool = False, actor: Actor | None = None, progress=None, deadline: float | None = None
) -> Invoice:
    """OCR (scans and photos only), extract and validate. Idempotent: running it again replaces what it wrote.

    An approved, rejected or exported invoice is extracted again only with
    `force` (checked when the job was triggered): its decision is dropped, and
    that is audited. `progress(done, total, message)` reports OCR pages ("OCR page
    2 of 5"); `deadline` (time.monotonic()) is when the job's time runs out, so
    OCR stops before it does.
    """
    if invoice.status in DECIDED_STATUSES:
        if not force:
            raise InvoiceNotAllowed(_decided_message(invoice))
        audit_record(
            actor=actor or Actor.system(),
            action="invoice.decision_dropped",
            target=invoice,
            details={"previous_status": invoice.status},
        )
    with default_storage.open(invoice.original.name, "rb") as handle:
        content = handle.read()
    try:
        scan = document_ocr(content=content, progress=progress, deadline=deadline)
        extracted = extract_scanned(scan) if scan.pdf else extract(content)
    except InvalidInvoice as exc:
        return _mark_failed(invoice, str(exc))
    apply_word_confidence(extracted, scan)
    extracted.warnings = [*scan.warnings, *extracted.warnings] + ([scan.reason] if scan.reason else [])
    _store_searchable_pdf(invoice, scan.pdf)
    try:
        with transaction.atomic():
            _apply_ocr(invoice, scan)
            invoice_store_extraction(invoice, extracted)
    except (DataError, ArithmeticError, ValueError) as exc:  # e.g. an amount with 30 digits
        invoice.refresh_from_db()
        return _mark_failed(invoice, f"The file was read, but its data cannot be stored: {exc}")
    with transaction.atomic():
        _replay_corrections(invoice)
    return invoice_validate(invoice=invoice)


def _replay_corrections(invoice: Invoice) -> None:
    """Apply the invoice's active corrections, oldest first, over a fresh extraction.

    A correction whose line the new extraction no longer has is skipped and said in
    the extraction warnings (the row stays, so the history is complete).
    """
    rows = list(invoice.corrections.filter(discarded_at__isnull=True).order_by("created_at", "pk"))
    if not rows:
        return
    lines = {line.position: line for line in invoice.lines.all()}
    skipped = []
    for row in rows:
        try:
            change = fields.change_from_row(row.field_path, row.new_value)
            if change.position is not None and change.action != "add_line" and change.position not in lines:
                raise KeyError(change.position)
            fields.apply_change(invoice, change, lines)
        except (KeyError, ValueError, ArithmeticError) as exc:
            logger.info("Correction %s of invoice %s not replayed: %s", row.pk, invoice.pk, exc)
            skipped.append(row.field_path)
    if skipped:
        invoice.extraction_warnings = [
            *invoice.extraction_warnings,
            f"Corrections not re-applied (the new extraction has no such line): {', '.join(skipped)}",
        ]
    invoice.save()


def searchable_pdf_path(sha256: str) -> str:
    return f"derived/{sha256[:2]}/{sha256[2:4]}/{sha256}-ocr.pdf"


def _store_searchable_pdf(invoice: Invoice, pdf: bytes | None) -> None:
    """Write (or remove) the OCR result beside the original; the original itself is never written again."""
    name = searchable_pdf_path(invoice.sha256)
    if default_storage.exists(name):  # a previous run's result (other languages, other OCR settings)
        default_storage.delete(name)
    if pdf is None:
        invoice.searchable_pdf = ""
        return
    saved = default_storage.save(name, ContentFile(pdf))
    invoice.searchable_pdf = saved


def _apply_ocr(invoice: Invoice, scan: OcrOutcome) -> None:
    invoice.ocr_status = scan.status
    invoice.ocr_pages = scan.pages_ocred
    mean = scan.mean_confidence
    invoice.ocr_confidence = round(mean, 3) if mean is not None else None


def _mark_failed(invoice: Invoice, message: str) -> Invoice:
    with transaction.atomic():
        invoice.lines.all().delete()
        invoice.issues.all().delete()
        invoice.status = InvoiceStatus.FAILED
        invoice.error = message
        invoice.issue_count = 0
        invoice.save(update_fields=["status", "error", "issue_count", "updated_at"])
        _emit("invoice.failed", invoice)
    return invoice


def _emit(event: str, invoice: Invoice) -> None:
    """Tell the event subscriptions (webhooks) about an invoice, once the transaction commits."""
    event_publish(event=event, subject=invoice, payload={"invoice": invoice_as_dict(invoice)})


def invoice_store_extraction(invoice: Invoice, data: ExtractedInvoice) -> None:
    """Store an extraction on the invoice (saved, or new) and replace its lines: status
    extracted, texts cut to their columns, the values as read kept for the review desk."""
    for name in EXTRACTED_FIELDS:
        value = getattr(data, name)
        field = Invoice._meta.get_field(name)
        if isinstance(field, models.CharField):
            value = (value or "")[: field.max_length]
        setattr(invoice, name, value)
    invoice.format = data.format
    invoice.type = InvoiceType.CREDIT_NOTE if data.type == "credit_note" else InvoiceType.INVOICE
    invoice.vat_breakdown = [
        {
            "category": row.category,
            "rate": _text(row.rate),
            "taxable_amount": _text(row.taxable_amount),
            "tax_amount": _text(row.tax_amount),
            "exemption_reason": row.exemption_reason,
            "exemption_reason_code": row.exemption_reason_code,
        }
        for row in data.vat_breakdown
    ]
    invoice.confidence = data.confidence
    invoice.extraction_warnings = data.warnings
    invoice.error = ""
    invoice.status = InvoiceStatus.EXTRACTED
    invoice.extracted_at = timezone.now()
    invoice.save()
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                position=position,
                line_id=line.line_id[:100],
                name=line.name[:500],
                quantity=line.quantity,
                unit_code=line.unit_code[:10],
                net_price=line.net_price,
                line_amount=cast(Decimal, line.line_amount),
                vat_category=line.vat_category[:5],
                vat_rate=line.vat_rate,
            )
            for position, line in enumerate(data.lines, start=1)
        ]
    )
    # Read back from the database so amounts carry the stored precision ("12.00", not "12").
    invoice.refresh_from_db()
    invoice.extracted_values = fields.field_values(invoice, list(invoice.lines.all()))
    invoice.save(update_fields=["extracted_values"])


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def invoice_validate(*, invoice: Invoice) -> Invoice:
    """Run the validation rules; leave the invoice validated or needs_review."""
    if invoice.status in (InvoiceStatus.FAILED, InvoiceStatus.DUPLICATE, InvoiceStatus.RECEIVED):
        raise InvoiceNotAllowed(f"Invoice {invoice.pk} is {invoice.status}; extract it first.")
    with transaction.atomic():
        if not invoice.vendor_confirmed:  # a vendor a person linked stays linked
            invoice.vendor = match_vendor(invoice)
        findings = validate(invoice)
        invoice.issues.all().delete()
        ValidationIssue.objects.bulk_create(
            [
                ValidationIssue(invoice=invoice, code=f.code, severity=f.severity, message=f.message[:2000])
                for f in findings
            ]
        )
        has_errors = any(f.severity == Severity.ERROR for f in findings)
        before = invoice.status
        if invoice.status not in (InvoiceStatus.APPROVED, InvoiceStatus.REJECTED, InvoiceStatus.EXPORTED):
            invoice.status = InvoiceStatus.NEEDS_REVIEW if has_errors else InvoiceStatus.VALIDATED
        invoice.validated_at = timezone.now()
        invoice.issue_count = len(findings)
        invoice.save(update_fields=["vendor", "status", "validated_at", "issue_count", "updated_at"])
        if invoice.status == InvoiceStatus.NEEDS_REVIEW and before != InvoiceStatus.NEEDS_REVIEW:
            _emit("invoice.needs_review", invoice)
    return invoice


def invoice_reprocess_check(*, user, invoice: Invoice, force: bool = False) -> None:
    """Refuse a re-extraction that is not allowed now (used before any job is written).

    A decided invoice (approved, rejected, exported) needs `force`, and forcing
    needs the permission to decide invoices, because it drops the decision.
    """
    if invoice.status == InvoiceStatus.DUPLICATE:
        raise InvoiceNotAllowed("A duplicate file is not processed; open the first copy instead.")
    if invoice.status in DECIDED_STATUSES:
        if not force:
            raise InvoiceNotAllowed(_decided_message(invoice))
        require_permission(user, "invoices.approve_invoice")


def _decided_message(invoice: Invoice) -> str:
    return (
        f"Invoice {invoice.pk} is {invoice.get_status_display().lower()}: extracting it again would drop "
        f"that decision. Reprocess with force=true (needs the permission to approve invoices) to do it anyway."
    )


def invoice_reprocess(
    *, invoice: Invoice, actor: Actor, reason: str = "", force: bool = False, discard_corrections: bool = False
):
    """Extract and validate again, as a job (audited).

    The invoice's corrections are re-applied over the new extraction, unless
    `discard_corrections`: then they are marked discarded now (kept in the history).
    """
    require_permission(actor.user, "invoices.reprocess_invoice")
    invoice_reprocess_check(user=actor.user, invoice=invoice, force=force)
    with transaction.atomic():
        discarded = 0
        if discard_corrections:
            discarded = invoice.corrections.filter(discarded_at__isnull=True).update(discarded_at=timezone.now())
        job = job_enqueue(
            "invoices.process_invoice",
            {"invoice_id": invoice.pk, "force": force},
            owner=actor.user,
            subject=invoice,
            priority=2,
            source=actor.source,
        )
        audit_record(
            actor=actor,
            action="invoice.reprocess",
            job=job,
            target=invoice,
            reason=reason,
            details={
                "force": force,
                "previous_status": invoice.status,
                "discard_corrections": discard_corrections,
                "corrections_discarded": discarded,
            },
        )
    return job


def invoice_revalidate(*, invoice: Invoice, actor: Actor, reason: str = ""):
    """Run the rules again (after a rule or vendor change), as a job (audited)."""
    require_permission(actor.user, "invoices.reprocess_invoice")
    with transaction.atomic():
        job = job_enqueue(
            "invoices.validate_invoice",
            {"invoice_id": invoice.pk},
            owner=actor.user,
            subject=invoice,
            priority=2,
            source=actor.source,
        )
        audit_record(actor=actor, action="invoice.revalidate", job=job, target=invoice, reason=reason)
    return job


DECIDABLE = (InvoiceStatus.VALIDATED, InvoiceStatus.NEEDS_REVIEW, InvoiceStatus.APPROVED, InvoiceStatus.REJECTED)


def invoice_decide(*, invoice: Invoice, approve: bool, actor: Actor, reason: str = "") -> Invoice:
    """Approve or reject an invoice (audited). Rejecting needs a reason."""
    require_permission(actor.user, "invoices.approve_invoice")
    if invoice.status not in DECIDABLE:
        raise InvoiceNotAllowed(
            f"An invoice that is {invoice.get_status_display().lower()} cannot be "
            f"{'approved' if approve else 'rejected'}."
        )
    if not approve and not reason.strip():
        raise InvoiceNotAllowed("Say why the invoice is rejected.")
    details = {}
    if approve:
        details = _check_approval_policy(invoice, actor)
    with transaction.atomic():
        invoice.status = InvoiceStatus.APPROVED if approve else InvoiceStatus.REJECTED
        invoice.decided_by = actor.user if getattr(actor.user, "pk", None) else None
        invoice.decided_at = timezone.now()
        invoice.decision_reason = reason
        invoice.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "updated_at"])
        audit_record(
            actor=actor,
            action="invoice.approve" if approve else "invoice.reject",
            target=invoice,
            reason=reason,
            details=details,
        )
        _emit("invoice.approved" if approve else "invoice.rejected", invoice)
    return invoice


def _check_approval_policy(invoice: Invoice, actor: Actor) -> dict:
    """Over the approval threshold: the approver needs invoices.approve_above_threshold and must not be
    the person who made the invoice's last correction (four eyes). Returns what the audit row records."""
    need = invoice_approval_need(invoice=invoice)
    if need is None:
        return {}
    user = actor.user
    if user is not None and not user.has_perm("invoices.approve_above_threshold"):
        raise PermissionDenied(
            f"{need.message} Approving it needs the permission 'Can approve invoices above the approval threshold'."
        )
    last = invoice.corrections.filter(discarded_at__isnull=True).order_by("-created_at", "-pk").first()
    if user is not None and last is not None and last.user_id == user.pk:
        raise PermissionDenied(
            f"{need.message} You made the last correction of this invoice "
            f"({last.field_path}), so another person must approve it (four-eyes rule)."
        )
    return {"over_threshold": True, "limit": str(need.limit), "currency": need.currency}


CORRECTABLE = (InvoiceStatus.NEEDS_REVIEW, InvoiceStatus.VALIDATED)


def invoice_correct(
    *, invoice: Invoice, changes: dict, actor: Actor, reason: str = "", revalidate: bool = False
) -> list[InvoiceCorrection]:
    """Correct fields of an invoice: one InvoiceCorrection row per changed field (audited).

    `changes` maps field paths (invoices/corrections.py) to new values. Every value
    is checked first; one wrong value raises InvalidCorrection and nothing is saved.
    Values equal to the current ones are skipped. With `revalidate`, every rule runs
    on the corrected values at once (the status follows the findings).
    """
    require_permission(actor.user, "invoices.add_invoicecorrection")
    if invoice.status not in CORRECTABLE:
        raise InvoiceNotAllowed(
            f"An invoice that is {invoice.get_status_display().lower()} cannot be corrected; "
            "only invoices that need review or are validated."
        )
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise InvalidCorrection({"reason": ["At most 500 characters."]})
    user = actor.user if getattr(actor.user, "pk", None) else None
    given = invoice
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        parsed = fields.parse_changes(invoice, changes)
        lines = {line.position: line for line in invoice.lines.all()}
        extracted = invoice.extracted_values or {}
        first_seen = _first_extracted(invoice)
        parsed = _number_new_lines(invoice, parsed, lines)
        rows = []
        for change in parsed:
            previous = fields.current_value(invoice, change, lines)
            if change.action == "set" and previous == change.value:
                continue
            added_at = fields.apply_change(invoice, change, lines)
            path = f"lines[{added_at}]" if added_at is not None else change.path
            if change.action == "set":
                original = extracted.get(path) if extracted else first_seen.get(path, previous)
            elif change.action == "remove_line":
                original = (
                    _extracted_line(extracted, change.position) if change.position is not None else None
                ) or previous
            else:
                original = None
            rows.append(
                InvoiceCorrection(
                    invoice=invoice,
                    field_path=path,
                    extracted_value=original,
                    previous_value=previous,
                    new_value=change.value,
                    user=user,
                    user_label=getattr(user, "username", "") or "system",
                    reason=reason,
                )
            )
        if not rows:
            return []
        invoice.save()
        InvoiceCorrection.objects.bulk_create(rows)
        audit_record(
            actor=actor,
            action="invoice.correct",
            target=invoice,
            reason=reason,
            details={
                "changes": {row.field_path: {"from": row.previous_value, "to": row.new_value} for row in rows},
                "revalidate": revalidate,
            },
        )
    if revalidate:
        invoice_validate(invoice=invoice)
    given.refresh_from_db()  # the caller's object shows the corrected invoice
    return rows


def _number_new_lines(invoice: Invoice, parsed: list, lines: dict) -> list:
    """Give added lines positions never used on this invoice, so a path names one line for ever."""
    import dataclasses
    import re

    used = set(lines)
    paths = [*(invoice.extracted_values or {}), *invoice.corrections.values_list("field_path", flat=True)]
    used.update(int(found) for path in paths for found in re.findall(r"^lines\[(\d+)\]", path))
    next_position = max([0, *used]) + 1
    numbered = []
    for change in parsed:
        if change.action == "add_line":
            change = dataclasses.replace(change, position=next_position)
            next_position += 1
        numbered.append(change)
    return numbered


def _first_extracted(invoice: Invoice) -> dict:
    """For invoices extracted before extracted_values existed: the value before the first correction."""
    if invoice.extracted_values:
        return {}
    seen: dict = {}
    for path, value in invoice.corrections.order_by("created_at", "pk").values_list("field_path", "extracted_value"):
        seen.setdefault(path, value)
    return seen


def _extracted_line(extracted: dict, position: int) -> dict | None:
    prefix = f"lines[{position}]."
    line = {key[len(prefix) :]: value for key, value in extracted.items() if key.startswith(prefix)}
    return line or None


def invoice_assign(*, invoice: Invoice, assignee, actor: Actor, reason: str = "") -> Invoice:
    """Give an invoice of the review queue to a person (None: unassign), audited.

    The assignee must be able to see the invoice; assigning to someone else needs
    invoices.approve_invoice, taking it yourself needs only to see it.
    """
    user = actor.user
    if user is not None and (assignee is None or assignee.pk != user.pk):
        require_permission(user, "invoices.approve_invoice")
    if assignee is not None and (
        not assignee.is_active or not invoices_visible_to(assignee).filter(pk=invoice.pk).exists()
    ):
        raise InvoiceNotAllowed(f"{assignee.get_username()} cannot see this invoice, so it cannot be assigned to them.")
    with transaction.atomic():
        before = invoice.assigned_to
        invoice.assigned_to = assignee
        invoice.save(update_fields=["assigned_to", "updated_at"])
        audit_record(
            actor=actor,
            action="invoice.assign",
            target=invoice,
            reason=reason,
            details={"from": getattr(before, "username", None), "to": getattr(assignee, "username", None)},
        )
    return invoice


def invoice_link_vendor(*, invoice: Invoice, vendor: Vendor, actor: Actor, revalidate: bool = True) -> Invoice:
    """Link the invoice to a vendor of the master by hand (kept by later re-validation), audited.

    With `revalidate` the rules run again, so the vendor's rules (known, blocked,
    purchase order required, approval limit) apply at once.
    """
    require_permission(actor.user, "invoices.add_invoicecorrection")
    if invoice.status not in CORRECTABLE:
        raise InvoiceNotAllowed(f"An invoice that is {invoice.get_status_display().lower()} cannot be changed.")
    with transaction.atomic():
        before = invoice.vendor
        invoice.vendor = vendor
        invoice.vendor_confirmed = True
        invoice.save(update_fields=["vendor", "vendor_confirmed", "updated_at"])
        audit_record(
            actor=actor,
            action="invoice.link_vendor",
            target=invoice,
            details={"from": getattr(before, "pk", None), "to": vendor.pk, "vendor": vendor.name},
        )
    if revalidate:
        invoice_validate(invoice=invoice)
    return invoice


def vendor_create_from_invoice(*, invoice: Invoice, actor: Actor, revalidate: bool = True) -> Vendor:
    """Create a vendor from the invoice's seller data (name, VAT id, IBAN, country) and link it, audited.

    Refused when a vendor with that VAT id exists already (link that one instead), or when
    vendor_save refuses the seller's VAT id or IBAN (audited as vendor.create, with the invoice
    named in the reason).
    """
    require_permission(actor.user, "invoices.add_vendor")
    invoice.refresh_from_db()  # the seller data as saved, not as the caller last read it
    if invoice.status not in CORRECTABLE:
        raise InvoiceNotAllowed(f"An invoice that is {invoice.get_status_display().lower()} cannot be changed.")
    name = " ".join(invoice.seller_name.split())
    if not name:
        raise InvoiceNotAllowed("The invoice names no seller; correct the seller name first.")
    vat_id = normalise_vat_id(invoice.seller_vat_id)
    if vat_id:
        existing = Vendor.objects.filter(vat_id=vat_id).first()
        if existing is not None:
            raise InvoiceNotAllowed(
                f"The vendor {existing.name} (id {existing.pk}) has the VAT id {vat_id} already; "
                "link the invoice to it instead."
            )
    with transaction.atomic():
        try:
            # The vendor master's own save: the seller's VAT id and IBAN are checked as an
            # operator's entry would be, so a misread one is corrected on the invoice first.
            vendor = vendor_save(
                actor=actor,
                reason=f"Created from invoice {invoice.pk} on the review desk.",
                name=name[:200],
                vat_id=vat_id[:40],
                iban=normalise_iban(invoice.payment_iban)[:40],
                country=invoice.seller_country.upper()[:2],
                notes=f"Created from invoice {invoice.pk} on the review desk.",
            )
        except Invalid as exc:
            seller_fields = {"vat_id": "seller_vat_id", "iban": "payment_iban", "country": "seller_country"}
            raise Invalid(
                f"The seller data cannot make a vendor ({exc}); correct it on the invoice first.",
                field_errors={seller_fields.get(field, field): errors for field, errors in exc.field_errors.items()},
            ) from None
        invoice_link_vendor(invoice=invoice, vendor=vendor, actor=actor, revalidate=False)
    if revalidate:
        invoice_validate(invoice=invoice)
    return vendor


# What an operator edits of a vendor (the admin form's fields).
VENDOR_FIELDS = ("name", "vat_id", "iban", "country", "status", "approval_limit", "requires_purchase_order", "notes")


def vendor_save(*, actor: Actor, vendor: Vendor | None = None, reason: str = "", **fields) -> Vendor:
    """Create or change a vendor of the master: VAT id and IBAN normalised and checked
    (Vendor.clean: the validation rules' own checks), the VAT id unique; Invalid says which
    field is wrong. Audited as vendor.create / vendor.change."""
    require_permission(actor.user, "invoices.change_vendor" if vendor else "invoices.add_vendor")
    return audited_save(
        vendor or Vendor(),
        actor=actor,
        action="vendor.change" if vendor else "vendor.create",
        fields=fields,
        allowed=VENDOR_FIELDS,
        reason=reason,
    )


VALIDATION_RULE_SETTING_FIELDS = ("enabled", "severity", "parameters")


def validation_rule_setting_save(*, actor: Actor, code: str, reason: str = "", **fields) -> ValidationRuleSetting:
    """Switch a validation rule on or off, set its severity or its parameters (a JSON object:
    ValidationRuleSetting.clean), audited as validation_rule.change. Only rules this version
    has (a missing row starts from the rule's defaults); the description is the rule's own."""
    require_permission(actor.user, "invoices.change_validationrulesetting")
    rule = RULES.get(code)
    if rule is None:
        raise Invalid(
            f"There is no validation rule {code!r} in this version.", field_errors={"code": ["Unknown rule."]}
        )
    setting = ValidationRuleSetting.objects.filter(code=code).first() or ValidationRuleSetting(
        code=code,
        severity=rule.default_severity,
        parameters=dict(rule.default_parameters),
        description=rule.description,
    )
    return audited_save(
        setting,
        actor=actor,
        action="validation_rule.change",
        fields=fields,
        allowed=VALIDATION_RULE_SETTING_FIELDS,
        reason=reason,
        details={"code": code},
    )


def exports_visible_to(user):
    """Staff see every export batch; others their own."""
    batches = ExportBatch.objects.all()
    if user.is_staff:
        return batches
    return batches.filter(owner=user)


def invoice_import_sync(*, content: bytes, filename: str, source: str = InvoiceSource.COMMAND, owner=None) -> Invoice:
    """The whole pipeline in this process, no broker (`import_invoices --sync`)."""
    invoice = invoice_ingest(content=content, filename=filename, source=source, owner=owner, process=False)
    if invoice.status == InvoiceStatus.RECEIVED:
        invoice = invoice_process(invoice=invoice)
    return invoice
