"""REST API: /api/v1/invoices/ and /api/v1/exports/."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from core.api import HasPermission, actor_for
from core.errors import Conflict, Invalid
from core.filters import UTCIsoDateTimeFilter
from core.parsers import DepthLimitedJSONParser
from invoices.corrections import FIELD_SPECS, LINE_FIELDS
from invoices.exports import export_create
from invoices.models import (
    EXPORTABLE_STATUSES,
    ExportBatch,
    ExportFormat,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    OcrStatus,
    Vendor,
)
from invoices.money import money_or_none
from invoices.representation import invoice_as_dict, visible_duplicate_of
from invoices.selectors import (
    ReviewFilters,
    invoice_corrections,
    invoices_visible_to,
    review_queue,
    review_queue_counts,
)
from invoices.services import (
    exports_visible_to,
    invoice_assign,
    invoice_correct,
    invoice_decide,
    invoice_ingest,
    invoice_link_vendor,
    invoice_reprocess,
    vendor_create_from_invoice,
)
from jobs.api import JobSerializer, job_started


class IssueSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["error", "warning"])
    message = serializers.CharField()


class InvoiceSerializer(serializers.Serializer):
    """The contract's invoice object (same field names as `import_invoices --json`).
    The fields are declared for the OpenAPI schema; the values come from invoice_as_dict."""

    file = serializers.CharField()
    invoice_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=InvoiceStatus.choices)
    format = serializers.CharField(allow_null=True)
    invoice_number = serializers.CharField(allow_null=True)
    type = serializers.ChoiceField(choices=["invoice", "credit_note"])
    issue_date = serializers.DateField(allow_null=True)
    due_date = serializers.DateField(allow_null=True)
    currency = serializers.CharField(allow_null=True)
    seller_name = serializers.CharField(allow_null=True)
    seller_vat_id = serializers.CharField(allow_null=True)
    buyer_name = serializers.CharField(allow_null=True)
    total_net = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    tax_total = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    total_gross = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    amount_due = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    line_count = serializers.IntegerField()
    issues = IssueSerializer(many=True)
    error = serializers.CharField(allow_null=True)

    def to_representation(self, invoice: Invoice) -> dict:
        return invoice_as_dict(invoice, viewer=_viewer(self.context))


def _viewer(context: dict):
    request = context.get("request")
    return request.user if request is not None else None


def _money_field(**kwargs):
    return serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True, **kwargs)


class InvoiceLineSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="Stable: `lines[<position>].<field>` in corrections.")
    line_id = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, allow_null=True)
    unit_code = serializers.CharField(allow_blank=True)
    net_price = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True)
    line_amount = _money_field()
    vat_category = serializers.CharField(allow_blank=True)
    vat_rate = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True)


class VatBreakdownSerializer(serializers.Serializer):
    category = serializers.CharField(allow_blank=True, allow_null=True)
    rate = serializers.CharField(allow_null=True, help_text="Decimal string.")
    taxable_amount = serializers.CharField(allow_null=True, help_text="Decimal string.")
    tax_amount = serializers.CharField(allow_null=True, help_text="Decimal string.")
    exemption_reason = serializers.CharField(allow_blank=True, allow_null=True)
    exemption_reason_code = serializers.CharField(allow_blank=True, allow_null=True)


class VendorRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class OcrSerializer(serializers.Serializer):
    """What OCR did for a scan or photo (status "" when the file had text of its own)."""

    status = serializers.ChoiceField(choices=OcrStatus.choices)
    pages = serializers.IntegerField(help_text="Pages read by OCR.")
    confidence = serializers.FloatField(allow_null=True, help_text="Mean OCR word confidence, 0 to 1.")
    searchable_pdf_url = serializers.CharField(
        allow_null=True, help_text="The original with the OCR text layer (a derived file), when there is one."
    )


class InvoiceDetailSerializer(InvoiceSerializer):
    """The contract's fields plus lines, VAT breakdown, provenance and review state."""

    type_code = serializers.CharField(allow_null=True)
    seller_country = serializers.CharField(allow_null=True)
    buyer_vat_id = serializers.CharField(allow_null=True)
    buyer_country = serializers.CharField(allow_null=True)
    buyer_reference = serializers.CharField(allow_null=True)
    purchase_order_reference = serializers.CharField(allow_null=True)
    payment_iban = serializers.CharField(allow_null=True)
    line_total = _money_field()
    allowance_total = _money_field()
    charge_total = _money_field()
    prepaid_amount = _money_field()
    rounding_amount = _money_field()
    vendor = VendorRefSerializer(allow_null=True)
    vendor_confirmed = serializers.BooleanField(help_text="A person linked the vendor; re-validation keeps it.")
    vat_breakdown = VatBreakdownSerializer(many=True)
    confidence = serializers.DictField(
        child=serializers.FloatField(), help_text="Per field, how sure the PDF text reader is (0-1)."
    )
    warnings = serializers.ListField(child=serializers.CharField())
    lines = InvoiceLineSerializer(many=True)
    source = serializers.ChoiceField(choices=InvoiceSource.choices)
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    duplicate_of = serializers.IntegerField(allow_null=True, help_text="Only when you may see that invoice.")
    created_at = serializers.DateTimeField()
    assigned_to = UserRefSerializer(allow_null=True)
    corrected_fields = serializers.ListField(
        child=serializers.CharField(), help_text="Field paths a person corrected (active corrections)."
    )
    decided_by = serializers.CharField(allow_null=True, help_text="User name of who approved or rejected.")
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField(allow_null=True)
    ocr = OcrSerializer()

    def to_representation(self, invoice: Invoice) -> dict:
        viewer = _viewer(self.context)
        data = invoice_as_dict(invoice, viewer=viewer)
        data.update(
            {
                "type_code": invoice.type_code or None,
                "seller_country": invoice.seller_country or None,
                "buyer_country": invoice.buyer_country or None,
                "rounding_amount": money_or_none(invoice.rounding_amount),
                "buyer_vat_id": invoice.buyer_vat_id or None,
                "buyer_reference": invoice.buyer_reference or None,
                "purchase_order_reference": invoice.purchase_order_reference or None,
                "payment_iban": invoice.payment_iban or None,
                "line_total": money_or_none(invoice.line_total),
                "allowance_total": money_or_none(invoice.allowance_total),
                "charge_total": money_or_none(invoice.charge_total),
                "prepaid_amount": money_or_none(invoice.prepaid_amount),
                "vendor": {"id": invoice.vendor_id, "name": invoice.vendor.name} if invoice.vendor_id else None,
                "vendor_confirmed": invoice.vendor_confirmed,
                "vat_breakdown": invoice.vat_breakdown,
                "confidence": invoice.confidence,
                "warnings": invoice.extraction_warnings,
                "lines": [
                    {
                        "position": line.position,
                        "line_id": line.line_id,
                        "name": line.name,
                        "quantity": None if line.quantity is None else str(line.quantity),
                        "unit_code": line.unit_code,
                        "net_price": None if line.net_price is None else str(line.net_price),
                        "line_amount": money_or_none(line.line_amount),
                        "vat_category": line.vat_category,
                        "vat_rate": None if line.vat_rate is None else str(line.vat_rate),
                    }
                    for line in invoice.lines.all()
                ],
                "source": invoice.source,
                "sha256": invoice.sha256,
                "size": invoice.size,
                "duplicate_of": visible_duplicate_of(invoice, viewer),
                "created_at": invoice.created_at.isoformat(),
                "assigned_to": (
                    {"id": invoice.assigned_to_id, "username": invoice.assigned_to.get_username()}
                    if invoice.assigned_to_id
                    else None
                ),
                "corrected_fields": sorted(
                    set(invoice.corrections.filter(discarded_at__isnull=True).values_list("field_path", flat=True))
                ),
                "decided_by": invoice.decided_by.get_username() if invoice.decided_by_id else None,
                "decided_at": invoice.decided_at.isoformat() if invoice.decided_at else None,
                "decision_reason": invoice.decision_reason or None,
                "ocr": {
                    "status": invoice.ocr_status,
                    "pages": invoice.ocr_pages,
                    "confidence": invoice.ocr_confidence,
                    "searchable_pdf_url": (
                        f"/api/v1/invoices/{invoice.pk}/searchable-pdf/" if invoice.searchable_pdf else None
                    ),
                },
            }
        )
        return data


