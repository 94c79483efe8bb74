"""UN/CEFACT Cross Industry Invoice: CII D16B (EN 16931, XRechnung CII, Factur-X / ZUGFeRD 2.x)
and its predecessor ZUGFeRD 1.0 (CrossIndustryDocument).

Both syntaxes carry the same information under different element names, so one
reader walks a table of paths per syntax (`CiiSyntax`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from invoices.extract.base import ExtractedInvoice, ExtractedLine, VatBreakdown
from invoices.extract.common import (
    ValueReader,
    document_type,
    one_line,
    parse_cefact_date,
    require_mandatory,
)
from invoices.extract.xmlread import (
    TEXT_FIELDS,
    ChildPaths,
    XmlExtractor,
    attribute,
    finish_reading,
    line_from,
    raw_text,
    repeated,
    text,
    vat_row_from,
)

CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
ZUGFERD1_NS = {
    "rsm": "urn:ferd:CrossIndustryDocument:invoice:1p0",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15",
}
CII_TAG = f"{{{CII_NS['rsm']}}}CrossIndustryInvoice"
ZUGFERD1_TAG = f"{{{ZUGFERD1_NS['rsm']}}}CrossIndustryDocument"


@dataclass(frozen=True)
class _Names:
    """Element names that differ between CII D16B and ZUGFeRD 1.0."""

    context: str
    document: str
    transaction: str
    agreement: str
    settlement: str
    summation: str
    order_id: str
    rate: str
    line_agreement: str
    line_delivery: str
    line_settlement: str
    line_summation: str


_CII_NAMES = _Names(
    context="rsm:ExchangedDocumentContext",
    document="rsm:ExchangedDocument",
    transaction="rsm:SupplyChainTradeTransaction",
    agreement="ram:ApplicableHeaderTradeAgreement",
    settlement="ram:ApplicableHeaderTradeSettlement",
    summation="ram:SpecifiedTradeSettlementHeaderMonetarySummation",
    order_id="ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID",
    rate="ram:RateApplicablePercent",
    line_agreement="ram:SpecifiedLineTradeAgreement",
    line_delivery="ram:SpecifiedLineTradeDelivery",
    line_settlement="ram:SpecifiedLineTradeSettlement",
    line_summation="ram:SpecifiedTradeSettlementLineMonetarySummation",
)
_ZUGFERD1_NAMES = _Names(
    context="rsm:SpecifiedExchangedDocumentContext",
    document="rsm:HeaderExchangedDocument",
    transaction="rsm:SpecifiedSupplyChainTradeTransaction",
    agreement="ram:ApplicableSupplyChainTradeAgreement",
    settlement="ram:ApplicableSupplyChainTradeSettlement",
    summation="ram:SpecifiedTradeSettlementMonetarySummation",
    order_id="ram:BuyerOrderReferencedDocument/ram:ID",
    rate="ram:ApplicablePercent",
    line_agreement="ram:SpecifiedSupplyChainTradeAgreement",
    line_delivery="ram:SpecifiedSupplyChainTradeDelivery",
    line_settlement="ram:SpecifiedSupplyChainTradeSettlement",
    line_summation="ram:SpecifiedTradeSettlementMonetarySummation",
)

# BT-106..BT-115 as (attribute, element under the monetary summation, label, BT).
_AMOUNT_ELEMENTS = [
    ("line_total", "LineTotalAmount", "Sum of line net amounts", "BT-106"),
    ("allowance_total", "AllowanceTotalAmount", "Sum of allowances", "BT-107"),
    ("charge_total", "ChargeTotalAmount", "Sum of charges", "BT-108"),
    ("total_net", "TaxBasisTotalAmount", "Total without VAT", "BT-109"),
    ("total_gross", "GrandTotalAmount", "Total with VAT", "BT-112"),
    ("prepaid_amount", "TotalPrepaidAmount", "Paid amount", "BT-113"),
    ("rounding_amount", "RoundingAmount", "Rounding amount", "BT-114"),
    ("amount_due", "DuePayableAmount", "Amount due for payment", "BT-115"),
]


class CiiSyntax:
    """Compiled paths for one CII dialect, and the reader that uses them."""

    def __init__(self, *, namespaces: dict[str, str], names: _Names, label: str) -> None:
        self.label = label
        n = names
        trade = n.transaction
        seller = f"{trade}/{n.agreement}/ram:SellerTradeParty"
        buyer = f"{trade}/{n.agreement}/ram:BuyerTradeParty"
        settlement = f"{trade}/{n.settlement}"
        account = f"{settlement}/ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount"
        self.amounts = {name: f"{label} ({term}, ram:{element})" for name, element, label, term in _AMOUNT_ELEMENTS}
        self.document = ChildPaths(
            {
                "profile": f"{n.context}/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",  # BT-24
                "invoice_number": f"{n.document}/ram:ID",  # BT-1
                "type_code": f"{n.document}/ram:TypeCode",  # BT-3
                "issue_date": f"{n.document}/ram:IssueDateTime/udt:DateTimeString",  # BT-2
                "currency": f"{settlement}/ram:InvoiceCurrencyCode",  # BT-5
                "buyer_reference": f"{trade}/{n.agreement}/ram:BuyerReference",  # BT-10
                "purchase_order_reference": f"{trade}/{n.agreement}/{n.order_id}",  # BT-13
                "seller_name": f"{seller}/ram:Name",  # BT-27
                "seller_tax_ids": f"{seller}/ram:SpecifiedTaxRegistration/ram:ID",  # BT-31 (VA) / BT-32 (FC)
                "seller_country": f"{seller}/ram:PostalTradeAddress/ram:CountryID",  # BT-40
                "buyer_name": f"{buyer}/ram:Name",  # BT-44
                "buyer_tax_ids": f"{buyer}/ram:SpecifiedTaxRegistration/ram:ID",  # BT-48 (VA)
                "buyer_country": f"{buyer}/ram:PostalTradeAddress/ram:CountryID",  # BT-55
                # BT-84: the IBAN, or the proprietary account id where no IBAN is given.
                "payment_iban": f"{account}/ram:IBANID|{account}/ram:ProprietaryID",
                "due_date": f"{settlement}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
                "tax_total_amounts": f"{settlement}/{n.summation}/ram:TaxTotalAmount",  # BT-110 / BT-111
                "vat_rows": f"{settlement}/ram:ApplicableTradeTax",  # BG-23
                "lines": f"{trade}/ram:IncludedSupplyChainTradeLineItem",  # BG-25
                **{name: f"{settlement}/{n.summation}/ram:{element}" for name, element, _, _ in _AMOUNT_ELEMENTS},
            },
            namespaces,
            repeated=frozenset({"seller_tax_ids", "buyer_tax_ids", "tax_total_amounts", "vat_rows", "lines"}),
        )
        self.vat_row = ChildPaths(
            {
                "taxable_amount": "ram:BasisAmount",  # BT-116
                "tax_amount": "ram:CalculatedAmount",  # BT-117
                "category": "ram:CategoryCode",  # BT-118
                "rate": n.rate,  # BT-119
                "exemption_reason": "ram:ExemptionReason",  # BT-120
                "exemption_reason_code": "ram:ExemptionReasonCode",  # BT-121
            },
            namespaces,
        )
        self.line = ChildPaths(
            {
                "line_id": "ram:AssociatedDocumentLineDocument/ram:LineID",  # BT-126
                "name": "ram:SpecifiedTradeProduct/ram:Name",  # BT-153
                "net_price": f"{n.line_agreement}/ram:NetPriceProductTradePrice/ram:ChargeAmount",  # BT-146
                "quantity": f"{n.line_delivery}/ram:BilledQuantity",  # BT-129, unit BT-130
                "line_amount": f"{n.line_settlement}/{n.line_summation}/ram:LineTotalAmount",  # BT-131
                "vat_category": f"{n.line_settlement}/ram:ApplicableTradeTax/ram:CategoryCode",  # BT-151
                "vat_rate": f"{n.line_settlement}/ram:ApplicableTradeTax/{n.rate}",  # BT-152
            },
            namespaces,
        )
        self.mandatory_elements = {
            "invoice_number": f"{n.document}/ram:ID",
            "issue_date": "ram:IssueDateTime",
            "currency": "ram:InvoiceCurrencyCode",
        }

    def read(self, root: etree._Element, *, format_name: str) -> ExtractedInvoice:
        """Read every EN 16931 field this model carries from a document of this dialect."""
        reader = ValueReader()
        found = self.document.read(root)
        invoice = ExtractedInvoice(format=format_name)
        for name in TEXT_FIELDS:
            setattr(invoice, name, text(found, name))
        invoice.seller_name = one_line(raw_text(found, "seller_name"))
        invoice.buyer_name = one_line(raw_text(found, "buyer_name"))
        seller_ids = _tax_ids(repeated(found, "seller_tax_ids"))
        invoice.seller_vat_id = seller_ids.get("VA", "")
        invoice.seller_tax_registration_id = seller_ids.get("FC", "")
        invoice.buyer_vat_id = _tax_ids(repeated(found, "buyer_tax_ids")).get("VA", "")
        invoice.type = document_type(invoice.type_code)
        invoice.issue_date = reader.mandatory(
            parse_cefact_date,
            raw_text(found, "issue_date"),
            attribute(found, "issue_date", "format") or None,
            field="issue_date",
        )
        if found.get("due_date") is not None:
            invoice.due_date = reader.cefact_date(
                raw_text(found, "due_date"), attribute(found, "due_date", "format") or None, "Payment due date (BT-9)"
            )
        require_mandatory(invoice, syntax=self.label, elements=self.mandatory_elements, unreadable=reader.unreadable)

        for name, label in self.amounts.items():
            setattr(invoice, name, reader.amount(raw_text(found, name), label))
        invoice.tax_total = _tax_total(repeated(found, "tax_total_amounts"), invoice.currency, reader)
        invoice.vat_breakdown = [self._vat_row(row, reader) for row in repeated(found, "vat_rows")]
        invoice.lines = [line for item in repeated(found, "lines") if (line := self._line(item, reader)) is not None]

        return finish_reading(invoice, found, reader)

    def _vat_row(self, row: etree._Element, reader: ValueReader) -> VatBreakdown:
        return vat_row_from(self.vat_row.read(row), reader)

    def _line(self, item: etree._Element, reader: ValueReader) -> ExtractedLine | None:
        found = self.line.read(item)
        if not text(found, "line_id") and not text(found, "line_amount"):
            # ZUGFeRD 1.0 allows text-only items (a note between lines); they are not invoice lines.
            return None
        return line_from(found, reader)


def _tax_ids(elements: list[etree._Element]) -> dict[str, str]:
    """schemeID ("VA" VAT, "FC" fiscal number) -> the first identifier given under it."""
    ids: dict[str, str] = {}
    for element in elements:
        scheme = (element.get("schemeID") or "").strip()
        if element.text and element.text.strip():
            ids.setdefault(scheme, element.text.strip())
    return ids


def _tax_total(elements: list[etree._Element], currency: str, reader: ValueReader):
    """BT-110: the TaxTotalAmount in the invoice currency.

    CII repeats TaxTotalAmount when VAT is also stated in the accounting currency
    (BT-111, another currencyID); that one must not be taken for the invoice's VAT.
    """
    chosen = next((e for e in elements if (e.get("currencyID") or "").strip() == currency), None)
    if chosen is None:
        chosen = next((e for e in elements if not (e.get("currencyID") or "").strip()), None)
    if chosen is None and elements:
        reader.warnings.append(
            f"VAT total (BT-110): no TaxTotalAmount is stated in the invoice currency {currency}; "
            "the value was ignored."
        )
    return reader.amount(chosen.text if chosen is not None else None, "VAT total (BT-110, ram:TaxTotalAmount)")


CII_SYNTAX = CiiSyntax(namespaces=CII_NS, names=_CII_NAMES, label="CII")
ZUGFERD1_SYNTAX = CiiSyntax(namespaces=ZUGFERD1_NS, names=_ZUGFERD1_NAMES, label="ZUGFeRD 1.0")


class CiiExtractor(XmlExtractor):
    """CII CrossIndustryInvoice XML (EN 16931, XRechnung CII, Factur-X / ZUGFeRD 2.x), format "cii"."""

    format = "cii"
    root_tags = frozenset({CII_TAG})
    syntax_name = "CII"

    def read(self, root: etree._Element) -> ExtractedInvoice:
        """Read a CrossIndustryInvoice root."""
        return CII_SYNTAX.read(root, format_name=self.format)


class Zugferd1Extractor(XmlExtractor):
    """ZUGFeRD 1.0 CrossIndustryDocument XML, format "zugferd1"."""

    format = "zugferd1"
    root_tags = frozenset({ZUGFERD1_TAG})
    syntax_name = "ZUGFeRD 1.0"

    def read(self, root: etree._Element) -> ExtractedInvoice:
        """Read a ZUGFeRD 1.0 CrossIndustryDocument root."""
        return ZUGFERD1_SYNTAX.read(root, format_name=self.format)
