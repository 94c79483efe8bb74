"""UBL 2.1 Invoice and CreditNote (EN 16931, Peppol BIS Billing 3.0, XRechnung UBL).

Paths follow the EN 16931 UBL syntax binding; the BT-/BG- numbers are noted.
"""

from __future__ import annotations

from lxml import etree

from invoices.extract.base import ExtractedInvoice, ExtractedLine, VatBreakdown
from invoices.extract.common import (
    ValueReader,
    document_type,
    one_line,
    parse_iso_date,
    require_mandatory,
)
from invoices.extract.xmlread import (
    TEXT_FIELDS,
    ChildPaths,
    Found,
    XmlExtractor,
    attribute,
    finish_reading,
    line_from,
    raw_text,
    repeated,
    text,
    vat_row_from,
)

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
INVOICE_TAG = f"{{{INVOICE_NS}}}Invoice"
CREDIT_NOTE_TAG = f"{{{CREDIT_NOTE_NS}}}CreditNote"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}

_SELLER = "cac:AccountingSupplierParty/cac:Party"
_BUYER = "cac:AccountingCustomerParty/cac:Party"
_TOTALS = "cac:LegalMonetaryTotal"

# BT-106..BT-115: attribute -> (element under LegalMonetaryTotal, how a warning names it).
_AMOUNTS = {
    name: (element, f"{label} ({term}, cbc:{element})")
    for name, element, label, term in [
        ("line_total", "LineExtensionAmount", "Sum of line net amounts", "BT-106"),
        ("allowance_total", "AllowanceTotalAmount", "Sum of allowances", "BT-107"),
        ("charge_total", "ChargeTotalAmount", "Sum of charges", "BT-108"),
        ("total_net", "TaxExclusiveAmount", "Total without VAT", "BT-109"),
        ("total_gross", "TaxInclusiveAmount", "Total with VAT", "BT-112"),
        ("prepaid_amount", "PrepaidAmount", "Paid amount", "BT-113"),
        ("rounding_amount", "PayableRoundingAmount", "Rounding amount", "BT-114"),
        ("amount_due", "PayableAmount", "Amount due for payment", "BT-115"),
    ]
}

_DOCUMENT = ChildPaths(
    {
        "profile": "cbc:CustomizationID",  # BT-24
        "invoice_number": "cbc:ID",  # BT-1
        "issue_date": "cbc:IssueDate",  # BT-2
        "type_code": "cbc:InvoiceTypeCode|cbc:CreditNoteTypeCode",  # BT-3
        # BT-9: cbc:DueDate on Invoice; a CreditNote carries it on the payment means.
        "due_date": "cbc:DueDate|cac:PaymentMeans/cbc:PaymentDueDate",
        "currency": "cbc:DocumentCurrencyCode",  # BT-5
        "buyer_reference": "cbc:BuyerReference",  # BT-10
        "purchase_order_reference": "cac:OrderReference/cbc:ID",  # BT-13
        # BT-27 / BT-44 are the legal registration names; the trading names (BT-28 / BT-45) are fallbacks.
        "seller_name": f"{_SELLER}/cac:PartyLegalEntity/cbc:RegistrationName",
        "seller_trading_name": f"{_SELLER}/cac:PartyName/cbc:Name",
        "seller_tax_schemes": f"{_SELLER}/cac:PartyTaxScheme",  # BT-31 / BT-32
        "seller_country": f"{_SELLER}/cac:PostalAddress/cac:Country/cbc:IdentificationCode",  # BT-40
        "buyer_name": f"{_BUYER}/cac:PartyLegalEntity/cbc:RegistrationName",
        "buyer_trading_name": f"{_BUYER}/cac:PartyName/cbc:Name",
        "buyer_tax_schemes": f"{_BUYER}/cac:PartyTaxScheme",  # BT-48
        "buyer_country": f"{_BUYER}/cac:PostalAddress/cac:Country/cbc:IdentificationCode",  # BT-55
        "payment_iban": "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID",  # BT-84
        "tax_totals": "cac:TaxTotal",  # BT-110 / BT-111, BG-23
        "lines": "cac:InvoiceLine|cac:CreditNoteLine",  # BG-25
        **{name: f"{_TOTALS}/cbc:{element}" for name, (element, _) in _AMOUNTS.items()},
    },
    NS,
    repeated=frozenset({"seller_tax_schemes", "buyer_tax_schemes", "tax_totals", "lines"}),
)
_TAX_SCHEME = ChildPaths({"company_id": "cbc:CompanyID", "scheme": "cac:TaxScheme/cbc:ID"}, NS)
_TAX_TOTAL = ChildPaths(
    {"tax_amount": "cbc:TaxAmount", "subtotals": "cac:TaxSubtotal"}, NS, repeated=frozenset({"subtotals"})
)
_SUBTOTAL = ChildPaths(
    {
        "taxable_amount": "cbc:TaxableAmount",  # BT-116
        "tax_amount": "cbc:TaxAmount",  # BT-117
        "category": "cac:TaxCategory/cbc:ID",  # BT-118
        "rate": "cac:TaxCategory/cbc:Percent",  # BT-119
        "exemption_reason": "cac:TaxCategory/cbc:TaxExemptionReason",  # BT-120
        "exemption_reason_code": "cac:TaxCategory/cbc:TaxExemptionReasonCode",  # BT-121
    },
    NS,
)
_LINE = ChildPaths(
    {
        "line_id": "cbc:ID",  # BT-126
        "quantity": "cbc:InvoicedQuantity|cbc:CreditedQuantity",  # BT-129, unit BT-130
        "line_amount": "cbc:LineExtensionAmount",  # BT-131
        "net_price": "cac:Price/cbc:PriceAmount",  # BT-146
        "name": "cac:Item/cbc:Name",  # BT-153
        "vat_category": "cac:Item/cac:ClassifiedTaxCategory/cbc:ID",  # BT-151
        "vat_rate": "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",  # BT-152
    },
    NS,
)

