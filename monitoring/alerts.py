"""Alert rules, evaluated every minute: an Alert fires when a rule's condition
holds for a subject, and resolves when it no longer does.

Each rule kind turns the current state into observations keyed by subject (a
queue, a job kind, a job, a check). An observation with no firing alert opens
one; a firing alert without an observation resolves. Notifications go out only
on those two transitions, so a condition that lasts an hour sends one email,
not sixty. When a source cannot be read (Redis down for the queue length),
the rule's alerts are left as they are rather than resolved by mistake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from emailsync.models import Mailbox
from jobs.errors import UnknownJobKind
from jobs.kinds import get_kind
from jobs.models import Job, JobStatus
from monitoring.health import beat_heartbeat_age, health_report
from monitoring.models import Alert, AlertNotification, AlertRule, AlertRuleKind, AlertStatus, RuntimeBudget
from monitoring.notifications import alert_notify
from monitoring.queues import queue_overview
from monitoring.workers import workers_ping

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = {
    AlertRuleKind.QUEUE_BACKLOG: 1000,
    AlertRuleKind.OLDEST_WAITING: 900,
    AlertRuleKind.FAILURE_RATE: 20,
    AlertRuleKind.DEAD_LETTERS_GROWING: 0,
    AlertRuleKind.WORKERS_BELOW: 1,
}


@dataclass(frozen=True)
class Observation:
    """The rule's condition holds for `key` with this value."""

    key: str
    value: float | None
    message: str


@dataclass
class EvaluationContext:
    """Shared, lazily read state for one evaluation of every rule."""

    now: datetime = field(default_factory=timezone.now)

    @cached_property
    def queues(self) -> dict:
        return queue_overview(now=self.now)

    @cached_property
    def health(self):
        return health_report()

    @cached_property
    def workers_online(self) -> int:
        try:
            return len(workers_ping(fresh=True))
        except Exception as exc:  # the broker is down: no worker can be reached either
            logger.warning("Worker ping failed: %s", exc)
            return 0


def _threshold(rule: AlertRule) -> float:
    return rule.threshold if rule.threshold is not None else DEFAULT_THRESHOLDS[rule.kind]


def _queue_backlog(rule: AlertRule, ctx: EvaluationContext) -> list[Observation] | None:
    if ctx.queues["broker_error"]:
        return None
    limit = _threshold(rule)
    return [
        Observation(
            q["name"], q["length"], f"Queue {q['name']} has {q['length']:,} messages waiting (threshold {limit:,.0f})."
        )
        for q in ctx.queues["queues"]
        if (not rule.queue or q["name"] == rule.queue) and q["length"] is not None and q["length"] > limit
    ]