def _correction_field(spec) -> serializers.Field:
    help_text = {
        "amount": 'Decimal string with at most 2 decimals, e.g. "1234.50".',
        "date": "ISO date YYYY-MM-DD.",
        "currency": "ISO 4217 code, e.g. EUR.",
        "country": "ISO 3166 alpha-2 code, e.g. DE.",
        "choice": f"One of {', '.join(spec.choices)}.",
        "code": "Spaces are removed, upper-cased.",
        "text": "",
    }.get(spec.kind, "")
    return serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=f"{spec.label}. {help_text} Empty or null clears it.".strip(),
    )


class _CorrectionRequestBase(serializers.Serializer):
    changes = serializers.DictField(
        required=False,
        help_text=(
            "More corrections by field path: `lines[2].quantity` (one of " + ", ".join(LINE_FIELDS) + "), "
            "`lines[+]` with an object of line fields to add a line, `lines[3]` with null to remove line 3."
        ),
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    revalidate = serializers.BooleanField(
        required=False, default=False, help_text="Run every validation rule on the corrected values now."
    )


# One optional field per correctable header field (the whitelist in invoices/corrections.py).
InvoiceCorrectionRequestSerializer = type(
    "InvoiceCorrectionRequestSerializer",
    (_CorrectionRequestBase,),
    {
        "__doc__": "PATCH body: the fields to correct, plus `changes` for line paths. Unknown fields are errors.",
        **{name: _correction_field(spec) for name, spec in FIELD_SPECS.items()},
    },
)


class InvoiceCorrectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    field_path = serializers.CharField()
    extracted_value = serializers.JSONField(allow_null=True, help_text="What extraction read.")
    previous_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)
    user = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_blank=True, max_length=500)
    created_at = serializers.DateTimeField()
    discarded_at = serializers.DateTimeField(allow_null=True, help_text="Set when a reprocess discarded it.")

    def to_representation(self, row) -> dict:
        return {
            "id": row.pk,
            "field_path": row.field_path,
            "extracted_value": row.extracted_value,
            "previous_value": row.previous_value,
            "new_value": row.new_value,
            "user": row.user.get_username() if row.user_id else (row.user_label or None),
            "reason": row.reason,
            "created_at": row.created_at.isoformat(),
            "discarded_at": row.discarded_at.isoformat() if row.discarded_at else None,
        }