_MANDATORY_ELEMENTS = {
    "invoice_number": "cbc:ID",
    "issue_date": "cbc:IssueDate",
    "currency": "cbc:DocumentCurrencyCode",
}


class UblExtractor(XmlExtractor):
    """UBL 2.1 Invoice / CreditNote documents, format "ubl"."""

    format = "ubl"
    root_tags = frozenset({INVOICE_TAG, CREDIT_NOTE_TAG})
    syntax_name = "UBL"

    def read(self, root: etree._Element) -> ExtractedInvoice:
        """Read every EN 16931 field this model carries from a UBL Invoice or CreditNote root."""
        reader = ValueReader()
        found = _DOCUMENT.read(root)
        invoice = ExtractedInvoice(format=self.format)
        for name in TEXT_FIELDS:
            setattr(invoice, name, text(found, name))
        invoice.seller_name = one_line(raw_text(found, "seller_name")) or one_line(
            raw_text(found, "seller_trading_name")
        )
        invoice.buyer_name = one_line(raw_text(found, "buyer_name")) or one_line(raw_text(found, "buyer_trading_name"))
        invoice.seller_vat_id, invoice.seller_tax_registration_id = _tax_ids(repeated(found, "seller_tax_schemes"))
        invoice.buyer_vat_id, _ = _tax_ids(repeated(found, "buyer_tax_schemes"))
        invoice.type = document_type(invoice.type_code, credit_note_root=root.tag == CREDIT_NOTE_TAG)
        invoice.issue_date = reader.mandatory(parse_iso_date, raw_text(found, "issue_date"), field="issue_date")
        invoice.due_date = reader.iso_date(raw_text(found, "due_date"), "Payment due date (BT-9)")
        require_mandatory(invoice, syntax="UBL", elements=_MANDATORY_ELEMENTS, unreadable=reader.unreadable)

        for name, (_, label) in _AMOUNTS.items():
            setattr(invoice, name, reader.amount(raw_text(found, name), label))
        tax_total = _document_currency_tax_total(repeated(found, "tax_totals"), invoice.currency)
        if tax_total is not None:
            invoice.tax_total = reader.amount(raw_text(tax_total, "tax_amount"), "VAT total (BT-110, cbc:TaxAmount)")
            invoice.vat_breakdown = [_vat_row(sub, reader) for sub in repeated(tax_total, "subtotals")]
        invoice.lines = [_line(element, reader) for element in repeated(found, "lines")]

        return finish_reading(invoice, found, reader)


def _tax_ids(schemes: list[etree._Element]) -> tuple[str, str]:
    """(VAT identifier, other tax registration) from a party's PartyTaxScheme groups (BT-31 / BT-32)."""
    vat_id = other_id = ""
    for scheme in schemes:
        found = _TAX_SCHEME.read(scheme)
        if text(found, "scheme") == "VAT":
            vat_id = vat_id or text(found, "company_id")
        else:
            other_id = other_id or text(found, "company_id")
    return vat_id, other_id


def _document_currency_tax_total(tax_totals: list[etree._Element], currency: str) -> Found | None:
    """The TaxTotal in the invoice currency (BT-110), not the one in the VAT accounting currency (BT-111).

    EN 16931 allows two TaxTotal groups; only the one in the document currency has subtotals.
    """
    groups = [_TAX_TOTAL.read(tax_total) for tax_total in tax_totals]
    for group in groups:
        if attribute(group, "tax_amount", "currencyID") == currency:
            return group
    with_subtotals = [group for group in groups if repeated(group, "subtotals")]
    if with_subtotals:
        return with_subtotals[0]
    return groups[0] if groups else None


def _vat_row(subtotal: etree._Element, reader: ValueReader) -> VatBreakdown:
    return vat_row_from(_SUBTOTAL.read(subtotal), reader)


def _line(element: etree._Element, reader: ValueReader) -> ExtractedLine:
    return line_from(_LINE.read(element), reader)