def _oldest_waiting(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    limit = _threshold(rule)
    return [
        Observation(
            q["name"],
            q["oldest_waiting_age_seconds"],
            f"The oldest waiting job of queue {q['name']} has waited "
            f"{q['oldest_waiting_age_seconds']:,.0f} s (threshold {limit:,.0f} s).",
        )
        for q in ctx.queues["queues"]
        if (not rule.queue or q["name"] == rule.queue) and (q["oldest_waiting_age_seconds"] or 0) > limit
    ]


def _failure_rate(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    limit = _threshold(rule)
    jobs = Job.objects.filter(
        finished_at__gte=ctx.now - timedelta(minutes=rule.window_minutes),
        finished_at__lte=ctx.now,
        status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED],
    )
    if rule.job_kind:
        jobs = jobs.filter(kind=rule.job_kind)
    rows = jobs.values("kind").annotate(total=Count("id"), failed=Count("id", filter=Q(status=JobStatus.FAILED)))
    found = []
    for row in rows.order_by("kind"):
        rate = 100.0 * row["failed"] / row["total"]
        if row["total"] >= max(rule.min_jobs, 1) and rate > limit:
            found.append(
                Observation(
                    row["kind"],
                    round(rate, 2),
                    f"{row['failed']} of {row['total']} {row['kind']} jobs failed in the last "
                    f"{rule.window_minutes} min ({rate:.1f} %, threshold {limit:g} %).",
                )
            )
    return found


def _dead_letters_growing(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    limit = _threshold(rule)
    jobs = Job.objects.filter(is_dead_letter=True, finished_at__gte=ctx.now - timedelta(minutes=rule.window_minutes))
    if rule.job_kind:
        jobs = jobs.filter(kind=rule.job_kind)
    new = jobs.count()
    if new <= limit:
        return []
    return [
        Observation(
            rule.job_kind, new, f"{new} new dead letter(s) in the last {rule.window_minutes} min (threshold {limit:g})."
        )
    ]


def _workers_below(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    expected = _threshold(rule)
    online = ctx.workers_online
    if online >= expected:
        return []
    return [Observation("", online, f"{online} Celery worker(s) answer; {expected:g} expected.")]


def _beat_stale(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    limit = rule.threshold if rule.threshold is not None else 2 * settings.MONITORING_BEAT_HEARTBEAT_SECONDS
    age = beat_heartbeat_age(now=ctx.now)
    if age is None:
        return [Observation("", None, "Beat has never sent its heartbeat task.")]
    if age <= limit:
        return []
    return [Observation("", round(age, 1), f"Beat's heartbeat is {age:,.0f} s old (limit {limit:g} s).")]


def _job_over_budget(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    budgets = dict(RuntimeBudget.objects.values_list("kind", "max_seconds"))
    running = Job.objects.filter(status=JobStatus.RUNNING, started_at__isnull=False)
    if rule.job_kind:
        running = running.filter(kind=rule.job_kind)
    found = []
    for job_id, kind, started_at in running.values_list("id", "kind", "started_at"):
        budget = _budget_for(rule, kind, budgets)
        elapsed = (ctx.now - started_at).total_seconds()
        if budget is not None and elapsed > budget:
            found.append(
                Observation(
                    str(job_id),
                    round(elapsed, 1),
                    f"Job {job_id} ({kind}) has run {elapsed:,.0f} s, past its budget of {budget:,.0f} s.",
                )
            )
    return found


def _budget_for(rule: AlertRule, kind: str, budgets: dict[str, int]) -> float | None:
    if rule.threshold is not None:
        return rule.threshold
    if kind in budgets:
        return float(budgets[kind])
    try:
        return float(get_kind(kind).soft_time_limit)
    except UnknownJobKind:
        return None


def _health_check_failing(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    return [
        Observation(check.name, None, f"Health check {check.name} fails: {check.error}")
        for check in ctx.health.checks
        if not check.ok and (not rule.check_name or check.name == rule.check_name)
    ]


def _mailbox_attention(rule: AlertRule, ctx: EvaluationContext) -> list[Observation]:
    observations = []
    for mailbox in Mailbox.objects.filter(enabled=True, needs_attention=True).order_by("pk"):
        what = (
            f"reconnect its {mailbox.get_oauth_provider_display()} account"
            if mailbox.reconnect_required
            else "it needs attention"
        )
        observations.append(
            Observation(
                f"mailbox:{mailbox.pk}",
                None,
                f"Mailbox {mailbox.name} stopped syncing, {what}: {mailbox.last_error}"[:2000],
            )
        )
    return observations


EVALUATORS: dict[str, Callable[[AlertRule, EvaluationContext], list[Observation] | None]] = {
    AlertRuleKind.QUEUE_BACKLOG: _queue_backlog,
    AlertRuleKind.OLDEST_WAITING: _oldest_waiting,
    AlertRuleKind.FAILURE_RATE: _failure_rate,
    AlertRuleKind.DEAD_LETTERS_GROWING: _dead_letters_growing,
    AlertRuleKind.WORKERS_BELOW: _workers_below,
    AlertRuleKind.BEAT_STALE: _beat_stale,
    AlertRuleKind.JOB_OVER_BUDGET: _job_over_budget,
    AlertRuleKind.HEALTH_CHECK_FAILING: _health_check_failing,
    AlertRuleKind.MAILBOX_ATTENTION: _mailbox_attention,
}


@dataclass
class EvaluationResult:
    fired: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    still_firing: int = 0
    skipped_rules: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "fired": len(self.fired),
            "resolved": len(self.resolved),
            "still_firing": self.still_firing,
            "skipped_rules": self.skipped_rules,
        }


def alerts_evaluate(*, now: datetime | None = None) -> EvaluationResult:
    """Evaluate every rule once: open, refresh and resolve alerts, and notify on changes."""
    ctx = EvaluationContext(now=now or timezone.now())
    result = EvaluationResult()
    for rule in AlertRule.objects.order_by("pk"):
        if not rule.enabled:
            observations: list[Observation] | None = []
        else:
            try:
                observations = EVALUATORS[rule.kind](rule, ctx)
            except Exception:
                logger.exception("Alert rule %s could not be evaluated", rule)
                observations = None
        if observations is None:
            result.skipped_rules.append(rule.name)
            continue
        _apply(rule, observations, ctx.now, result)
    for alert in result.fired:
        alert_notify(alert=alert, event=AlertNotification.Event.FIRED)
    for alert in result.resolved:
        alert_notify(alert=alert, event=AlertNotification.Event.RESOLVED)
    return result


def _apply(rule: AlertRule, observations: list[Observation], now: datetime, result: EvaluationResult) -> None:
    firing = {alert.key: alert for alert in rule.alerts.filter(status=AlertStatus.FIRING)}
    current = {observation.key: observation for observation in observations}
    for key, observation in current.items():
        alert = firing.get(key)
        if alert is not None:
            Alert.objects.filter(pk=alert.pk).update(
                last_seen_at=now, value=observation.value, message=observation.message
            )
            result.still_firing += 1
            continue
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule,
                    key=key,
                    message=observation.message,
                    value=observation.value,
                    fired_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            continue  # another evaluation opened it just now
        result.fired.append(alert)
    for key, alert in firing.items():
        if key in current:
            continue
        reason = "the rule was disabled" if not rule.enabled else "the condition no longer holds"
        resolved = Alert.objects.filter(pk=alert.pk, status=AlertStatus.FIRING).update(
            status=AlertStatus.RESOLVED, resolved_at=now, last_seen_at=now
        )
        if resolved:
            alert.refresh_from_db()
            logger.info("Alert %s: %s", alert, reason)
            result.resolved.append(alert)
