"""Admin for invoices, vendors, rules and exports. Actions call the services."""

from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin import REFUSALS, SavedByService, admin_actor, apply_to_each
from invoices.api import original_response, searchable_pdf_response
from invoices.corrections import TOTAL_FIELDS
from invoices.exports import export_create
from invoices.models import (
    ExportBatch,
    ExportFormat,
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    ValidationIssue,
    ValidationRuleSetting,
    Vendor,
)
from invoices.review_page.views import page_image_view, review_queue_view, review_view
from invoices.selectors import invoices_visible_to
from invoices.services import (
    invoice_decide,
    invoice_ingest,
    invoice_reprocess,
    invoice_revalidate,
    validation_rule_setting_save,
    vendor_save,
)
from jobs.admin import STATUS_COLOURS, EstimatedCountPaginator
from jobs.models import Job

INVOICE_COLOURS = {
    InvoiceStatus.RECEIVED: "#6c757d",
    InvoiceStatus.EXTRACTED: "#0d6efd",
    InvoiceStatus.VALIDATED: "#198754",
    InvoiceStatus.NEEDS_REVIEW: "#fd7e14",
    InvoiceStatus.FAILED: "#dc3545",
    InvoiceStatus.DUPLICATE: "#adb5bd",
    InvoiceStatus.APPROVED: "#20c997",
    InvoiceStatus.REJECTED: "#6f42c1",
    InvoiceStatus.EXPORTED: "#212529",
}


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = [
        "position",
        "line_id",
        "name",
        "quantity",
        "unit_code",
        "net_price",
        "line_amount",
        "vat_category",
        "vat_rate",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ValidationIssueInline(admin.TabularInline):
    model = ValidationIssue
    extra = 0
    can_delete = False
    fields = ["severity", "code", "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)]


class InvoiceUploadForm(forms.Form):
    files = MultipleFileField(help_text="One or more invoice files (XML, PDF, CSV).")


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status_badge",
        "vendor_or_seller",
        "invoice_number",
        "issue_date",
        "total_gross",
        "currency",
        "issue_count",
        "format",
        "source",
        "created_at",
        "review_link",
    ]
    list_filter = ["status", "format", "source", "type", "created_at"]
    list_select_related = ["vendor"]
    search_fields = ["=invoice_number", "seller_name", "=seller_vat_id", "original_filename", "=sha256"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    ordering = ["-created_at"]
    inlines = [InvoiceLineInline, ValidationIssueInline]
    actions = [
        "reprocess_selected",
        "revalidate_selected",
        "approve_selected",
        "export_csv",
        "export_json",
        "export_ubl",
    ]
    change_form_template = "admin/invoices/invoice/change_form.html"
    change_list_template = "admin/invoices/invoice/change_list.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "status_badge",
                    "error",
                    "original_link",
                    "searchable_pdf_link",
                    "source",
                    "source_ref",
                    "owner",
                    "duplicate_of",
                    "decision",
                ]
            },
        ),
        (
            "Invoice (EN 16931)",
            {
                "fields": [
                    "format",
                    "profile",
                    "invoice_number",
                    "type",
                    "type_code",
                    "issue_date",
                    "due_date",
                    "currency",
                    "seller_name",
                    "seller_vat_id",
                    "seller_country",
                    "vendor",
                    "buyer_name",
                    "buyer_vat_id",
                    "buyer_country",
                    "buyer_reference",
                    "purchase_order_reference",
                    "payment_iban",
                ]
            },
        ),
        (
            "Totals",
            {"fields": [*TOTAL_FIELDS, "vat_breakdown"]},
        ),
        (
            "Extraction",
            {
                "fields": [
                    "confidence",
                    "extraction_warnings",
                    "ocr_status",
                    "ocr_pages",
                    "ocr_confidence",
                    "sha256",
                    "size",
                    "created_at",
                    "extracted_at",
                    "validated_at",
                    "exported_at",
                ]
            },
        ),
        ("Jobs", {"fields": ["job_history"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def get_queryset(self, request):
        # The one visibility rule (invoices.selectors), as in the API and the commands.
        return invoices_visible_to(request.user).order_by(*self.ordering)

    def has_add_permission(self, request):
        return False  # invoices come in through "Upload invoices", never typed in

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, invoice: Invoice) -> str:
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 6px;border-radius:3px">{}</span>',
            INVOICE_COLOURS.get(invoice.status, "#333"),
            invoice.get_status_display(),
        )

    @admin.display(description="vendor / seller")
    def vendor_or_seller(self, invoice: Invoice) -> str:
        return invoice.vendor.name if invoice.vendor_id else invoice.seller_name or "—"

    @admin.display(description="review")
    def review_link(self, invoice: Invoice) -> str:
        return format_html('<a href="{}">Review</a>', reverse("admin:invoices_invoice_review", args=[invoice.pk]))

    @admin.display(description="original file")
    def original_link(self, invoice: Invoice) -> str:
        url = reverse("admin:invoices_invoice_original", args=[invoice.pk])
        return format_html('<a href="{}">{}</a> ({} bytes)', url, invoice.original_filename, invoice.size)

    @admin.display(description="searchable PDF (OCR)")
    def searchable_pdf_link(self, invoice: Invoice) -> str:
        if not invoice.searchable_pdf:
            return "—"
        url = reverse("admin:invoices_invoice_searchable_pdf", args=[invoice.pk])
        return format_html('<a href="{}">searchable PDF</a> ({} page(s) read by OCR)', url, invoice.ocr_pages)

    @admin.display(description="decision")
    def decision(self, invoice: Invoice) -> str:
        if not invoice.decided_at:
            return "—"
        return (
            f"{invoice.get_status_display()} by {invoice.decided_by} at {invoice.decided_at:%Y-%m-%d %H:%M}: "
            f"{invoice.decision_reason}"
        )

    @admin.display(description="job history")
    def job_history(self, invoice: Invoice) -> str:
        jobs = Job.objects.filter(subject_type="invoices.invoice", subject_id=str(invoice.pk)).order_by("-created_at")[
            :20
        ]
        if not jobs:
            return "—"
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td style="color:{}">{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:jobs_job_change", args=[job.pk]),
                    str(job.pk)[:8],
                    job.kind,
                    STATUS_COLOURS.get(job.status, "#333"),
                    job.status,
                    job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    job.error[:120],
                )
                for job in jobs
            ),
        )
        return format_html(
            "<table><tr><th>job</th><th>kind</th><th>status</th><th>created</th><th>error</th></tr>{}</table>", rows
        )

    # -- pages -------------------------------------------------------------------
    def get_urls(self):
        own = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="invoices_invoice_upload"),
            path(
                "<int:invoice_id>/original/",
                self.admin_site.admin_view(self.original_view),
                name="invoices_invoice_original",
            ),
            path(
                "<int:invoice_id>/searchable-pdf/",
                self.admin_site.admin_view(self.searchable_pdf_view),
                name="invoices_invoice_searchable_pdf",
            ),
            path(
                "<int:invoice_id>/decide/", self.admin_site.admin_view(self.decide_view), name="invoices_invoice_decide"
            ),
            path(
                "review-queue/",
                self.admin_site.admin_view(partial(review_queue_view, self)),
                name="invoices_invoice_review_queue",
            ),
            path(
                "<int:invoice_id>/review/",
                self.admin_site.admin_view(partial(review_view, self)),
                name="invoices_invoice_review",
            ),
            path(
                "<int:invoice_id>/pages/<int:page>.png",
                self.admin_site.admin_view(partial(page_image_view, self)),
                name="invoices_invoice_page_image",
            ),
        ]
        return own + super().get_urls()

    def upload_view(self, request):
        if not request.user.has_perm("invoices.add_invoice"):
            raise PermissionDenied
        form = InvoiceUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            invoices = [
                invoice_ingest(
                    content=upload.read(),
                    filename=upload.name,
                    source=InvoiceSource.ADMIN,
                    owner=request.user,
                    source_ref="admin upload",
                )
                for upload in form.cleaned_data["files"]
            ]
            duplicates = sum(1 for invoice in invoices if invoice.status == InvoiceStatus.DUPLICATE)
            self.message_user(
                request,
                f"{len(invoices)} file(s) received, {duplicates} duplicate(s); processing runs in the background.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:invoices_invoice_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload invoices",
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/invoices/invoice/upload.html", context)

    def original_view(self, request, invoice_id):
        invoice = get_object_or_404(self.get_queryset(request), pk=invoice_id)
        return original_response(invoice)

    def searchable_pdf_view(self, request, invoice_id):
        invoice = get_object_or_404(self.get_queryset(request), pk=invoice_id)
        return searchable_pdf_response(invoice)

    def decide_view(self, request, invoice_id):
        invoice = get_object_or_404(self.get_queryset(request), pk=invoice_id)
        if request.method == "POST":
            approve = request.POST.get("decision") == "approve"
            try:
                invoice_decide(
                    invoice=invoice, approve=approve, actor=admin_actor(request), reason=request.POST.get("reason", "")
                )
                self.message_user(request, f"Invoice {'approved' if approve else 'rejected'}.", messages.SUCCESS)
            except REFUSALS as exc:
                self.message_user(request, str(exc), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:invoices_invoice_change", args=[invoice_id]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_decide": request.user.has_perm("invoices.approve_invoice")}
        return super().change_view(request, object_id, form_url, extra_context)

    # -- bulk actions ------------------------------------------------------------
    @admin.action(description="Reprocess (extract and validate again)", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset):
        apply_to_each(
            self,
            request,
            queryset,
            lambda invoice, actor: invoice_reprocess(invoice=invoice, actor=actor, reason="admin action"),
            verb="Queued reprocessing of",
            noun="invoice(s)",
        )

    @admin.action(description="Validate again", permissions=["reprocess"])
    def revalidate_selected(self, request, queryset):
        apply_to_each(
            self,
            request,
            queryset,
            lambda invoice, actor: invoice_revalidate(invoice=invoice, actor=actor, reason="admin action"),
            verb="Queued validation of",
            noun="invoice(s)",
        )

    @admin.action(description="Approve selected", permissions=["approve"])
    def approve_selected(self, request, queryset):
        apply_to_each(
            self,
            request,
            queryset,
            lambda invoice, actor: invoice_decide(invoice=invoice, approve=True, actor=actor, reason="admin action"),
            verb="Approved",
            noun="invoice(s)",
        )

    def _export(self, request, queryset, format):
        try:
            batch, _job = export_create(format=format, actor=admin_actor(request), invoices=queryset)
        except REFUSALS as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        self.message_user(request, f"Export {batch.pk} of {batch.items.count()} invoice(s) queued.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:invoices_exportbatch_change", args=[batch.pk]))

    @admin.action(description="Export selected as CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        return self._export(request, queryset, ExportFormat.CSV)

    @admin.action(description="Export selected as JSON", permissions=["export"])
    def export_json(self, request, queryset):
        return self._export(request, queryset, ExportFormat.JSON)

    @admin.action(description="Export selected as UBL", permissions=["export"])
    def export_ubl(self, request, queryset):
        return self._export(request, queryset, ExportFormat.UBL)

    def has_reprocess_permission(self, request):
        return request.user.has_perm("invoices.reprocess_invoice")

    def has_approve_permission(self, request):
        return request.user.has_perm("invoices.approve_invoice")

    def has_export_permission(self, request):
        return request.user.has_perm("invoices.export_invoice")


@admin.register(Vendor)
class VendorAdmin(SavedByService, admin.ModelAdmin):
    # Saved through invoices.services.vendor_save: VAT id and IBAN checked, audited.
    save_service, save_target = vendor_save, "vendor"
    list_display = ["name", "vat_id", "country", "status", "approval_limit", "requires_purchase_order"]
    list_filter = ["status", "country", "requires_purchase_order"]
    search_fields = ["name", "=vat_id"]


@admin.register(ValidationRuleSetting)
class ValidationRuleSettingAdmin(admin.ModelAdmin):
    list_display = ["code", "enabled", "severity", "parameters", "description"]
    list_editable = ["enabled", "severity"]
    readonly_fields = ["code", "description"]

    def has_add_permission(self, request):
        return False  # one row per rule in code, created with its defaults

    def save_model(self, request, obj, form, change):
        # Through the service, audited like an API change or a configuration restore.
        fields = {
            name: form.cleaned_data[name] for name in form.changed_data if name in ("enabled", "severity", "parameters")
        }
        validation_rule_setting_save(actor=admin_actor(request), code=obj.code, **fields)


@admin.register(ExportBatch)
class ExportBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "format", "status", "invoice_count", "owner", "created_at", "finished_at", "download"]
    list_filter = ["format", "status"]
    readonly_fields = [
        "format",
        "status",
        "owner",
        "invoice_count",
        "download",
        "error",
        "created_at",
        "finished_at",
        "file_deleted_at",
    ]
    exclude = ["file"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="invoices")
    def invoice_count(self, batch: ExportBatch) -> int:
        return batch.items.count()

    @admin.display(description="file")
    def download(self, batch: ExportBatch) -> str:
        if batch.status != ExportBatch.Status.DONE or batch.file_deleted_at or not batch.file:
            return "—"
        return format_html('<a href="{}">download</a>', reverse("admin:invoices_exportbatch_download", args=[batch.pk]))

    def get_urls(self):
        return [
            path(
                "<int:batch_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="invoices_exportbatch_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, batch_id):
        batch = get_object_or_404(ExportBatch, pk=batch_id)
        if not batch.file or batch.file_deleted_at or not default_storage.exists(batch.file.name):
            raise Http404("The export file is not available.")
        return FileResponse(
            default_storage.open(batch.file.name, "rb"), as_attachment=True, filename=batch.file.name.rsplit("/", 1)[-1]
        )
