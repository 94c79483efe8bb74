"""REST API: /api/v1/invoices/ and /api/v1/exports/."""

from __future__ import annotations

import django_filters
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from config.parsers import DepthLimitedJSONParser
from invoices.exports import NothingToExport, export_create
from invoices.models import EXPORTABLE_STATUSES, ExportBatch, ExportFormat, Invoice, InvoiceSource, InvoiceStatus
from invoices.representation import invoice_as_dict, money
from invoices.selectors import invoices_visible_to
from invoices.services import (
    InvoiceNotAllowed,
    exports_visible_to,
    invoice_decide,
    invoice_ingest,
    invoice_reprocess,
)
from jobs.api import JobSerializer, actor_for, job_as_seen_by


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
        return invoice_as_dict(invoice)


class InvoiceDetailSerializer(InvoiceSerializer):
    """The contract's fields plus lines, VAT breakdown and provenance."""

    lines = serializers.ListField(child=serializers.DictField())
    vat_breakdown = serializers.ListField(child=serializers.DictField())
    vendor = serializers.DictField(allow_null=True)
    source = serializers.CharField()
    sha256 = serializers.CharField()
    duplicate_of = serializers.IntegerField(allow_null=True)

    def to_representation(self, invoice: Invoice) -> dict:
        data = invoice_as_dict(invoice)
        data.update({
            "type_code": invoice.type_code or None,
            "buyer_vat_id": invoice.buyer_vat_id or None,
            "buyer_reference": invoice.buyer_reference or None,
            "purchase_order_reference": invoice.purchase_order_reference or None,
            "payment_iban": invoice.payment_iban or None,
            "line_total": money(invoice.line_total),
            "allowance_total": money(invoice.allowance_total),
            "charge_total": money(invoice.charge_total),
            "prepaid_amount": money(invoice.prepaid_amount),
            "vendor": {"id": invoice.vendor_id, "name": invoice.vendor.name} if invoice.vendor_id else None,
            "vat_breakdown": invoice.vat_breakdown,
            "confidence": invoice.confidence,
            "warnings": invoice.extraction_warnings,
            "lines": [
                {"position": line.position, "line_id": line.line_id, "name": line.name,
                 "quantity": None if line.quantity is None else str(line.quantity), "unit_code": line.unit_code,
                 "net_price": None if line.net_price is None else str(line.net_price),
                 "line_amount": money(line.line_amount), "vat_category": line.vat_category,
                 "vat_rate": None if line.vat_rate is None else str(line.vat_rate)}
                for line in invoice.lines.all()
            ],
            "source": invoice.source,
            "sha256": invoice.sha256,
            "size": invoice.size,
            "duplicate_of": invoice.duplicate_of_id,
            "created_at": invoice.created_at.isoformat(),
            "decision_reason": invoice.decision_reason or None,
        })
        return data


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False,
                                 help_text="One or more invoice files (multipart field `files`, repeatable).")


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReprocessSerializer(DecisionSerializer):
    force = serializers.BooleanField(required=False, default=False, help_text=(
        "Extract an approved, rejected or exported invoice again, dropping its decision "
        "(needs the permission to approve invoices)."))


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    invoice_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                        help_text="Omit to export every validated or approved invoice you can see.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


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


class HasPermission(BasePermission):
    """Per-action Django permissions: `required_perms = {"create": "invoices.add_invoice"}`."""

    def has_permission(self, request, view) -> bool:
        perm = getattr(view, "required_perms", {}).get(view.action)
        return perm is None or request.user.has_perm(perm)


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=InvoiceStatus.choices)
    format = django_filters.CharFilter()
    vendor = django_filters.NumberFilter(field_name="vendor_id")
    invoice_number = django_filters.CharFilter()
    seller_vat_id = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Invoice
        fields = []


