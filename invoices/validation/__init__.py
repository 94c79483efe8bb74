"""Validation: run the business rules over an extracted invoice and return what they found.

Rules are code (invoices/validation/rules/); whether each runs, its severity and
its parameters are rows of ValidationRuleSetting that operators edit in the admin.
A row is created with the rule's defaults the first time the rules run. The codes
are stable: docs/invoices.md lists them, and scripts filter issues by them.

    findings = validate(invoice)          # list[Finding(code, severity, message)]
    vendor = match_vendor(invoice)         # the Vendor the seller is, or None
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import replace

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import prefetch_related_objects

from invoices.models import Invoice, Severity, ValidationRuleSetting
from invoices.validation.base import Finding, Rule, RuleParameterError
from invoices.validation.rules import ALL_RULES
from invoices.validation.rules.vendor import forget_vendor_match, match_vendor

__all__ = [
    "RULES",
    "RULE_ERROR",
    "Finding",
    "Rule",
    "RuleParameterError",
    "ensure_rule_settings",
    "match_vendor",
    "rule_parameters",
    "validate",
]

logger = logging.getLogger(__name__)

# The code of the finding that says a rule could not run.
RULE_ERROR = "rule_error"

RULES: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}
if len(RULES) != len(ALL_RULES):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("Two validation rules share a code.")

# Not the rule's fault: a time limit must stop the job, and a lost database connection must
# fail it (so it is retried) rather than let the invoice pass with its checks skipped.
_PASS_THROUGH = (SoftTimeLimitExceeded, OperationalError, InterfaceError)


def ensure_rule_settings(rules: Iterable[Rule] | None = None) -> dict[str, ValidationRuleSetting]:
    """The settings row of each rule (code -> row), creating missing rows with the rule's defaults.

    Existing rows keep what operators set; they only gain parameter keys a newer
    version of a rule added (with their defaults) and the rule's current description.
    """
    rules = list(ALL_RULES if rules is None else rules)
    codes = [rule.code for rule in rules]
    settings = {row.code: row for row in ValidationRuleSetting.objects.filter(code__in=codes)}
    missing = [rule for rule in rules if rule.code not in settings]
    if missing:
        ValidationRuleSetting.objects.bulk_create(
            [
                ValidationRuleSetting(
                    code=rule.code,
                    enabled=True,
                    severity=rule.default_severity,
                    parameters=dict(rule.default_parameters),
                    description=rule.description,
                )
                for rule in missing
            ],
            ignore_conflicts=True,  # another worker may create the same rows at the same moment
        )
        settings.update(
            {row.code: row for row in ValidationRuleSetting.objects.filter(code__in=[rule.code for rule in missing])}
        )
    for rule in rules:
        _refresh_defaults(settings[rule.code], rule)
    return settings


def _refresh_defaults(row: ValidationRuleSetting, rule: Rule) -> None:
    changed = []
    if row.description != rule.description:
        row.description = rule.description
        changed.append("description")
    if isinstance(row.parameters, dict):
        new_keys = {key: value for key, value in rule.default_parameters.items() if key not in row.parameters}
        if new_keys:
            row.parameters = {**row.parameters, **new_keys}
            changed.append("parameters")
    if changed:
        row.save(update_fields=[*changed, "updated_at"])


def rule_parameters(rule: Rule, row: ValidationRuleSetting) -> dict:
    """The rule's parameters: the row's values over the defaults (so keys a row lacks get defaults)."""
    if not isinstance(row.parameters, dict):
        raise RuleParameterError(
            f"the parameters of {rule.code} must be a JSON object such as "
            f"{dict(rule.default_parameters) or {}}, not {row.parameters!r}"
        )
    return {**rule.default_parameters, **row.parameters}


def validate(invoice: Invoice, *, rules: Iterable[Rule] | None = None) -> list[Finding]:
    """Run every enabled rule (or the given ones) over a saved invoice; return their findings.

    Each finding carries the severity configured for its rule. A rule that fails
    (a bug, a parameter set to nonsense in the admin) does not stop the others: it
    yields one `rule_error` warning naming the rule and the error. Nothing is
    written to the invoice; storing the findings is the caller's business.
    """
    rules = list(ALL_RULES if rules is None else rules)
    settings = ensure_rule_settings(rules)
    if "lines" not in getattr(invoice, "_prefetched_objects_cache", {}):
        prefetch_related_objects([invoice], "lines")  # several rules read the lines: one query
    forget_vendor_match(invoice)  # the vendor master may have changed since the last run
    findings: list[Finding] = []
    for rule in rules:
        row = settings[rule.code]
        if not row.enabled:
            continue
        severity = row.severity if row.severity in Severity.values else rule.default_severity
        try:
            with transaction.atomic() if rule.uses_database else nullcontext():
                found = rule.check(invoice, rule_parameters(rule, row))
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            logger.exception("Validation rule %s failed on invoice %s", rule.code, invoice.pk)
            findings.append(
                Finding(
                    RULE_ERROR, Severity.WARNING, f"The rule {rule.code} could not run and was skipped: {_explain(exc)}"
                )
            )
            continue
        findings.extend(replace(finding, severity=severity) for finding in found)
    forget_vendor_match(invoice)
    return findings


def _explain(exc: Exception) -> str:
    text = str(exc).strip()
    if isinstance(exc, RuleParameterError):
        return f"{text}. Fix it in the admin under Validation rule settings."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
