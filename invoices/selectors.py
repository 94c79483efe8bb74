"""Reads of invoices: who sees what, the review queue, corrections, the approval need.

`invoices_visible_to` is the one rule of invoice visibility; the admin, the API, the
commands and the job triggers all ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from invoices.corrections import field_values
from invoices.models import Invoice, InvoiceCorrection, InvoiceStatus, ValidationIssue
from invoices.validation import ensure_rule_settings, rule_parameters
from invoices.validation.rules.vendor import ApprovalThresholdRule, forget_vendor_match, invoice_vendor

APPROVAL_RULE = "approval.threshold"


def invoices_visible_to(user) -> QuerySet[Invoice]:
    """Staff and holders of invoices.view_all (the AP team) see every invoice; others their own.

    None is the system (a command run without --as): it sees every invoice.
    Anonymous or inactive users see none.
    """
    invoices = Invoice.objects.select_related("vendor", "owner")
    if user is None:
        return invoices
    if not user.is_authenticated or not user.is_active:
        return invoices.none()
    if user.is_staff or user.has_perm("invoices.view_all"):
        return invoices
    return invoices.filter(owner=user)


def invoice_is_visible(*, user, invoice_id) -> bool:
    """Whether the user may see the invoice with this id (False for a missing one)."""
    return invoices_visible_to(user).filter(pk=invoice_id).exists()


# --- corrections -------------------------------------------------------------------------------------


def invoice_corrections(*, invoice: Invoice, include_discarded: bool = True) -> QuerySet[InvoiceCorrection]:
    """The correction history of an invoice, newest first."""
    rows = InvoiceCorrection.objects.filter(invoice=invoice).select_related("user")
    if not include_discarded:
        rows = rows.filter(discarded_at__isnull=True)
    return rows.order_by("-created_at", "-pk")


def invoice_field_values(*, invoice: Invoice) -> dict[str, dict]:
    """Every correctable field by path: its value now, what extraction read, and whether a person changed it."""
    now = field_values(invoice)
    extracted = invoice.extracted_values or {}
    corrected = set(invoice.corrections.filter(discarded_at__isnull=True).values_list("field_path", flat=True))
    return {
        path: {
            "value": value,
            "extracted": extracted.get(path, value),
            "corrected": path in corrected or _line_path(path) in corrected,
        }
        for path, value in now.items()
    }


def _line_path(path: str) -> str:
    return path.split(".", 1)[0] if path.startswith("lines[") else path


# --- approval ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalNeed:
    """The invoice is above its approval threshold."""

    limit: Decimal
    currency: str
    message: str


def invoice_approval_need(*, invoice: Invoice) -> ApprovalNeed | None:
    """Whether the invoice is above its approval threshold (rule `approval.threshold`: the vendor's
    limit, else the one for its currency, else the general one), read live from the rule settings.
    None when it is not, or when the rule is switched off."""
    if invoice.total_gross is None:
        return None
    rule = ApprovalThresholdRule()
    row = ensure_rule_settings([rule])[rule.code]
    if not row.enabled:
        return None
    try:
        limit, whose = rule._limit(invoice, invoice_vendor(invoice), rule_parameters(rule, row))
    finally:
        forget_vendor_match(invoice)
    if abs(invoice.total_gross) <= limit:
        return None
    return ApprovalNeed(
        limit=limit,
        currency=invoice.currency,
        message=f"Its total {abs(invoice.total_gross):.2f} {invoice.currency} is above {whose} "
        f"({limit:.2f} {invoice.currency}).".replace("  ", " "),
    )


# --- the review queue -------------------------------------------------------------------------------


def due_soon_limit(today: date | None = None) -> date:
    return (today or timezone.localdate()) + timedelta(days=settings.REVIEW_DUE_SOON_DAYS)


def invoice_due_soon(invoice: Invoice) -> bool:
    """Payment is due within REVIEW_DUE_SOON_DAYS days (or overdue)."""
    return invoice.due_date is not None and invoice.due_date <= due_soon_limit()


@dataclass(frozen=True)
class ReviewFilters:
    """Filters of the review queue (all optional)."""

    mine: bool = False
    unassigned: bool = False
    assigned_to: int | None = None
    vendor: int | None = None
    rule: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    due_before: date | None = None

    @classmethod
    def from_query(cls, query) -> ReviewFilters:
        """From request query parameters or command options; ValueError names a bad one."""

        def flag(name):
            return str(query.get(name, "")).lower() in ("1", "true", "yes", "on")

        def number(name, kind):
            raw = query.get(name)
            if raw in (None, ""):
                return None
            try:
                value = kind(str(raw).strip())
            except (ValueError, InvalidOperation):
                what = "number" if kind is Decimal else "whole number"
                raise ValueError(f"{name}: '{raw}' is not a {what}.") from None
            if kind is Decimal and not value.is_finite():
                raise ValueError(f"{name}: '{raw}' is not a number.")
            return value

        due = query.get("due_before")
        try:
            due_before = date.fromisoformat(str(due)) if due else None
        except ValueError:
            raise ValueError(f"due_before: '{due}' is not a date (YYYY-MM-DD).") from None
        return cls(
            mine=flag("mine"),
            unassigned=flag("unassigned"),
            assigned_to=number("assigned_to", int),
            vendor=number("vendor", int),
            rule=str(query.get("rule") or "")[:60],
            amount_min=number("amount_min", Decimal),
            amount_max=number("amount_max", Decimal),
            due_before=due_before,
        )


def _waiting(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    needs_approval = Exists(ValidationIssue.objects.filter(invoice=OuterRef("pk"), code=APPROVAL_RULE))
    return invoices.annotate(
        awaiting_approval=Case(
            When(Q(status=InvoiceStatus.VALIDATED) & needs_approval, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    ).filter(Q(status=InvoiceStatus.NEEDS_REVIEW) | Q(awaiting_approval=True))


def review_queue(*, user, filters: ReviewFilters | None = None) -> QuerySet[Invoice]:
    """Invoices waiting for a person, oldest first: needs_review, and validated ones above the
    approval threshold. Each is annotated `awaiting_approval` and `due_soon`."""
    filters = filters or ReviewFilters()
    invoices = (
        _waiting(invoices_visible_to(user))
        .select_related("assigned_to")
        .annotate(
            due_soon=Case(
                When(due_date__lte=due_soon_limit(), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )
    if filters.mine:
        invoices = invoices.filter(assigned_to=user)
    if filters.unassigned:
        invoices = invoices.filter(assigned_to__isnull=True)
    if filters.assigned_to is not None:
        invoices = invoices.filter(assigned_to_id=filters.assigned_to)
    if filters.vendor is not None:
        invoices = invoices.filter(vendor_id=filters.vendor)
    if filters.rule:
        invoices = invoices.filter(Exists(ValidationIssue.objects.filter(invoice=OuterRef("pk"), code=filters.rule)))
    if filters.amount_min is not None:
        invoices = invoices.filter(total_gross__gte=filters.amount_min)
    if filters.amount_max is not None:
        invoices = invoices.filter(total_gross__lte=filters.amount_max)
    if filters.due_before is not None:
        invoices = invoices.filter(due_date__lte=filters.due_before)
    return invoices.order_by("created_at", "pk")


def review_queue_counts(*, user, filters: ReviewFilters | None = None) -> dict[str, int]:
    """How many wait, in all and by kind (one query)."""
    queue = review_queue(user=user, filters=filters).order_by()
    # The aggregates get their own names: one named like the annotation it filters on
    # ("awaiting_approval") makes PostgreSQL look for a column of that name.
    counts = queue.aggregate(
        count_total=Count("pk"),
        count_needs_review=Count("pk", filter=Q(status=InvoiceStatus.NEEDS_REVIEW)),
        count_awaiting_approval=Count("pk", filter=Q(awaiting_approval=True)),
        # The system (user None) has nothing assigned to it.
        count_mine=Count("pk", filter=Q(assigned_to=user) if user is not None else Q(pk__in=[])),
        count_unassigned=Count("pk", filter=Q(assigned_to__isnull=True)),
        count_due_soon=Count("pk", filter=Q(due_soon=True)),
    )
    return {name.removeprefix("count_"): value for name, value in counts.items()}


def review_queue_neighbours(
    *, user, invoice: Invoice, filters: ReviewFilters | None = None
) -> tuple[int | None, int | None]:
    """The ids before and after this invoice in the queue (oldest first); works for an invoice that has
    just left the queue (approved) too, by its place in the order."""
    queue = review_queue(user=user, filters=filters).exclude(pk=invoice.pk)
    before = Q(created_at__lt=invoice.created_at) | Q(created_at=invoice.created_at, pk__lt=invoice.pk)
    previous = queue.filter(before).order_by("-created_at", "-pk").values_list("pk", flat=True).first()
    following = queue.exclude(before).values_list("pk", flat=True).first()
    return previous, following