def original_response(invoice: Invoice) -> FileResponse:
    """The original bytes, as an attachment under the sender's file name."""
    if not default_storage.exists(invoice.original.name):
        raise Http404("The stored file is missing.")
    return FileResponse(default_storage.open(invoice.original.name, "rb"), as_attachment=True,
                        filename=invoice.original_filename, content_type="application/octet-stream")


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Invoices you own (staff: all): upload, list, detail, reprocess, approve, reject, download."""

    permission_classes = [IsAuthenticated, HasPermission]
    required_perms = {"list": "invoices.view_invoice", "retrieve": "invoices.view_invoice",
                      "create": "invoices.add_invoice", "original": "invoices.view_invoice"}
    filterset_class = InvoiceFilter
    parser_classes = [MultiPartParser, FormParser, DepthLimitedJSONParser]
    throttle_scope = "trigger"

    queryset = Invoice.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Invoice.objects.none()
        invoices = invoices_visible_to(self.request.user).prefetch_related("issues")
        if self.action == "retrieve":
            invoices = invoices.prefetch_related("lines")
        return invoices.order_by("-created_at", "-pk")

    def get_serializer_class(self):
        return InvoiceDetailSerializer if self.action == "retrieve" else InvoiceSerializer

    def get_throttles(self):
        if self.action in ("create", "reprocess"):
            return [*super().get_throttles(), ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={202: OpenApiResponse(
        InvoiceSerializer(many=True), description="One invoice object per file (status received, or duplicate).")})
    def create(self, request):
        """Upload one or many invoice files; each is stored and queued for processing."""
        files = request.FILES.getlist("files") or request.FILES.getlist("file")
        if not files:
            return Response({"files": ["Send one or more files in the multipart field `files`."]},
                            status=status.HTTP_400_BAD_REQUEST)
        created = [invoice_ingest(content=upload.read(), filename=upload.name, source=InvoiceSource.UPLOAD,
                                  owner=request.user, source_ref="api") for upload in files]
        return Response([invoice_as_dict(invoice) for invoice in created], status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReprocessSerializer, responses={
        202: JobSerializer, 409: OpenApiResponse(description="Duplicate file, or a decided invoice without force.")})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Extract and validate again (a job). A decided invoice needs `force`."""
        body = ReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = invoice_reprocess(invoice=self.get_object(), actor=actor_for(request),
                                    reason=body.validated_data["reason"], force=body.validated_data["force"])
        except InvoiceNotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if job.deduplicated:  # already being processed: maybe by someone else
            return Response(job_as_seen_by(job, request, self.get_serializer_context()),
                            status=status.HTTP_409_CONFLICT)
        return Response(JobSerializer(job, context=self.get_serializer_context()).data,
                        status=status.HTTP_202_ACCEPTED)

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
        try:
            invoice = invoice_decide(invoice=self.get_object(), approve=approve, actor=actor_for(request),
                                     reason=body.validated_data["reason"])
        except InvoiceNotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(InvoiceDetailSerializer(invoice).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The original file.")})
    @action(detail=True, methods=["get"])
    def original(self, request, pk=None):
        """Download the file exactly as it was received."""
        return original_response(self.get_object())


class ExportViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Export batches: create (a job), status, download."""

    serializer_class = ExportSerializer
    permission_classes = [IsAuthenticated, HasPermission]
    required_perms = {"create": "invoices.export_invoice", "list": "invoices.view_exportbatch",
                      "retrieve": "invoices.view_exportbatch", "download": "invoices.view_exportbatch"}
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

    @extend_schema(request=ExportCreateSerializer, responses={202: OpenApiResponse(
        description='{"export": {...}, "job": {...}}'), 400: OpenApiResponse(description="Nothing to export.")})
    def create(self, request):
        """Export a selection (or every validated invoice you can see) as CSV, JSON or UBL."""
        body = ExportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invoices = invoices_visible_to(request.user)
        if "invoice_ids" in body.validated_data:  # a chosen selection may be exported again
            invoices = invoices.filter(pk__in=body.validated_data["invoice_ids"])
        else:  # "everything validated": what has not been exported yet
            invoices = invoices.filter(status__in=EXPORTABLE_STATUSES)
        try:
            batch, job = export_create(format=body.validated_data["format"], actor=actor_for(request),
                                       invoices=invoices, reason=body.validated_data["reason"])
        except NothingToExport as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        context = self.get_serializer_context()
        return Response({"export": ExportSerializer(batch, context=context).data,
                         "job": JobSerializer(job, context=context).data}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The export file.")})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        batch = self.get_object()
        if batch.status != ExportBatch.Status.DONE or batch.file_deleted_at or not batch.file:
            return Response({"detail": f"The export is {batch.status}; no file to download."},
                            status=status.HTTP_409_CONFLICT)
        return FileResponse(default_storage.open(batch.file.name, "rb"), as_attachment=True,
                            filename=batch.file.name.rsplit("/", 1)[-1])
