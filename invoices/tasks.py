"""Invoice job kinds. Thin: load ids, call a service."""

from __future__ import annotations

import time
from datetime import timedelta

from rest_framework import serializers

from core.actors import Actor
from invoices.exports import export_run, exports_cleanup
from invoices.inbox import inbox_scan
from invoices.models import ExportBatch, Invoice
from invoices.selectors import invoices_visible_to
from invoices.services import (
    exports_visible_to,
    invoice_process,
    invoice_reprocess_check,
    invoice_validate,
)
from jobs.kinds import JobSubject
from jobs.registry import job_kind


class InvoiceParams(serializers.Serializer):
    invoice_id = serializers.IntegerField(min_value=1)


class ProcessParams(InvoiceParams):
    force = serializers.BooleanField(
        default=False,
        help_text="Extract an approved, rejected or exported invoice "
        "again, dropping its decision (needs the permission to approve invoices).",
    )


class ExportParams(serializers.Serializer):
    export_id = serializers.IntegerField(min_value=1)


class CleanupParams(serializers.Serializer):
    older_than_hours = serializers.IntegerField(min_value=1, default=168, help_text="Keep files this long.")


INVOICE = JobSubject(param="invoice_id", noun="invoice", everything=Invoice.objects.all, visible_to=invoices_visible_to)
EXPORT = JobSubject(param="export_id", noun="export", everything=ExportBatch.objects.all, visible_to=exports_visible_to)


def _may_process(*, user, subject: Invoice, params: dict) -> None:
    invoice_reprocess_check(user=user, invoice=subject, force=params.get("force", False))


@job_kind(
    "invoices.process_invoice",
    label="Extract and validate an invoice",
    queue="invoices",
    priority=4,
    params=ProcessParams,
    permission="invoices.reprocess_invoice",
    subject=INVOICE,
    authorize=_may_process,
    unique_key="invoice:{invoice_id}:process",
    soft_time_limit=300,
    time_limit=360,
)
def process_invoice(job, *, invoice_id: int, force: bool = False) -> dict:
    # OCR stops before a page it could not finish within the job's soft time limit.
    deadline = time.monotonic() + job.kind.soft_time_limit
    invoice = invoice_process(
        invoice=Invoice.objects.get(pk=invoice_id),
        force=force,
        actor=Actor(user=job.job.owner, source=job.job.source),
        progress=job.progress,
        deadline=deadline,
    )
    return {
        "invoice_id": invoice.pk,
        "status": invoice.status,
        "format": invoice.format,
        "error": invoice.error,
        "ocr_pages": invoice.ocr_pages,
    }


@job_kind(
    "invoices.validate_invoice",
    label="Validate an invoice again",
    queue="invoices",
    priority=4,
    params=InvoiceParams,
    permission="invoices.reprocess_invoice",
    subject=INVOICE,
    unique_key="invoice:{invoice_id}:validate",
    soft_time_limit=60,
    time_limit=90,
)
def validate_invoice(job, *, invoice_id: int) -> dict:
    invoice = invoice_validate(invoice=Invoice.objects.get(pk=invoice_id))
    return {"invoice_id": invoice.pk, "status": invoice.status, "issues": invoice.issues.count()}


@job_kind(
    "invoices.export_invoices",
    label="Write an export batch",
    queue="exports",
    priority=4,
    params=ExportParams,
    permission="invoices.export_invoice",
    subject=EXPORT,
    user_triggerable=False,
    unique_key="export:{export_id}",
    soft_time_limit=600,
    time_limit=660,
)
def export_invoices(job, *, export_id: int) -> dict:
    return export_run(batch=ExportBatch.objects.get(pk=export_id), progress=job.progress)


@job_kind(
    "invoices.scan_inbox",
    label="Ingest files from the drop folder",
    queue="invoices",
    priority=6,
    permission="invoices.add_invoice",
    unique_key="invoices.scan_inbox",
    soft_time_limit=240,
    time_limit=300,
)
def scan_inbox(job) -> dict:
    return inbox_scan(progress=job.progress)


@job_kind(
    "invoices.cleanup_exports",
    label="Delete old export files",
    queue="maintenance",
    priority=8,
    params=CleanupParams,
    staff_only=True,
    unique_key="invoices.cleanup_exports",
)
def cleanup_exports(job, *, older_than_hours: int) -> dict:
    return exports_cleanup(older_than=timedelta(hours=older_than_hours))