class ReviewQueueItemSerializer(InvoiceSerializer):
    awaiting_approval = serializers.BooleanField(help_text="Validated, but above the approval threshold.")
    due_soon = serializers.BooleanField(help_text="Payment due within REVIEW_DUE_SOON_DAYS days, or overdue.")
    assigned_to = serializers.CharField(allow_null=True, help_text="User name.")
    created_at = serializers.DateTimeField()

    def to_representation(self, invoice: Invoice) -> dict:
        data = invoice_as_dict(invoice, viewer=_viewer(self.context))
        data.update(
            {
                "awaiting_approval": invoice.awaiting_approval,
                "due_soon": invoice.due_soon,
                "assigned_to": invoice.assigned_to.get_username() if invoice.assigned_to_id else None,
                "created_at": invoice.created_at.isoformat(),
            }
        )
        return data


class ReviewQueueCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    needs_review = serializers.IntegerField()
    awaiting_approval = serializers.IntegerField()
    mine = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    due_soon = serializers.IntegerField()


class ReviewQueuePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    counts = ReviewQueueCountsSerializer()
    results = ReviewQueueItemSerializer(many=True)


class AssignSerializer(serializers.Serializer):
    username = serializers.CharField(
        required=False, allow_null=True, help_text=("Who takes it; omit to take it yourself, null to unassign.")
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class VendorLinkSerializer(serializers.Serializer):
    vendor_id = serializers.IntegerField(required=False, min_value=1, help_text="Link to this vendor.")
    create_from_seller = serializers.BooleanField(
        required=False,
        default=False,
        help_text=("Create the vendor from the invoice's seller (name, VAT id, IBAN, country) and link it."),
    )

    def validate(self, data):
        if bool(data.get("vendor_id")) == bool(data.get("create_from_seller")):
            raise serializers.ValidationError("Send either vendor_id or create_from_seller: true.")
        return data


class ErrorSerializer(serializers.Serializer):
    """The one error shape (core.api.exception_handler); field errors, if any, under their field names."""

    detail = serializers.CharField()
    code = serializers.CharField()


# The same shape with field errors beside detail and code (core.errors.Invalid): field name → messages.
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "required": ["detail", "code"],
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text="One or more invoice files (multipart field `files`, repeatable).",
    )


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ReprocessSerializer(DecisionSerializer):
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Extract an approved, rejected or exported invoice again, dropping its decision "
            "(needs the permission to approve invoices)."
        ),
    )
    discard_corrections = serializers.BooleanField(
        required=False,
        default=False,
        help_text=("Drop the invoice's corrections (kept in the history as discarded) instead of re-applying them."),
    )


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    invoice_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text="Omit to export every validated or approved invoice you can see.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ExportSerializer(serializers.ModelSerializer):
    invoice_count = serializers.IntegerField(source="items.count", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportBatch
        fields = ["id", "format", "status", "invoice_count", "created_at", "finished_at", "error", "download_url"]

    def get_download_url(self, batch: ExportBatch) -> str | None:
        if batch.status != ExportBatch.Status.DONE or batch.file_deleted_at:
            return None
        return f"/api/v1/exports/{batch.pk}/download/"


class ExportCreatedSerializer(serializers.Serializer):
    export = ExportSerializer()
    job = JobSerializer()


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=InvoiceStatus.choices)
    format = django_filters.CharFilter()
    vendor = django_filters.NumberFilter(field_name="vendor_id")
    invoice_number = django_filters.CharFilter()
    seller_vat_id = django_filters.CharFilter()
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Invoice
        fields = []


