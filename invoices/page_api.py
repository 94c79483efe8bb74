"""GET /api/v1/invoices/{id}/pages/{n}.png: one page of an invoice's PDF as an image."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from invoices.documents.errors import DocumentUnreadable, PageOutOfRange
from invoices.documents.original import NotAPdf, OriginalMissing, invoice_page_image
from invoices.documents.pdf import MAX_DPI, MIN_DPI
from invoices.selectors import invoices_visible_to

DEFAULT_DPI = 150


class PageQuerySerializer(serializers.Serializer):
    dpi = serializers.IntegerField(min_value=MIN_DPI, max_value=MAX_DPI, default=DEFAULT_DPI, required=False)


class PageErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def page_image_response(png: bytes) -> HttpResponse:
    response = HttpResponse(png, content_type="image/png")
    # Private: the page is an invoice of the team; the URL carries no version, so keep it short.
    response["Cache-Control"] = "private, max-age=300"
    return response


class InvoicePageImageView(APIView):
    """One page of the invoice's PDF (or of the OCR's searchable copy) rendered as PNG."""

    permission_classes = [IsAuthenticated]
    throttle_classes = []  # the review page loads several pages at once; rendering is cached

    @extend_schema(
        operation_id="invoices_page_image",
        parameters=[OpenApiParameter("dpi", int, description=f"{MIN_DPI}-{MAX_DPI}, default {DEFAULT_DPI}")],
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The page as PNG."),
            400: OpenApiResponse(PageErrorSerializer, description="dpi out of range."),
            404: OpenApiResponse(
                PageErrorSerializer, description="No such invoice for you, not a PDF, or no such page."
            ),
            422: OpenApiResponse(PageErrorSerializer, description="The PDF cannot be rendered; detail says why."),
        },
    )
    def get(self, request, pk: int, page: int):
        if not request.user.has_perm("invoices.view_invoice"):
            raise PermissionDenied()
        query = PageQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        invoice = get_object_or_404(invoices_visible_to(request.user), pk=pk)
        try:
            png = invoice_page_image(invoice, page, query.validated_data["dpi"])
        except (OriginalMissing, NotAPdf, PageOutOfRange) as exc:
            raise NotFound(str(exc)) from exc
        except DocumentUnreadable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        return page_image_response(png)
