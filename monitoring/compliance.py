"""Compliance scans: policy rules checked against the stored invoices.

Each rule kind is a query over invoices ("which of these break the rule?"), so
a scan is a handful of set-based queries, not a loop over a million rows. A
scan opens a Violation for each newly breaking invoice, refreshes `last_seen_at`
of those still breaking, and resolves those that no longer do.

A full scan checks every invoice against every rule. An incremental scan
checks only what may have changed since the last scan: invoices updated since
(Invoice.updated_at is indexed), invoices of vendors updated since, invoices
sharing a seller VAT id and number with those (duplicates work both ways),
invoices whose due date crossed an overdue limit since, and every invoice for
a rule edited since. A full scan runs daily as well, as a safety net.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from invoices.duplicates import NOT_COUNTED_STATUSES, invoices_numbered_like_an_earlier_one
from invoices.models import Invoice, InvoiceStatus, Vendor
from invoices.vendor_policy import invoices_missing_required_po, invoices_of_blocked_vendors
from monitoring.models import PolicyRule, PolicyRuleKind, ScanRun, Violation, ViolationStatus

logger = logging.getLogger(__name__)

CHUNK = 5000
# Changes saved just before the previous scan began may have committed after it read;
# looking back a little further costs a few rows and loses nothing.
WATERMARK_OVERLAP = timedelta(seconds=60)
# Invoices that are copies of a file already stored, failed to read, or were rejected are out of scope.


def _in_scope(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    return invoices.exclude(status__in=NOT_COUNTED_STATUSES)


def _over_approval_limit(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    over_vendor_limit = Q(vendor__approval_limit__isnull=False, total_gross__gt=F("vendor__approval_limit"))
    condition = over_vendor_limit
    if rule.amount is not None:
        condition |= Q(vendor__approval_limit__isnull=True, total_gross__gt=rule.amount)
    # Approved means decided and not rejected; rejected invoices are out of scope already.
    return invoices.filter(condition, decided_at__isnull=True)


def _blocked_vendor(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    return invoices_of_blocked_vendors(invoices)


def _missing_po(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    return invoices.filter(purchase_order_reference="", total_gross__gt=rule.amount or Decimal("0"))


def _vendor_requires_po(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    return invoices_missing_required_po(invoices)


def _suspected_duplicate(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    # The same question the duplicate.number validation rule asks (invoices.selectors).
    return invoices_numbered_like_an_earlier_one(invoices)


def _overdue_not_exported(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    return invoices.filter(due_date__lt=today - timedelta(days=rule.days or 0)).exclude(status=InvoiceStatus.EXPORTED)


def _iban_mismatch(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    return (
        invoices.exclude(vendor__iban="")
        .exclude(payment_iban="")
        .exclude(payment_iban=F("vendor__iban"))
        .filter(vendor__isnull=False)
    )


def _unknown_vendor(rule: PolicyRule, invoices: QuerySet[Invoice], today: date) -> QuerySet[Invoice]:
    return invoices.filter(vendor__isnull=True, total_gross__gt=rule.amount or Decimal("0"))


RULE_QUERIES: dict[str, Callable[[PolicyRule, QuerySet[Invoice], date], QuerySet[Invoice]]] = {
    PolicyRuleKind.OVER_APPROVAL_LIMIT: _over_approval_limit,
    PolicyRuleKind.BLOCKED_VENDOR: _blocked_vendor,
    PolicyRuleKind.MISSING_PO: _missing_po,
    PolicyRuleKind.VENDOR_REQUIRES_PO: _vendor_requires_po,
    PolicyRuleKind.SUSPECTED_DUPLICATE: _suspected_duplicate,
    PolicyRuleKind.OVERDUE_NOT_EXPORTED: _overdue_not_exported,
    PolicyRuleKind.IBAN_MISMATCH: _iban_mismatch,
    PolicyRuleKind.UNKNOWN_VENDOR: _unknown_vendor,
}


def invoices_breaking(
    rule: PolicyRule, *, invoices: QuerySet[Invoice] | None = None, today: date | None = None
) -> QuerySet[Invoice]:
    """The invoices (of `invoices`, default all) that break the rule today."""
    base = _in_scope(invoices if invoices is not None else Invoice.objects.all())
    return RULE_QUERIES[rule.kind](rule, base, today or timezone.localdate())


# --- what an incremental scan must look at -----------------------------------------------


def _changed_invoice_ids(since: datetime) -> set[int]:
    changed = set(Invoice.objects.filter(updated_at__gt=since).values_list("pk", flat=True))
    vendors = list(Vendor.objects.filter(updated_at__gt=since).values_list("pk", flat=True))
    if vendors:
        changed |= set(Invoice.objects.filter(vendor_id__in=vendors).values_list("pk", flat=True))
    return changed


def _duplicate_peers(ids: set[int]) -> set[int]:
    """Invoices sharing seller and number (`seller_key`, `number_key`) with these (a change
    on one can open or resolve a suspected duplicate on the other)."""
    peers: set[int] = set()
    for chunk in _chunks(sorted(ids)):
        keys = set(
            Invoice.objects.filter(pk__in=chunk)
            .exclude(seller_key="")
            .exclude(number_key="")
            .values_list("seller_key", "number_key")
        )
        for key_chunk in _chunks(sorted(keys), size=500):
            condition = Q()
            for seller, number in key_chunk:
                condition |= Q(seller_key=seller, number_key=number)
            peers |= set(Invoice.objects.filter(condition).values_list("pk", flat=True))
    return peers


def _newly_overdue_ids(rule: PolicyRule, since: datetime, today: date) -> set[int]:
    """Invoices whose due date passed the rule's limit since the last scan, without being changed."""
    limit = today - timedelta(days=rule.days or 0)
    crossed_from = timezone.localdate(since) - timedelta(days=(rule.days or 0) + 1)
    return set(Invoice.objects.filter(due_date__gte=crossed_from, due_date__lt=limit).values_list("pk", flat=True))


