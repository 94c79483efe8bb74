"""Issue and due dates: in order, not in the future, not too old.

"Today" is the date in the project's time zone (settings.TIME_ZONE).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from invoices.models import Invoice, Severity
from invoices.validation.base import Finding, Rule, integer_parameter


class DueBeforeIssueRule(Rule):
    code = "dates.due_before_issue"
    description = "The payment due date (BT-9) is on or after the issue date (BT-2)."

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        if invoice.issue_date is None or invoice.due_date is None or invoice.due_date >= invoice.issue_date:
            return []
        return [
            self.finding(
                f"The payment due date {invoice.due_date.isoformat()} is before the issue date "
                f"{invoice.issue_date.isoformat()}."
            )
        ]


class IssueInFutureRule(Rule):
    code = "dates.issue_in_future"
    description = (
        "The issue date (BT-2) is not in the future. `grace_days` allows for suppliers in time zones ahead of ours."
    )
    default_parameters = {"grace_days": 1}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        if invoice.issue_date is None:
            return []
        latest = timezone.localdate() + dt.timedelta(days=integer_parameter(params, "grace_days"))
        if invoice.issue_date <= latest:
            return []
        return [self.finding(f"The issue date {invoice.issue_date.isoformat()} is in the future.")]


class IssueTooOldRule(Rule):
    code = "dates.issue_too_old"
    default_severity = Severity.WARNING
    description = "The issue date (BT-2) is not older than `max_age_days` days (late or re-sent invoices)."
    default_parameters = {"max_age_days": 365}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        if invoice.issue_date is None:
            return []
        max_age = integer_parameter(params, "max_age_days")
        age = (timezone.localdate() - invoice.issue_date).days
        if age <= max_age:
            return []
        return [
            self.finding(
                f"The invoice was issued on {invoice.issue_date.isoformat()}, {age} days ago "
                f"(the limit is {max_age} days)."
            )
        ]
