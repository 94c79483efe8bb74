"""Invoice business operations: ingest, process, decide, export.

The original bytes are always stored first (content-addressed by SHA-256),
then the Invoice row; nothing a supplier sent is lost, whatever its content.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, models, transaction
from django.utils import timezone

from invoices.extract import extract
from invoices.extract.base import ExtractedInvoice, InvalidInvoice
from invoices.models import (
    ExportBatch,
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    InvoiceType,
    Severity,
    ValidationIssue,
)
from jobs.audit import audit_record
from jobs.errors import JobNotAllowed
from jobs.services import Actor, job_enqueue, require_permission

logger = logging.getLogger(__name__)

EXTRACTED_FIELDS = (
    "invoice_number", "type_code", "issue_date", "due_date", "currency", "buyer_reference",
    "purchase_order_reference", "seller_name", "seller_vat_id", "seller_country", "buyer_name", "buyer_vat_id",
    "buyer_country", "payment_iban", "line_total", "allowance_total", "charge_total", "total_net", "tax_total",
    "total_gross", "prepaid_amount", "rounding_amount", "amount_due", "profile",
)


class InvoiceNotAllowed(JobNotAllowed):
    """The invoice cannot take this action in its current state (a conflict, 409).

    A JobNotAllowed, so a refusal raised while a job is being triggered for the
    invoice is answered like any other job conflict.
    """


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


def invoice_ingest(*, content: bytes, filename: str, source: str, owner=None, source_ref: str = "",
                   process: bool = True, once_per_source_ref: bool = False) -> Invoice:
    """Store a file and record it as an invoice; queue its processing on commit.

    The same bytes twice give a `duplicate` row linked to the first, not a
    second invoice. With `once_per_source_ref`, the same bytes from the same
    source_ref (an email attachment processed again after a crash) return the
    invoice made the first time. A file over INVOICE_MAX_FILE_BYTES is kept
    and marked failed with the reason.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    if once_per_source_ref and source_ref:
        again = Invoice.objects.filter(sha256=sha256, source_ref=source_ref[:300]).first()
        if again is not None:
            return again
    name = _store_original(content, sha256)
    fields = {"source": source, "source_ref": source_ref[:300], "owner": owner, "original": name,
              "original_filename": (filename or "unnamed")[-255:], "sha256": sha256, "size": len(content)}
    first = Invoice.objects.filter(sha256=sha256, duplicate_of__isnull=True).first()
    if first is None:
        try:
            with transaction.atomic():
                invoice = Invoice.objects.create(**fields)
        except IntegrityError:  # the same bytes arrived concurrently
            first = Invoice.objects.get(sha256=sha256, duplicate_of__isnull=True)
    if first is not None:
        return Invoice.objects.create(**fields, status=InvoiceStatus.DUPLICATE, duplicate_of=first,
                                      error=f"The same file was received before as invoice {first.pk}.")
    if len(content) > settings.INVOICE_MAX_FILE_BYTES:
        invoice.status = InvoiceStatus.FAILED
        invoice.error = (f"The file is {len(content) / 1_048_576:.1f} MiB; the limit is "
                         f"{settings.INVOICE_MAX_FILE_BYTES / 1_048_576:.1f} MiB. It was kept but not read.")
        invoice.save(update_fields=["status", "error", "updated_at"])
        return invoice
    if process:
        job_enqueue("invoices.process_invoice", {"invoice_id": invoice.pk}, owner=owner, subject=invoice,
                    priority=3 if source in (InvoiceSource.UPLOAD, InvoiceSource.ADMIN) else 5)
    return invoice


def invoice_process(*, invoice: Invoice, force: bool = False, actor: Actor | None = None) -> Invoice:
    """Extract and validate. Idempotent: running it again replaces what it wrote.

    An approved, rejected or exported invoice is extracted again only with
    `force` (checked when the job was triggered): its decision is dropped, and
    that is audited.
    """
    if invoice.status in DECIDED_STATUSES:
        if not force:
            raise InvoiceNotAllowed(_decided_message(invoice))
        audit_record(actor=actor or Actor.system(), action="invoice.decision_dropped", target=invoice,
                     details={"previous_status": invoice.status})
    with default_storage.open(invoice.original.name, "rb") as handle:
        content = handle.read()
    try:
        extracted = extract(content)
    except InvalidInvoice as exc:
        return _mark_failed(invoice, str(exc))
    try:
        with transaction.atomic():
            _apply_extraction(invoice, extracted)
    except (DataError, ArithmeticError, ValueError) as exc:  # e.g. an amount with 30 digits
        invoice.refresh_from_db()
        return _mark_failed(invoice, f"The file was read, but its data cannot be stored: {exc}")
    return invoice_validate(invoice=invoice)


def _mark_failed(invoice: Invoice, message: str) -> Invoice:
    with transaction.atomic():
        invoice.lines.all().delete()
        invoice.issues.all().delete()
        invoice.status = InvoiceStatus.FAILED
        invoice.error = message
        invoice.issue_count = 0
        invoice.save(update_fields=["status", "error", "issue_count", "updated_at"])
    return invoice