@dataclass
class ScanScope:
    """Which invoices each rule looks at; None means all of them."""

    per_rule: dict[int, set[int] | None] = field(default_factory=dict)

    def records(self, total: Callable[[], int]) -> int:
        if any(scope is None for scope in self.per_rule.values()):
            return total()
        return len(set().union(*self.per_rule.values())) if self.per_rule else 0


def _scope(rules: list[PolicyRule], *, mode: str, since: datetime | None, today: date) -> ScanScope:
    scope = ScanScope()
    if mode == ScanRun.Mode.FULL or since is None:
        scope.per_rule = {rule.pk: None for rule in rules}
        return scope
    changed = _changed_invoice_ids(since)
    for rule in rules:
        if rule.updated_at > since:
            scope.per_rule[rule.pk] = None  # the rule itself changed: every invoice
            continue
        if not rule.enabled:
            continue  # unchanged and off: nothing of it is open
        ids = set(changed)
        if rule.kind == PolicyRuleKind.SUSPECTED_DUPLICATE:
            ids |= _duplicate_peers(changed)
        if rule.kind == PolicyRuleKind.OVERDUE_NOT_EXPORTED:
            ids |= _newly_overdue_ids(rule, since, today)
        scope.per_rule[rule.pk] = ids
    return scope


# --- the scan -------------------------------------------------------------------------------


@dataclass
class RuleOutcome:
    found: int = 0
    opened: int = 0
    resolved: int = 0


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _breaking_ids(rule: PolicyRule, scope: set[int] | None, today: date) -> set[int]:
    if not rule.enabled:
        return set()
    if scope is None:
        return set(invoices_breaking(rule, today=today).values_list("pk", flat=True))
    found: set[int] = set()
    for chunk in _chunks(sorted(scope)):
        found |= set(
            invoices_breaking(rule, invoices=Invoice.objects.filter(pk__in=chunk), today=today).values_list(
                "pk", flat=True
            )
        )
    return found


def _open_ids(rule: PolicyRule, scope: set[int] | None) -> set[int]:
    open_violations = Violation.objects.filter(rule=rule, status=ViolationStatus.OPEN)
    if scope is None:
        return set(open_violations.values_list("invoice_id", flat=True))
    found: set[int] = set()
    for chunk in _chunks(sorted(scope)):
        found |= set(open_violations.filter(invoice_id__in=chunk).values_list("invoice_id", flat=True))
    return found


