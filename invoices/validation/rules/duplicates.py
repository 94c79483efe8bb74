"""The same invoice received twice: by number (blocking) or by amount and date (a suspicion).

Both rules compare the seller by its normalised VAT id, else its case-folded
name (`Invoice.seller_key`, indexed), and only documents of the same type (an invoice and the credit note that
cancels it share amounts, and some sellers number credit notes separately).
Rows that are duplicate files, failed or rejected do not count.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from invoices.duplicates import same_seller_invoices
from invoices.identity import normalise_invoice_number
from invoices.models import Invoice, Severity
from invoices.money import money_label
from invoices.validation.base import (
    Finding,
    Rule,
    integer_parameter,
    seller_key,
)

# How many earlier invoices a message names, and how many are read at most to find them.
SHOWN = 5
READ_AT_MOST = 50
# What a finding names of each earlier invoice (the seller is matched by the index already).
_FIELDS = ("pk", "invoice_number", "issue_date", "status")


def _same_seller_candidates(invoice: Invoice, key: str) -> QuerySet[Invoice]:
    """Other counted invoices of the same type from the same seller (an index lookup on seller_key)."""
    return same_seller_invoices(invoice, key)


def _describe(others: list[Invoice]) -> str:
    shown = [
        f"invoice {other.pk} ({other.invoice_number or 'no number'}, {other.get_status_display().lower()}, "
        f"issued {other.issue_date.isoformat() if other.issue_date else 'on an unknown date'})"
        for other in others[:SHOWN]
    ]
    more = f" and {len(others) - SHOWN} more" if len(others) > SHOWN else ""
    return "; ".join(shown) + more


class DuplicateNumberRule(Rule):
    code = "duplicate.number"
    uses_database = True
    description = (
        "Another invoice from the same seller has the same number in the same year (numbers compared "
        "without spaces and case). Paying both would pay twice."
    )

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        number = normalise_invoice_number(invoice.invoice_number)
        key = seller_key(invoice)
        if not number or not key or invoice.issue_date is None:
            return []
        candidates = (
            _same_seller_candidates(invoice, key)
            .filter(number_key=number[:100], issue_date__year=invoice.issue_date.year)
            .only(*_FIELDS)
            .order_by("pk")[:READ_AT_MOST]
        )
        # number_key is cut at 100 characters: compare the whole numbers.
        others = [other for other in candidates if normalise_invoice_number(other.invoice_number) == number]
        if not others:
            return []
        return [
            self.finding(
                f"Invoice number {invoice.invoice_number} from this seller was already received in "
                f"{invoice.issue_date.year}: {_describe(others)}."
            )
        ]


class DuplicateSuspectRule(Rule):
    code = "duplicate.suspect"
    uses_database = True
    default_severity = Severity.WARNING
    description = (
        "Another invoice from the same seller has the same total with VAT and currency, and an issue "
        "date at most `window_days` days apart, under a different number: possibly the same invoice "
        "sent again with a new number."
    )
    default_parameters = {"window_days": 7}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        key = seller_key(invoice)
        if not key or invoice.issue_date is None or invoice.total_gross is None:
            return []
        window = dt.timedelta(days=integer_parameter(params, "window_days"))
        candidates = (
            _same_seller_candidates(invoice, key)
            .filter(
                total_gross=invoice.total_gross,
                currency=invoice.currency,
                issue_date__range=(invoice.issue_date - window, invoice.issue_date + window),
            )
            .only(*_FIELDS)
            .order_by("pk")[:READ_AT_MOST]
        )
        number = normalise_invoice_number(invoice.invoice_number)
        others = [
            other
            for other in candidates
            # Same number in the same year is duplicate.number's finding, not a suspicion.
            if not (
                number
                and normalise_invoice_number(other.invoice_number) == number
                and other.issue_date.year == invoice.issue_date.year
            )
        ]
        if not others:
            return []
        return [
            self.finding(
                f"Possibly received before under another number: same seller, same total "
                f"{money_label(invoice.total_gross, invoice.currency)}, issued within {window.days} days: "
                f"{_describe(others)}."
            )
        ]