def searchable_pdf_response(invoice: Invoice) -> FileResponse:
    """The PDF that OCR made from a scan (the original with a text layer), shown inline."""
    name = invoice.searchable_pdf.name if invoice.searchable_pdf else ""
    if not name or not default_storage.exists(name):
        raise Http404("This invoice has no searchable PDF: it was not read by OCR.")
    stem = invoice.original_filename.rsplit(".", 1)[0] or "invoice"
    return FileResponse(default_storage.open(name, "rb"), filename=f"{stem}-ocr.pdf", content_type="application/pdf")


def original_response(invoice: Invoice) -> FileResponse:
    """The original bytes, as an attachment under the sender's file name."""
    if not default_storage.exists(invoice.original.name):
        raise Http404("The stored file is missing.")
    return FileResponse(
        default_storage.open(invoice.original.name, "rb"),
        as_attachment=True,
        filename=invoice.original_filename,
        content_type="application/octet-stream",
    )


class InvoiceSchema(AutoSchema):
    """Only `list` is paginated; the upload and the correction history answer a plain array."""

    def _get_paginator(self):
        if getattr(self.view, "action", None) != "list":
            return None
        return super()._get_paginator()


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invoices you own (staff: all): upload, list, detail, reprocess, approve, reject, download."""

    permission_classes = [IsAuthenticated, HasPermission]
    required_perms = {
        "list": "invoices.view_invoice",
        "retrieve": "invoices.view_invoice",
        "create": "invoices.add_invoice",
        "original": "invoices.view_invoice",
        "partial_update": "invoices.add_invoicecorrection",
        "corrections": "invoices.view_invoice",
        "review_queue": "invoices.view_invoice",
        "assign": "invoices.view_invoice",
        "vendor": "invoices.add_invoicecorrection",
        "searchable_pdf": "invoices.view_invoice",
    }
    filterset_class = InvoiceFilter
    http_method_names = ["get", "post", "patch", "head", "options"]
    schema = InvoiceSchema()
    parser_classes = [MultiPartParser, FormParser, DepthLimitedJSONParser]
    throttle_scope = "trigger"

    queryset = Invoice.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Invoice.objects.none()
        invoices = invoices_visible_to(self.request.user).prefetch_related("issues")
        if self.action not in ("list", "create"):
            invoices = invoices.select_related("assigned_to", "decided_by").prefetch_related("lines")
        return invoices.order_by("-created_at", "-pk")

    def get_serializer_class(self):
        return InvoiceDetailSerializer if self.action == "retrieve" else InvoiceSerializer

    def get_throttles(self):
        if self.action in ("create", "reprocess"):
            return [*super().get_throttles(), ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={
            202: OpenApiResponse(
                InvoiceSerializer(many=True), description="One invoice object per file (status received, or duplicate)."
            )
        },
    )
    def create(self, request):
        """Upload one or many invoice files; each is stored and queued for processing."""
        files = request.FILES.getlist("files") or request.FILES.getlist("file")
        if not files:
            raise Invalid(field_errors={"files": ["Send one or more files in the multipart field `files`."]})
        created = [
            invoice_ingest(
                content=upload.read(),
                filename=upload.name,
                source=InvoiceSource.UPLOAD,
                owner=request.user,
                source_ref="api",
            )
            for upload in files
        ]
        return Response(
            [invoice_as_dict(invoice, viewer=request.user) for invoice in created], status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        request=ReprocessSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(description="Duplicate file, or a decided invoice without force."),
        },
    )
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Extract and validate again (a job). A decided invoice needs `force`."""
        body = ReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = invoice_reprocess(
            invoice=self.get_object(),
            actor=actor_for(request),
            reason=body.validated_data["reason"],
            force=body.validated_data["force"],
            discard_corrections=body.validated_data["discard_corrections"],
        )
        # already being processed (maybe by someone else): a conflict carrying that job
        return job_started(job, request, self.get_serializer_context())

    @extend_schema(request=DecisionSerializer, responses={200: InvoiceDetailSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, approve=True)

    @extend_schema(request=DecisionSerializer, responses={200: InvoiceDetailSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(request, approve=False)

    def _decide(self, request, *, approve: bool) -> Response:
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invoice = invoice_decide(
            invoice=self.get_object(), approve=approve, actor=actor_for(request), reason=body.validated_data["reason"]
        )
        return self._detail(invoice)

    def _detail(self, invoice: Invoice) -> Response:
        fresh = self.get_queryset().get(pk=invoice.pk)  # issues and lines as they are now
        return Response(InvoiceDetailSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        request=InvoiceCorrectionRequestSerializer,
        responses={
            200: InvoiceDetailSerializer,
            400: OpenApiResponse(description="Field errors by field path; nothing was saved."),
            403: OpenApiResponse(ErrorSerializer, description="No permission to correct invoices."),
            409: OpenApiResponse(ErrorSerializer, description="The invoice cannot be corrected in its state."),
        },
    )
    def partial_update(self, request, pk=None):
        """Correct fields (each change is stored as a correction row); optionally re-validate at once."""
        invoice = self.get_object()
        if not isinstance(request.data, dict):
            raise Invalid("Send a JSON object of fields to correct.")
        body = InvoiceCorrectionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        changes = {name: data[name] for name in FIELD_SPECS if name in data}
        changes.update(data.get("changes") or {})
        # Fields we do not know are refused by the whitelist (the service names what may be corrected).
        changes.update({key: value for key, value in request.data.items() if key not in body.fields})
        invoice_correct(
            invoice=invoice,
            changes=changes,
            actor=actor_for(request),
            reason=data["reason"],
            revalidate=data["revalidate"],
        )
        return self._detail(invoice)

    @extend_schema(responses={200: InvoiceCorrectionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def corrections(self, request, pk=None):
        """The invoice's correction history, newest first (discarded ones too, marked)."""
        rows = invoice_corrections(invoice=self.get_object())
        return Response(InvoiceCorrectionSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("mine", bool, description="Only invoices assigned to you."),
            OpenApiParameter("unassigned", bool, description="Only invoices assigned to nobody."),
            OpenApiParameter("assigned_to", int, description="Only invoices assigned to this user id."),
            OpenApiParameter("vendor", int, description="Vendor id."),
            OpenApiParameter("rule", str, description="Only invoices with an issue of this rule code."),
            OpenApiParameter("amount_min", str, description="Total with VAT at least (decimal)."),
            OpenApiParameter("amount_max", str, description="Total with VAT at most (decimal)."),
            OpenApiParameter("due_before", OpenApiTypes.DATE, description="Due on or before this date."),
            OpenApiParameter("page", int),
        ],
        responses={200: ReviewQueuePageSerializer, 400: OpenApiResponse(ErrorSerializer)},
    )
    @action(detail=False, methods=["get"], url_path="review-queue", filterset_class=None)
    def review_queue(self, request):
        """What waits for a person, oldest first: needs review, and validated invoices above the approval
        threshold; with counts (for the same filters)."""
        try:
            filters = ReviewFilters.from_query(request.query_params)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        queue = review_queue(user=request.user, filters=filters).prefetch_related("issues", "lines")
        page = self.paginate_queryset(queue)
        context = self.get_serializer_context()
        return Response(
            {
                "count": self.paginator.page.paginator.count,
                "next": self.paginator.get_next_link(),
                "previous": self.paginator.get_previous_link(),
                "counts": review_queue_counts(user=request.user, filters=filters),
                "results": ReviewQueueItemSerializer(page, many=True, context=context).data,
            }
        )

    @extend_schema(
        request=AssignSerializer,
        responses={
            200: InvoiceDetailSerializer,
            400: OpenApiResponse(description="Unknown user."),
            403: OpenApiResponse(ErrorSerializer),
            409: OpenApiResponse(ErrorSerializer),
        },
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Assign the invoice to a user (default: yourself; null: nobody), audited."""
        invoice = self.get_object()
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "username" not in body.validated_data:
            assignee = request.user
        elif body.validated_data["username"] is None:
            assignee = None
        else:
            assignee = get_user_model().objects.filter(username=body.validated_data["username"]).first()
            if assignee is None:
                raise Invalid(field_errors={"username": ["No such user."]})
        invoice_assign(
            invoice=invoice, assignee=assignee, actor=actor_for(request), reason=body.validated_data["reason"]
        )
        return self._detail(invoice)

    @extend_schema(
        request=VendorLinkSerializer,
        responses={
            200: InvoiceDetailSerializer,
            400: OpenApiResponse(
                FIELD_ERRORS_SCHEMA,
                description="Unknown vendor, bad body, or seller data the vendor master refuses "
                "(the field errors name the invoice fields to correct: seller_vat_id, payment_iban).",
            ),
            403: OpenApiResponse(ErrorSerializer),
            409: OpenApiResponse(ErrorSerializer),
        },
    )
    @action(detail=True, methods=["post"])
    def vendor(self, request, pk=None):
        """Link the invoice to a vendor of the master, or create the vendor from the seller data; then
        re-validate, so the vendor's rules apply."""
        invoice = self.get_object()
        body = VendorLinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data.get("create_from_seller"):
            vendor_create_from_invoice(invoice=invoice, actor=actor_for(request))
        else:
            vendor = Vendor.objects.filter(pk=body.validated_data["vendor_id"]).first()
            if vendor is None:
                raise Invalid(field_errors={"vendor_id": ["No such vendor."]})
            invoice_link_vendor(invoice=invoice, vendor=vendor, actor=actor_for(request))
        return self._detail(invoice)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The original file.")})
    @action(detail=True, methods=["get"])
    def original(self, request, pk=None):
        """Download the file exactly as it was received."""
        return original_response(self.get_object())

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(
                description="The searchable PDF made by OCR from a scan or photo (404 when the invoice has none)."
            )
        }
    )
    @action(detail=True, methods=["get"], url_path="searchable-pdf")
    def searchable_pdf(self, request, pk=None):
        """The original with the text layer OCR added (derived file; the original is never changed)."""
        return searchable_pdf_response(self.get_object())


class ExportViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Export batches: create (a job), status, download."""

    serializer_class = ExportSerializer
    permission_classes = [IsAuthenticated, HasPermission]
    required_perms = {
        "create": "invoices.export_invoice",
        "list": "invoices.view_exportbatch",
        "retrieve": "invoices.view_exportbatch",
        "download": "invoices.view_exportbatch",
    }
    throttle_scope = "trigger"

    queryset = ExportBatch.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExportBatch.objects.none()
        return exports_visible_to(self.request.user).prefetch_related("items").order_by("-created_at")

    def get_throttles(self):
        if self.action == "create":
            return [*super().get_throttles(), ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=ExportCreateSerializer,
        responses={202: ExportCreatedSerializer, 400: OpenApiResponse(description="Nothing to export.")},
    )
    def create(self, request):
        """Export a selection (or every validated invoice you can see) as CSV, JSON or UBL."""
        body = ExportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invoices = invoices_visible_to(request.user)
        if "invoice_ids" in body.validated_data:  # a chosen selection may be exported again
            invoices = invoices.filter(pk__in=body.validated_data["invoice_ids"])
        else:  # "everything validated": what has not been exported yet
            invoices = invoices.filter(status__in=EXPORTABLE_STATUSES)
        batch, job = export_create(
            format=body.validated_data["format"],
            actor=actor_for(request),
            invoices=invoices,
            reason=body.validated_data["reason"],
        )
        context = self.get_serializer_context()
        return Response(
            {"export": ExportSerializer(batch, context=context).data, "job": JobSerializer(job, context=context).data},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The export file.")})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        batch = self.get_object()
        if batch.status != ExportBatch.Status.DONE or batch.file_deleted_at or not batch.file:
            raise Conflict(f"The export is {batch.status}; no file to download.")
        return FileResponse(
            default_storage.open(batch.file.name, "rb"), as_attachment=True, filename=batch.file.name.rsplit("/", 1)[-1]
        )