def _open_new(rule: PolicyRule, invoice_ids: list[int], scan: ScanRun, now: datetime) -> None:
    """Insert open violations with one INSERT ... SELECT per chunk: building a model instance
    per row cost most of a full scan's time."""
    table = Violation._meta.db_table
    invoice_table = Invoice._meta.db_table
    quote = connection.ops.quote_name
    for chunk in _chunks(invoice_ids):
        placeholders = ", ".join(["%s"] * len(chunk))
        sql = (
            f"INSERT INTO {quote(table)} (rule_id, invoice_id, status, first_seen_at, last_seen_at, "  # noqa: S608
            f"first_scan_id, last_scan_id) SELECT %s, i.id, %s, %s, %s, %s, %s FROM {quote(invoice_table)} i "
            f"WHERE i.id IN ({placeholders}) ON CONFLICT DO NOTHING"
        )
        params = [rule.pk, ViolationStatus.OPEN, now, now, scan.pk, scan.pk, *chunk]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _scan_rule(rule: PolicyRule, scope: set[int] | None, scan: ScanRun, now: datetime, today: date) -> RuleOutcome:
    breaking = _breaking_ids(rule, scope, today)
    already_open = _open_ids(rule, scope)
    gone = sorted(already_open - breaking)
    for chunk in _chunks(gone):
        Violation.objects.filter(rule=rule, status=ViolationStatus.OPEN, invoice_id__in=chunk).update(
            status=ViolationStatus.RESOLVED, resolved_at=now, last_scan=scan
        )
    still = sorted(breaking & already_open)
    if scope is None:
        # every open violation of the rule is still breaking now: one statement instead of thousands of ids
        Violation.objects.filter(rule=rule, status=ViolationStatus.OPEN).update(last_seen_at=now, last_scan=scan)
    else:
        for chunk in _chunks(still):
            Violation.objects.filter(rule=rule, status=ViolationStatus.OPEN, invoice_id__in=chunk).update(
                last_seen_at=now, last_scan=scan
            )
    new = sorted(breaking - already_open)
    _open_new(rule, new, scan, now)
    return RuleOutcome(found=len(breaking), opened=len(new), resolved=len(gone))


def last_successful_scan() -> ScanRun | None:
    return ScanRun.objects.filter(status=ScanRun.Status.SUCCEEDED).order_by("-started_at").first()


def compliance_scan_run(
    *, mode: str = ScanRun.Mode.INCREMENTAL, job_id=None, progress: Callable[..., None] | None = None
) -> ScanRun:
    """Run one compliance scan now and return its ScanRun (status succeeded or failed).

    An incremental scan with no successful scan before it runs as a full scan.
    """
    started = time.monotonic()
    now = timezone.now()
    today = timezone.localdate(now)
    previous = last_successful_scan()
    if previous is None:
        mode = ScanRun.Mode.FULL
    since = previous.watermark - WATERMARK_OVERLAP if previous is not None else None
    scan = ScanRun.objects.create(job_id=job_id, mode=mode, started_at=now, watermark=now)
    try:
        rules = list(PolicyRule.objects.order_by("pk"))
        scope = _scope(rules, mode=mode, since=since, today=today)
        totals = RuleOutcome()
        for index, rule in enumerate(rules, start=1):
            if rule.pk in scope.per_rule:
                outcome = _scan_rule(rule, scope.per_rule[rule.pk], scan, now, today)
                totals.found += outcome.found
                totals.opened += outcome.opened
                totals.resolved += outcome.resolved
            if progress is not None:
                progress(index, len(rules), f"checked rule {rule.name}")
        scan.records_scanned = scope.records(lambda: _in_scope(Invoice.objects.all()).count())
        scan.violations_found, scan.violations_opened, scan.violations_resolved = (
            totals.found,
            totals.opened,
            totals.resolved,
        )
        scan.status = ScanRun.Status.SUCCEEDED
    except Exception as exc:
        logger.exception("Compliance scan %s failed", scan.pk)
        scan.status = ScanRun.Status.FAILED
        scan.error = f"{type(exc).__name__}: {exc}"[:2000]
        _finish(scan, started)
        raise
    _finish(scan, started)
    return scan


def scan_outcome(scan: ScanRun) -> dict:
    """What a scan found, as the job's result and `run_compliance_scan --sync` print it."""
    return {
        "scan_id": scan.pk,
        "mode": scan.mode,
        "status": scan.status,
        "records_scanned": scan.records_scanned,
        "violations_found": scan.violations_found,
        "violations_opened": scan.violations_opened,
        "violations_resolved": scan.violations_resolved,
        "duration_seconds": scan.duration_seconds,
    }


def _finish(scan: ScanRun, started: float) -> None:
    scan.finished_at = timezone.now()
    scan.duration_seconds = round(time.monotonic() - started, 3)
    scan.save()
