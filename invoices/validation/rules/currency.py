"""The invoice currency (BT-5) is an ISO 4217 code.

The code list comes from the `iso4217` package (the official ISO table, pinned in
requirements.txt): withdrawn codes such as HRK or ANG are refused.
"""

from __future__ import annotations

from iso4217 import Currency

from invoices.models import Invoice
from invoices.validation.base import Finding, Rule

ISO_4217_CODES = frozenset(currency.code for currency in Currency)


class Iso4217Rule(Rule):
    code = "currency.iso4217"
    description = "The invoice currency (BT-5) is a current ISO 4217 code such as EUR."

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        code = invoice.currency
        if not code or code in ISO_4217_CODES:
            return []
        hint = f" (did you mean {code.upper()}?)" if code.upper() in ISO_4217_CODES else ""
        return [self.finding(f"The currency '{code}' is not a current ISO 4217 currency code{hint}.")]