def _apply_extraction(invoice: Invoice, data: ExtractedInvoice) -> None:
    for name in EXTRACTED_FIELDS:
        value = getattr(data, name)
        field = Invoice._meta.get_field(name)
        if isinstance(field, models.CharField):
            value = (value or "")[: field.max_length]
        setattr(invoice, name, value)
    invoice.format = data.format
    invoice.type = InvoiceType.CREDIT_NOTE if data.type == "credit_note" else InvoiceType.INVOICE
    invoice.vat_breakdown = [
        {"category": row.category, "rate": _text(row.rate), "taxable_amount": _text(row.taxable_amount),
         "tax_amount": _text(row.tax_amount), "exemption_reason": row.exemption_reason,
         "exemption_reason_code": row.exemption_reason_code}
        for row in data.vat_breakdown
    ]
    invoice.confidence = data.confidence
    invoice.extraction_warnings = data.warnings
    invoice.error = ""
    invoice.status = InvoiceStatus.EXTRACTED
    invoice.extracted_at = timezone.now()
    invoice.save()
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, position=position, line_id=line.line_id[:100], name=line.name[:500],
                    quantity=line.quantity, unit_code=line.unit_code[:10], net_price=line.net_price,
                    line_amount=line.line_amount, vat_category=line.vat_category[:5], vat_rate=line.vat_rate)
        for position, line in enumerate(data.lines, start=1)
    ])


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def invoice_validate(*, invoice: Invoice) -> Invoice:
    """Run the validation rules; leave the invoice validated or needs_review."""
    from invoices.validation import match_vendor, validate

    if invoice.status in (InvoiceStatus.FAILED, InvoiceStatus.DUPLICATE, InvoiceStatus.RECEIVED):
        raise InvoiceNotAllowed(f"Invoice {invoice.pk} is {invoice.status}; extract it first.")
    with transaction.atomic():
        invoice.vendor = match_vendor(invoice)
        findings = validate(invoice)
        invoice.issues.all().delete()
        ValidationIssue.objects.bulk_create([
            ValidationIssue(invoice=invoice, code=f.code, severity=f.severity, message=f.message[:2000])
            for f in findings
        ])
        has_errors = any(f.severity == Severity.ERROR for f in findings)
        if invoice.status not in (InvoiceStatus.APPROVED, InvoiceStatus.REJECTED, InvoiceStatus.EXPORTED):
            invoice.status = InvoiceStatus.NEEDS_REVIEW if has_errors else InvoiceStatus.VALIDATED
        invoice.validated_at = timezone.now()
        invoice.issue_count = len(findings)
        invoice.save(update_fields=["vendor", "status", "validated_at", "issue_count", "updated_at"])
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
    return (f"Invoice {invoice.pk} is {invoice.get_status_display().lower()}: extracting it again would drop "
            f"that decision. Reprocess with force=true (needs the permission to approve invoices) to do it anyway.")


def invoice_reprocess(*, invoice: Invoice, actor: Actor, reason: str = "", force: bool = False):
    """Extract and validate again, as a job (audited)."""
    require_permission(actor.user, "invoices.reprocess_invoice")
    invoice_reprocess_check(user=actor.user, invoice=invoice, force=force)
    with transaction.atomic():
        job = job_enqueue("invoices.process_invoice", {"invoice_id": invoice.pk, "force": force},
                          owner=actor.user, subject=invoice, priority=2, source=actor.source)
        audit_record(actor=actor, action="invoice.reprocess", job=job, target=invoice, reason=reason,
                     details={"force": force, "previous_status": invoice.status})
    return job


def invoice_revalidate(*, invoice: Invoice, actor: Actor, reason: str = ""):
    """Run the rules again (after a rule or vendor change), as a job (audited)."""
    require_permission(actor.user, "invoices.reprocess_invoice")
    with transaction.atomic():
        job = job_enqueue("invoices.validate_invoice", {"invoice_id": invoice.pk}, owner=actor.user,
                          subject=invoice, priority=2, source=actor.source)
        audit_record(actor=actor, action="invoice.revalidate", job=job, target=invoice, reason=reason)
    return job


DECIDABLE = (InvoiceStatus.VALIDATED, InvoiceStatus.NEEDS_REVIEW, InvoiceStatus.APPROVED, InvoiceStatus.REJECTED)


def invoice_decide(*, invoice: Invoice, approve: bool, actor: Actor, reason: str = "") -> Invoice:
    """Approve or reject an invoice (audited). Rejecting needs a reason."""
    require_permission(actor.user, "invoices.approve_invoice")
    if invoice.status not in DECIDABLE:
        raise InvoiceNotAllowed(f"An invoice that is {invoice.get_status_display().lower()} cannot be "
                                f"{'approved' if approve else 'rejected'}.")
    if not approve and not reason.strip():
        raise InvoiceNotAllowed("Say why the invoice is rejected.")
    with transaction.atomic():
        invoice.status = InvoiceStatus.APPROVED if approve else InvoiceStatus.REJECTED
        invoice.decided_by = actor.user if getattr(actor.user, "pk", None) else None
        invoice.decided_at = timezone.now()
        invoice.decision_reason = reason
        invoice.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "updated_at"])
        audit_record(actor=actor, action="invoice.approve" if approve else "invoice.reject", target=invoice,
                     reason=reason)
    return invoice


def invoices_visible_to(user):
    """Staff see every invoice; others their own. Every door (admin, API, CLI, job triggers) asks this."""
    invoices = Invoice.objects.select_related("vendor", "owner")
    if user.is_staff:
        return invoices
    return invoices.filter(owner=user)


def exports_visible_to(user):
    """Staff see every export batch; others their own."""
    batches = ExportBatch.objects.all()
    if user.is_staff:
        return batches
    return batches.filter(owner=user)


def invoice_import_sync(*, content: bytes, filename: str, source: str = InvoiceSource.COMMAND,
                        owner=None) -> Invoice:
    """The whole pipeline in this process, no broker (`import_invoices --sync`)."""
    invoice = invoice_ingest(content=content, filename=filename, source=source, owner=owner, process=False)
    if invoice.status == InvoiceStatus.RECEIVED:
        invoice = invoice_process(invoice=invoice)
    return invoice
