"""Export batches: a selection of invoices written to one file for the ERP."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from core.actors import Actor, require_permission
from core.audit import audit_record
from core.errors import Invalid
from events.services import event_publish, event_wanted
from invoices.export import WRITERS
from invoices.models import EXPORTABLE_STATUSES, ExportBatch, ExportItem, Invoice, InvoiceStatus
from invoices.representation import invoice_as_dict
from jobs.services import job_enqueue


class NothingToExport(Invalid):
    """The selection holds no invoice that can be exported."""


def export_create(*, format: str, actor: Actor, invoices=None, reason: str = ""):
    """Create a batch of the given invoices (default: every validated or approved
    invoice not exported yet) and queue the job that writes it. Invoices in the
    selection that were exported before are exported again; others that are not
    validated or approved are left out. Returns (batch, job)."""
    require_permission(actor.user, "invoices.export_invoice")
    if invoices is None:
        invoices = Invoice.objects.filter(status__in=EXPORTABLE_STATUSES)
    selected = list(
        invoices.filter(status__in=[*EXPORTABLE_STATUSES, InvoiceStatus.EXPORTED]).values_list("pk", flat=True)
    )
    if not selected:
        raise NothingToExport("No validated or approved invoice in the selection.")
    with transaction.atomic():
        owner = actor.user if getattr(actor.user, "pk", None) else None
        batch = ExportBatch.objects.create(format=format, owner=owner)
        ExportItem.objects.bulk_create([ExportItem(batch=batch, invoice_id=pk) for pk in selected])
        job = job_enqueue(
            "invoices.export_invoices", {"export_id": batch.pk}, owner=owner, subject=batch, source=actor.source
        )
        audit_record(
            actor=actor,
            action="export.create",
            job=job,
            target=batch,
            reason=reason,
            details={"format": format, "invoices": len(selected)},
        )
    return batch, job


def export_run(*, batch: ExportBatch, progress=None) -> dict:
    """Write the batch's file and mark its invoices exported.

    Idempotent: the file name is fixed per batch, so a re-run overwrites the
    same file instead of adding one, and invoices are marked once.
    """
    writer = WRITERS[batch.format]  # the one registry of export formats (invoices.export)
    invoices = list(
        Invoice.objects.filter(export_items__batch=batch).order_by("pk").prefetch_related("lines", "issues")
    )
    if progress:
        progress(0, len(invoices), f"Writing {len(invoices)} invoices as {batch.format}")
    content = writer.write(invoices)
    name = f"exports/export-{batch.pk}.{writer.extension}"
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(content))
    now = timezone.now()
    with transaction.atomic():
        newly = [invoice for invoice in invoices if invoice.status in EXPORTABLE_STATUSES]
        Invoice.objects.filter(pk__in=[i.pk for i in invoices], status__in=EXPORTABLE_STATUSES).update(
            status=InvoiceStatus.EXPORTED, exported_at=now, updated_at=now
        )
        _announce_exported(newly, now)
        ExportBatch.objects.filter(pk=batch.pk).update(
            status=ExportBatch.Status.DONE, file=saved, finished_at=now, error=""
        )
    if progress:
        progress(len(invoices), len(invoices), "done")
    return {"export_id": batch.pk, "invoices": len(invoices), "file": saved, "bytes": len(content)}


def _announce_exported(invoices: list[Invoice], now) -> None:
    """The `invoice.exported` event for each invoice this batch exported for the first time."""
    if not invoices or not event_wanted("invoice.exported"):
        return
    for invoice in invoices:
        invoice.status, invoice.exported_at = InvoiceStatus.EXPORTED, now
        event_publish(event="invoice.exported", subject=invoice, payload={"invoice": invoice_as_dict(invoice)})


def exports_cleanup(*, older_than: timedelta) -> dict:
    """Delete export files older than `older_than`; the batch rows stay as history."""
    cutoff = timezone.now() - older_than
    deleted = 0
    for batch in ExportBatch.objects.filter(finished_at__lt=cutoff, file_deleted_at__isnull=True).exclude(file=""):
        if default_storage.exists(batch.file.name):
            default_storage.delete(batch.file.name)
        ExportBatch.objects.filter(pk=batch.pk).update(file_deleted_at=timezone.now())
        deleted += 1
    return {"files_deleted": deleted}
