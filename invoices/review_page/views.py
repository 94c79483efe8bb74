"""Admin views of the review page and its page images. Thin: they read through
selectors, write through services, and render templates/admin/invoices/invoice/review.html."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from core.admin import REFUSALS, admin_actor
from invoices.corrections import InvalidCorrection
from invoices.documents.errors import DocumentUnreadable, PageOutOfRange
from invoices.documents.original import NotAPdf, OriginalMissing, invoice_original_view, invoice_page_image
from invoices.documents.pdf import MAX_DPI, MIN_DPI
from invoices.models import Invoice, ValidationRuleSetting, Vendor
from invoices.page_api import DEFAULT_DPI, page_image_response
from invoices.review_page.context import correction_rows, review_form
from invoices.review_page.form import posted_changes
from invoices.review_page.services import review_form_save
from invoices.selectors import (
    ReviewFilters,
    invoice_approval_need,
    invoice_corrections,
    invoices_visible_to,
    review_queue,
    review_queue_counts,
    review_queue_neighbours,
)
from invoices.services import (
    CORRECTABLE,
    DECIDABLE,
    invoice_assign,
    invoice_decide,
    invoice_link_vendor,
    vendor_create_from_invoice,
)

# Refusals a person can act on: shown as a message, never a server error.
ACTIONS = {"save", "revalidate", "approve", "reject", "assign_me", "unassign", "link_vendor", "create_vendor"}
QUEUE_KEYS = ("mine", "unassigned", "assigned_to", "vendor", "rule", "amount_min", "amount_max", "due_before")
VENDOR_CHOICES = 50


def _visible_invoice(request, invoice_id: int) -> Invoice:
    if not request.user.has_perm("invoices.view_invoice"):
        raise PermissionDenied
    invoices = invoices_visible_to(request.user).select_related("assigned_to").prefetch_related("issues", "lines")
    return get_object_or_404(invoices, pk=invoice_id)


def page_image_view(model_admin, request, invoice_id: int, page: int) -> HttpResponse:
    """One page of the invoice's PDF as PNG, for the review page's <img>."""
    invoice = _visible_invoice(request, invoice_id)
    try:
        dpi = int(request.GET.get("dpi", DEFAULT_DPI))
    except ValueError:
        dpi = 0
    if not MIN_DPI <= dpi <= MAX_DPI:
        return HttpResponse(f"dpi must be between {MIN_DPI} and {MAX_DPI}.", status=400, content_type="text/plain")
    try:
        return page_image_response(invoice_page_image(invoice, page, dpi))
    except (OriginalMissing, NotAPdf, PageOutOfRange) as exc:
        raise Http404(str(exc)) from exc
    except DocumentUnreadable as exc:
        return HttpResponse(str(exc), status=422, content_type="text/plain; charset=utf-8")


def _queue_query(request) -> str:
    """The queue filters the clerk came with, kept on every link of the page."""
    kept = {key: request.GET[key] for key in QUEUE_KEYS if request.GET.get(key)}
    return urlencode(kept)


def _review_url(invoice_id: int, query: str, **extra) -> str:
    url = reverse("admin:invoices_invoice_review", args=[invoice_id])
    params = "&".join(part for part in (query, urlencode(extra)) if part)
    return f"{url}?{params}" if params else url


def review_view(model_admin, request, invoice_id: int):
    """GET: the two-pane page. POST: save / re-validate / decide / assign / vendor, then back to the page."""
    invoice = _visible_invoice(request, invoice_id)
    query = _queue_query(request)
    if request.method == "POST":
        return _post(model_admin, request, invoice, query)
    return _render(model_admin, request, invoice, query)


def _post(model_admin, request, invoice: Invoice, query: str):
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        messages.error(request, "Unknown action.")
        return HttpResponseRedirect(_review_url(invoice.pk, query))
    actor = admin_actor(request)
    page = request.POST.get("page", "1")
    try:
        if action == "assign_me":
            invoice_assign(invoice=invoice, assignee=request.user, actor=actor)
            messages.success(request, "The invoice is assigned to you.")
        elif action == "unassign":
            invoice_assign(invoice=invoice, assignee=None, actor=actor)
            messages.success(request, "The invoice is unassigned.")
        elif action == "link_vendor":
            vendor = Vendor.objects.filter(pk=request.POST.get("vendor_id") or 0).first()
            if vendor is None:
                messages.error(request, "Choose a vendor to link.")
            else:
                invoice_link_vendor(invoice=invoice, vendor=vendor, actor=actor)
                messages.success(request, f"Linked to vendor {vendor.name}; the invoice was validated again.")
        elif action == "create_vendor":
            vendor = vendor_create_from_invoice(invoice=invoice, actor=actor)
            messages.success(request, f"Vendor {vendor.name} created from the seller data and linked.")
        else:
            return _post_form(model_admin, request, invoice, query, action, page)
    except REFUSALS as exc:
        messages.error(request, str(exc))
    return HttpResponseRedirect(_review_url(invoice.pk, query, page=page))


def _post_form(model_admin, request, invoice: Invoice, query: str, action: str, page: str):
    actor = admin_actor(request)
    decision_reason = request.POST.get("decision_reason", "").strip()
    if action == "reject" and not decision_reason:
        messages.error(request, "Write the reason for the rejection; the supplier and the team will read it.")
        return _render(model_admin, request, invoice, query, posted=request.POST, status=400)
    changes, new_lines = posted_changes(invoice, request.POST)
    # Approving changed values validates them first, so the decision sees the corrected invoice.
    revalidate = action == "revalidate" or (action == "approve" and bool(changes or new_lines))
    try:
        made = review_form_save(
            invoice=invoice,
            changes=changes,
            new_lines=new_lines,
            actor=actor,
            reason=request.POST.get("reason", "").strip(),
            revalidate=revalidate,
        )
    except InvalidCorrection as exc:
        messages.error(request, "Nothing was saved: correct the fields marked below.")
        return _render(model_admin, request, invoice, query, posted=request.POST, errors=exc.errors, status=400)
    except REFUSALS as exc:
        messages.error(request, f"Nothing was saved: {exc}")
        return _render(model_admin, request, invoice, query, posted=request.POST, status=403)
    saved = f"{len(made)} correction(s) saved" if made else "No field changed"
    invoice.refresh_from_db()
    if action in ("save", "revalidate"):
        if action == "revalidate":
            saved += f"; validated again: {invoice.get_status_display().lower()}, {invoice.issue_count} issue(s)"
        messages.success(request, saved + ".")
        return HttpResponseRedirect(_review_url(invoice.pk, query, page=page))
    approve = action == "approve"
    try:
        invoice_decide(invoice=invoice, approve=approve, actor=actor, reason=decision_reason)
    except REFUSALS as exc:
        prefix = f"{saved}, but the invoice was not {'approved' if approve else 'rejected'}: " if made else ""
        messages.error(request, f"{prefix}{exc}")
        return HttpResponseRedirect(_review_url(invoice.pk, query, page=page))
    messages.success(request, f"{saved}. Invoice {invoice.pk} {'approved' if approve else 'rejected'}.")
    # The clerk moves on: the next invoice waiting in the same queue view, else the queue itself.
    _previous, following = review_queue_neighbours(
        user=request.user, invoice=invoice, filters=ReviewFilters.from_query(request.GET)
    )
    if following:
        return HttpResponseRedirect(_review_url(following, query))
    return HttpResponseRedirect(reverse("admin:invoices_invoice_review_queue") + (f"?{query}" if query else ""))


def _vendor_choices(invoice: Invoice) -> list[Vendor]:
    """Vendors the clerk most likely means: same VAT id or IBAN, or a name sharing the first word."""
    match = Q(pk__in=[])
    if invoice.seller_vat_id:
        match |= Q(vat_id=invoice.seller_vat_id)
    if invoice.payment_iban:
        match |= Q(iban=invoice.payment_iban)
    words = invoice.seller_name.split()
    if words and len(words[0]) >= 3:
        match |= Q(name__icontains=words[0])
    likely = list(Vendor.objects.filter(match).order_by("name")[:VENDOR_CHOICES])
    rest = Vendor.objects.exclude(pk__in=[v.pk for v in likely]).order_by("name")[: VENDOR_CHOICES - len(likely)]
    return likely + list(rest)


def _render(model_admin, request, invoice: Invoice, query: str, *, posted=None, errors=None, status=200):
    original = invoice_original_view(invoice)
    try:
        page = max(1, min(int(request.GET.get("page", request.POST.get("page", 1))), original.page_count or 1))
    except ValueError:
        page = 1
    filters = ReviewFilters.from_query(request.GET)
    previous, following = review_queue_neighbours(user=request.user, invoice=invoice, filters=filters)
    page_url = reverse("admin:invoices_invoice_page_image", args=[invoice.pk, 1]).rsplit("1.png", 1)[0]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"Review invoice {invoice.pk}",
        "invoice": invoice,
        "original": original,
        "page": page,
        "pages": range(1, original.page_count + 1),
        "page_url_prefix": page_url,
        "dpi": DEFAULT_DPI,
        "form": review_form(invoice, posted=posted, errors=errors),
        "posted_reason": (posted or {}).get("reason", ""),
        "posted_decision_reason": (posted or {}).get("decision_reason", ""),
        "corrections": correction_rows(invoice_corrections(invoice=invoice)[:100]),
        "previous_url": _review_url(previous, query) if previous else "",
        "next_url": _review_url(following, query) if following else "",
        "queue_url": reverse("admin:invoices_invoice_review_queue") + (f"?{query}" if query else ""),
        "queue_counts": review_queue_counts(user=request.user, filters=filters),
        "approval_need": invoice_approval_need(invoice=invoice),
        "can_decide": request.user.has_perm("invoices.approve_invoice"),
        "editable": invoice.status in CORRECTABLE,
        "decidable": invoice.status in DECIDABLE,
        "vendors": _vendor_choices(invoice),
        "form_action": _review_url(invoice.pk, query),
        "download_url": reverse("admin:invoices_invoice_original", args=[invoice.pk]),
        "change_url": reverse("admin:invoices_invoice_change", args=[invoice.pk]),
    }
    return TemplateResponse(request, "admin/invoices/invoice/review.html", context, status=status)


QUEUE_PAGE_SIZE = 50


def review_queue_view(model_admin, request):
    """The invoices waiting for a person, oldest first, with counts, filters and "assign to me"."""
    if not request.user.has_perm("invoices.view_invoice"):
        raise PermissionDenied
    query = _queue_query(request)
    if request.method == "POST":
        invoice = _visible_invoice(request, int(request.POST.get("invoice_id") or 0))
        try:
            assignee = request.user if request.POST.get("action") == "assign_me" else None
            invoice_assign(invoice=invoice, assignee=assignee, actor=admin_actor(request))
            messages.success(request, f"Invoice {invoice.pk} {'assigned to you' if assignee else 'unassigned'}.")
        except REFUSALS as exc:
            messages.error(request, str(exc))
        url = reverse("admin:invoices_invoice_review_queue")
        return HttpResponseRedirect(f"{url}?{query}" if query else url)
    filters = ReviewFilters.from_query(request.GET)
    paginator = Paginator(
        review_queue(user=request.user, filters=filters).select_related("assigned_to", "vendor"), QUEUE_PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("p"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Review queue",
        "page_obj": page,
        "invoices": [(invoice, _review_url(invoice.pk, query)) for invoice in page.object_list],
        "counts": review_queue_counts(user=request.user, filters=filters),
        "filters": {key: request.GET.get(key, "") for key in QUEUE_KEYS},
        "query": query,
        "rules": _rule_codes(),
        "queue_url": reverse("admin:invoices_invoice_review_queue"),
    }
    return TemplateResponse(request, "admin/invoices/invoice/review_queue.html", context)


def _rule_codes() -> list[str]:
    return list(ValidationRuleSetting.objects.order_by("code").values_list("code", flat=True))
