"""Check digits of the seller's VAT id (BT-31) and of the IBAN to pay to (BT-84), with python-stdnum
(the checks themselves are invoices.identity's, shared with the vendor master)."""

from __future__ import annotations

from invoices.identity import iban_problem, vat_id_problem
from invoices.models import Invoice
from invoices.validation.base import Finding, Rule


class SellerVatIdRule(Rule):
    code = "seller.vat_id_checksum"
    description = (
        "The seller VAT id (BT-31) is well formed and its check digits are right (python-stdnum, all "
        "EU countries and many others). A VAT id of a country python-stdnum does not know is not "
        "checked."
    )

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        problem = vat_id_problem(invoice.seller_vat_id, country=invoice.seller_country, what="seller VAT id")
        return [self.finding(problem)] if problem else []


class IbanRule(Rule):
    code = "payment.iban_checksum"
    description = (
        "The IBAN to pay to (BT-84) has a known country, the right length and correct check digits. "
        "Account numbers that do not start with two letters (national account numbers) are not "
        "checked."
    )

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        problem = iban_problem(invoice.payment_iban)
        return [self.finding(problem)] if problem else []
