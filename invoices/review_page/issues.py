"""Which form field a validation issue concerns, so the page can show it there.

Issues are stored as rule code + message. Most messages name the EN 16931
terms they are about ("total with VAT (BT-112)"), the official rules included,
so the BT numbers in a message decide first; rules whose messages name no term
fall back to the fields the rule checks. An issue that maps to nothing is shown
above the form, never dropped.
"""

from __future__ import annotations

import re

# EN 16931 business terms -> our field (or "lines" for the line table).
BT_FIELDS = {
    1: "invoice_number",
    2: "issue_date",
    3: "type_code",
    5: "currency",
    9: "due_date",
    10: "buyer_reference",
    13: "purchase_order_reference",
    27: "seller_name",
    29: "seller_vat_id",
    31: "seller_vat_id",
    40: "seller_country",
    44: "buyer_name",
    48: "buyer_vat_id",
    55: "buyer_country",
    84: "payment_iban",
    106: "line_total",
    107: "allowance_total",
    108: "charge_total",
    109: "total_net",
    110: "tax_total",
    112: "total_gross",
    113: "prepaid_amount",
    114: "rounding_amount",
    115: "amount_due",
    **dict.fromkeys(range(126, 160), "lines"),
}

# Rules whose messages may name no business term: the fields they check.
RULE_FIELDS = {
    "currency.iso4217": ["currency"],
    "dates.due_before_issue": ["due_date"],
    "dates.issue_in_future": ["issue_date"],
    "dates.issue_too_old": ["issue_date"],
    "seller.vat_id_checksum": ["seller_vat_id"],
    "payment.iban_checksum": ["payment_iban"],
    "totals.lines_sum": ["line_total"],
    "totals.net_from_lines": ["total_net"],
    "totals.net_tax_gross": ["total_net", "tax_total", "total_gross"],
    "totals.amount_due": ["amount_due"],
    "vat.breakdown_sum": ["tax_total"],
    "vat.breakdown_rate": ["tax_total"],
    "vendor.unknown": ["vendor"],
    "vendor.blocked": ["vendor"],
    "vendor.purchase_order_required": ["purchase_order_reference"],
    "approval.threshold": ["total_gross"],
    "duplicate.number": ["invoice_number"],
    "duplicate.suspect": ["invoice_number"],
}

_BT_RE = re.compile(r"\bBT-(\d{1,3})\b")


def issue_fields(code: str, message: str) -> list[str]:
    """The fields (in first-mention order) an issue is about; [] when none can be told."""
    fields: list[str] = []
    for number in _BT_RE.findall(message):
        field = BT_FIELDS.get(int(number))
        if field and field not in fields:
            fields.append(field)
    return fields or list(RULE_FIELDS.get(code, []))
