"""Arithmetic of the document totals (EN 16931 BR-CO-10, -13, -15, -16).

EN 16931 amounts carry two decimals; a difference up to `tolerance` (default one
cent) is rounding, not an error. A check whose amounts are not all present is
skipped: a missing total is `fields.missing`'s business.
"""

from __future__ import annotations

from decimal import Decimal

from invoices.models import Invoice
from invoices.money import money_label
from invoices.validation.base import (
    Finding,
    Rule,
    decimal_parameter,
    invoice_lines,
    is_credit_note,
    sums_agree,
)


class LinesSumRule(Rule):
    code = "totals.lines_sum"
    description = (
        "The sum of the line net amounts (BT-131) equals the sum of lines stated on the invoice "
        "(BT-106), within one cent per line (each line may be rounded)."
    )
    default_parameters = {"tolerance_per_line": "0.01"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        lines = invoice_lines(invoice)
        amounts = [line.line_amount for line in lines]
        if invoice.line_total is None or not lines or None in amounts:
            return []
        tolerance = decimal_parameter(params, "tolerance_per_line") * len(lines)
        total = sum(amounts, Decimal(0))
        # The sum as one term: a credit note may mix signs among its lines (a charge on a credit).
        if sums_agree(invoice.line_total, plus=[total], tolerance=tolerance, credit_note=is_credit_note(invoice)):
            return []
        return [
            self.finding(
                f"The {len(lines)} line amounts add up to {money_label(total, invoice.currency)}, but the invoice "
                f"states a sum of lines (BT-106) of {money_label(invoice.line_total, invoice.currency)}."
            )
        ]


class NetFromLinesRule(Rule):
    code = "totals.net_from_lines"
    description = (
        "Total without VAT (BT-109) = sum of lines (BT-106) - allowances (BT-107) + charges "
        "(BT-108). When BT-106 is not stated, the line amounts are added up instead."
    )
    default_parameters = {"tolerance": "0.01"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        line_total = invoice.line_total
        if line_total is None:
            amounts = [line.line_amount for line in invoice_lines(invoice)]
            if not amounts or None in amounts:
                return []
            line_total = sum(amounts, Decimal(0))
        if invoice.total_net is None:
            return []
        allowances = invoice.allowance_total or Decimal(0)
        charges = invoice.charge_total or Decimal(0)
        if sums_agree(
            invoice.total_net,
            plus=[line_total, charges],
            minus=[allowances],
            tolerance=decimal_parameter(params, "tolerance"),
            credit_note=is_credit_note(invoice),
        ):
            return []
        currency = invoice.currency
        return [
            self.finding(
                f"Total without VAT (BT-109) is {money_label(invoice.total_net, currency)}, but the sum of lines "
                f"{money_label(line_total, currency)} - allowances {money_label(allowances, currency)} + charges "
                f"{money_label(charges, currency)} is {money_label(line_total - allowances + charges, currency)}."
            )
        ]


class NetTaxGrossRule(Rule):
    code = "totals.net_tax_gross"
    description = "Total without VAT (BT-109) + VAT total (BT-110) = total with VAT (BT-112)."
    default_parameters = {"tolerance": "0.01"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        net, tax, gross = invoice.total_net, invoice.tax_total, invoice.total_gross
        if net is None or tax is None or gross is None:
            return []
        if sums_agree(
            gross,
            plus=[net, tax],
            tolerance=decimal_parameter(params, "tolerance"),
            credit_note=is_credit_note(invoice),
        ):
            return []
        currency = invoice.currency
        return [
            self.finding(
                f"Net {money_label(net, currency)} + VAT {money_label(tax, currency)} = "
                f"{money_label(net + tax, currency)}, but the "
                f"total with VAT (BT-112) is {money_label(gross, currency)}."
            )
        ]


class AmountDueRule(Rule):
    code = "totals.amount_due"
    description = (
        "Amount due (BT-115) = total with VAT (BT-112) - paid amount (BT-113) + rounding (BT-114). "
        "Skipped for Factur-X MINIMUM documents without a paid amount, a profile that cannot state it."
    )
    default_parameters = {"tolerance": "0.01"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        gross, due = invoice.total_gross, invoice.amount_due
        if gross is None or due is None:
            return []
        if invoice.prepaid_amount is None and "minimum" in invoice.profile.casefold():
            return []  # the MINIMUM profile has no BT-113, so a prepayment is invisible, not absent
        prepaid = invoice.prepaid_amount or Decimal(0)
        rounding = invoice.rounding_amount or Decimal(0)
        if sums_agree(
            due,
            plus=[gross, rounding],
            minus=[prepaid],
            tolerance=decimal_parameter(params, "tolerance"),
            credit_note=is_credit_note(invoice),
        ):
            return []
        currency = invoice.currency
        return [
            self.finding(
                f"Amount due (BT-115) is {money_label(due, currency)}, but total {money_label(gross, currency)} - paid "
                f"{money_label(prepaid, currency)} + rounding {money_label(rounding, currency)} is "
                f"{money_label(gross - prepaid + rounding, currency)}."
            )
        ]
