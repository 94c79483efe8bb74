"""The VAT breakdown (BG-23) against the document totals and against its own rates.

The breakdown is stored as a list of rows with string amounts
(`{"category", "rate", "taxable_amount", "tax_amount", ...}`); a row whose amounts
cannot be read is left out of the checks rather than guessed.
"""

from __future__ import annotations

from decimal import Decimal

from invoices.models import Invoice
from invoices.money import money_label, stored_amount
from invoices.validation.base import Finding, Rule, decimal_parameter, is_credit_note, sums_agree

HUNDRED = Decimal(100)


def breakdown_rows(invoice: Invoice) -> list[dict]:
    """The stored VAT breakdown rows (an empty list when there is none or it is not a list of objects)."""
    rows = invoice.vat_breakdown
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, dict)]


def describe_row(row: dict) -> str:
    category = str(row.get("category") or "").strip() or "without category"
    rate = stored_amount(row.get("rate"))
    return f"category {category} at {rate.normalize():f} %" if rate is not None else f"category {category}"


class BreakdownSumRule(Rule):
    code = "vat.breakdown_sum"
    description = (
        "The VAT breakdown adds up: the sum of its tax amounts (BT-117) equals the VAT total "
        "(BT-110) and the sum of its taxable amounts (BT-116) equals the total without VAT (BT-109)."
    )
    default_parameters = {"tolerance": "0.01"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        rows = breakdown_rows(invoice)
        if not rows:
            return []
        tolerance = decimal_parameter(params, "tolerance")
        credit_note = is_credit_note(invoice)
        currency = invoice.currency
        findings = []
        checks = (
            ("tax_amount", invoice.tax_total, "tax amounts", "the VAT total (BT-110)"),
            ("taxable_amount", invoice.total_net, "taxable amounts", "the total without VAT (BT-109)"),
        )
        for key, stated, what, total_name in checks:
            amounts = [stored_amount(row.get(key)) for row in rows]
            if stated is None or None in amounts:
                continue
            if not sums_agree(stated, plus=amounts, tolerance=tolerance, credit_note=credit_note):
                findings.append(
                    self.finding(
                        f"The VAT breakdown's {what} add up to {money_label(sum(amounts, Decimal(0)), currency)}, but "
                        f"{total_name} is {money_label(stated, currency)}."
                    )
                )
        return findings


class BreakdownRateRule(Rule):
    code = "vat.breakdown_rate"
    description = (
        "Each VAT breakdown row's tax amount (BT-117) is its taxable amount (BT-116) times its rate "
        "(BT-119), within the tolerance; a row without a rate (category O, not subject to VAT) "
        "carries no tax."
    )
    # The official EN 16931 validation artefacts accept BR-CO-17 within one currency unit, because
    # VAT computed and rounded per line legitimately differs from VAT computed on the total.
    default_parameters = {"tolerance": "1.00"}

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        tolerance = decimal_parameter(params, "tolerance")
        credit_note = is_credit_note(invoice)
        currency = invoice.currency
        findings = []
        for row in breakdown_rows(invoice):
            base, tax, rate = (stored_amount(row.get(key)) for key in ("taxable_amount", "tax_amount", "rate"))
            if base is None or tax is None:
                continue
            if rate is None:
                if tax != 0:
                    findings.append(
                        self.finding(
                            f"The VAT breakdown row {describe_row(row)} has no rate but a tax amount of "
                            f"{money_label(tax, currency)}."
                        )
                    )
                continue
            expected = base * rate / HUNDRED
            if not sums_agree(tax, plus=[expected], tolerance=tolerance, credit_note=credit_note):
                findings.append(
                    self.finding(
                        f"VAT {describe_row(row)} on {money_label(base, currency)} is "
                        f"{money_label(expected, currency)}, but the "
                        f"VAT breakdown states {money_label(tax, currency)}."
                    )
                )
        return findings
