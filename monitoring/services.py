"""Operator actions of monitoring: save an alert rule, a policy rule or a runtime budget,
start a compliance scan (running a schedule now is jobs.services.schedule_run_now).

Each one checks the actor's permission and is audited, whether it comes from
the admin, the API or manage.py.
"""

from __future__ import annotations

import logging

from core.actors import Actor, require_permission
from core.saves import audited_save
from jobs.models import Job
from jobs.services import job_trigger
from monitoring.models import AlertRule, PolicyRule, RuntimeBudget, ScanRun

logger = logging.getLogger(__name__)

SCAN_KIND = "monitoring.compliance_scan"


def scan_trigger(*, actor: Actor, mode: str = ScanRun.Mode.FULL, reason: str = "") -> Job:
    """Start a compliance scan as a job (or return the one already running: `job.deduplicated`)."""
    require_permission(actor.user, "monitoring.run_scan")
    return job_trigger(kind=SCAN_KIND, params={"mode": mode}, actor=actor, reason=reason)


# The settings an operator edits (the admin form's fields); the rest is kept by monitoring itself.
ALERT_RULE_FIELDS = (
    "name",
    "kind",
    "enabled",
    "severity",
    "threshold",
    "window_minutes",
    "min_jobs",
    "queue",
    "job_kind",
    "check_name",
    "email_to",
    "webhook_url",
    "description",
)
POLICY_RULE_FIELDS = ("name", "kind", "enabled", "severity", "amount", "days", "description")
RUNTIME_BUDGET_FIELDS = ("kind", "max_seconds", "note")


def alert_rule_save(*, actor: Actor, rule: AlertRule | None = None, reason: str = "", **fields) -> AlertRule:
    """Create or change an alert rule: checked by the model (the webhook URL check among
    others; Invalid says which field), audited as alert_rule.create / alert_rule.change."""
    require_permission(actor.user, "monitoring.change_alertrule" if rule else "monitoring.add_alertrule")
    action = "alert_rule.change" if rule else "alert_rule.create"
    return audited_save(
        rule or AlertRule(), actor=actor, action=action, fields=fields, allowed=ALERT_RULE_FIELDS, reason=reason
    )


def policy_rule_save(*, actor: Actor, rule: PolicyRule | None = None, reason: str = "", **fields) -> PolicyRule:
    """Create or change a compliance policy rule (checked by the model), audited as
    policy_rule.create / policy_rule.change."""
    require_permission(actor.user, "monitoring.change_policyrule" if rule else "monitoring.add_policyrule")
    action = "policy_rule.change" if rule else "policy_rule.create"
    return audited_save(
        rule or PolicyRule(), actor=actor, action=action, fields=fields, allowed=POLICY_RULE_FIELDS, reason=reason
    )


def runtime_budget_save(
    *, actor: Actor, budget: RuntimeBudget | None = None, reason: str = "", **fields
) -> RuntimeBudget:
    """Create or change a job kind's runtime budget (checked by the model), audited as
    runtime_budget.create / runtime_budget.change."""
    require_permission(actor.user, "monitoring.change_runtimebudget" if budget else "monitoring.add_runtimebudget")
    action = "runtime_budget.change" if budget else "runtime_budget.create"
    return audited_save(
        budget or RuntimeBudget(),
        actor=actor,
        action=action,
        fields=fields,
        allowed=RUNTIME_BUDGET_FIELDS,
        reason=reason,
    )
