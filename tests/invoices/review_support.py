"""Invoices that need review, for the review workspace tests: the PEPPOL base example with
a misread total (gross 1665.25 for net 1325 + VAT 331.25), and the sample's own bad
seller VAT id and IBAN."""

from __future__ import annotations

from invoices.models import ValidationRuleSetting
from invoices.services import invoice_import_sync
from invoices.validation import ensure_rule_settings
from tests.invoices.einvoice_reference import SAMPLES

PEPPOL = SAMPLES / "peppol-bis3" / "base-example.xml"
RIGHT_GROSS = "1656.25"
WRONG_GROSS = "1665.25"
VALID_VAT_ID = "DE136695976"
VALID_IBAN = "DE88200800000970375700"


def misread_peppol(tag: str = "") -> bytes:
    """The PEPPOL base example with a wrong total with VAT (BT-112); `tag` makes the bytes unique."""
    xml = PEPPOL.read_bytes().replace(
        b'<cbc:TaxInclusiveAmount currencyID="EUR">1656.25</cbc:TaxInclusiveAmount>',
        b'<cbc:TaxInclusiveAmount currencyID="EUR">1665.25</cbc:TaxInclusiveAmount>',
    )
    assert WRONG_GROSS.encode() in xml
    return xml + f"<!-- {tag} -->".encode() if tag else xml


def needs_review_invoice(tag: str = "", owner=None):
    invoice = invoice_import_sync(content=misread_peppol(tag), filename=f"misread{tag}.xml", owner=owner)
    assert invoice.status == "needs_review", invoice.error
    return invoice


def set_approval_limit(currency: str, limit: str) -> None:
    ensure_rule_settings()
    row = ValidationRuleSetting.objects.get(code="approval.threshold")
    row.parameters = {**row.parameters, "limits_by_currency": {currency: limit}}
    row.save()
