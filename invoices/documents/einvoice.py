"""XML e-invoices (UBL 2.1, UN/CEFACT CII, XRechnung) as a document a person can read.

Everything shown here is read from the XML itself, not from the fields our
extractor stored, so the review page can put the two side by side and a clerk
can see where they differ. Values are shown as the XML writes them (amounts
are not re-formatted, code values keep their code beside a name), because the
point is to show what the sender sent. The XML is parsed with the hardened
parser (invoices/extract/xmlsafe.py): no DTD, no entities, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from invoices.documents.errors import DocumentUnreadable
from invoices.extract.base import InvalidInvoice
from invoices.extract.xmlsafe import parse_xml

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"

UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII_NS = {
    "rsm": CII,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}

# UNTDID 1001 document types seen on invoices.
DOCUMENT_TYPES = {
    "380": "Commercial invoice",
    "381": "Credit note",
    "383": "Debit note",
    "384": "Corrected invoice",
    "386": "Prepayment invoice",
    "389": "Self-billed invoice",
    "326": "Partial invoice",
    "261": "Self-billed credit note",
    "751": "Invoice information for accounting purposes",
}
# UNTDID 4461 payment means.
PAYMENT_MEANS = {
    "1": "Not defined",
    "10": "Cash",
    "20": "Cheque",
    "30": "Credit transfer",
    "31": "Debit transfer",
    "42": "Payment to bank account",
    "48": "Bank card",
    "49": "Direct debit",
    "57": "Standing agreement",
    "58": "SEPA credit transfer",
    "59": "SEPA direct debit",
    "97": "Clearing between partners",
    "ZZZ": "Mutually defined",
}
# UNCL 5305 VAT categories.
VAT_CATEGORIES = {
    "S": "Standard rate",
    "Z": "Zero rated",
    "E": "Exempt",
    "AE": "Reverse charge",
    "K": "Intra-community supply",
    "G": "Export outside the EU",
    "O": "Not subject to VAT",
    "L": "Canary Islands IGIC",
    "M": "Ceuta and Melilla IPSI",
}


@dataclass
class Party:
    name: str = ""
    trading_name: str = ""
    vat_ids: list[str] = field(default_factory=list)
    tax_registrations: list[str] = field(default_factory=list)
    legal_id: str = ""
    address: list[str] = field(default_factory=list)
    country: str = ""
    contact: list[str] = field(default_factory=list)
    electronic_address: str = ""

    def __bool__(self) -> bool:
        return any((self.name, self.trading_name, self.vat_ids, self.legal_id, self.address, self.country))


@dataclass
class Line:
    line_id: str = ""
    name: str = ""
    description: str = ""
    quantity: str = ""
    unit: str = ""
    net_price: str = ""
    amount: str = ""
    vat_category: str = ""
    vat_rate: str = ""
    note: str = ""


@dataclass
class AllowanceCharge:
    kind: str  # "Allowance" or "Charge"
    reason: str = ""
    amount: str = ""
    vat_category: str = ""
    vat_rate: str = ""


@dataclass
class TaxRow:
    category: str = ""
    rate: str = ""
    taxable_amount: str = ""
    tax_amount: str = ""
    exemption: str = ""


@dataclass
class Payment:
    means: str = ""
    account: str = ""
    account_name: str = ""
    bank: str = ""
    reference: str = ""
    mandate: str = ""


@dataclass
class EInvoiceDocument:
    """A readable view of one e-invoice, all values as strings as the XML wrote them."""

    syntax: str
    title: str = "Invoice"
    profile: str = ""
    number: str = ""
    type_code: str = ""
    issue_date: str = ""
    due_date: str = ""
    currency: str = ""
    buyer_reference: str = ""
    order_reference: str = ""
    contract_reference: str = ""
    delivery_date: str = ""
    period: str = ""
    notes: list[str] = field(default_factory=list)
    seller: Party = field(default_factory=Party)
    buyer: Party = field(default_factory=Party)
    payee: Party = field(default_factory=Party)
    lines: list[Line] = field(default_factory=list)
    allowances_charges: list[AllowanceCharge] = field(default_factory=list)
    tax_rows: list[TaxRow] = field(default_factory=list)
    totals: list[tuple[str, str]] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    payment_terms: str = ""

    @property
    def header(self) -> list[tuple[str, str]]:
        """The header facts that are present, as (label, value) rows."""
        rows = [
            ("Number", self.number),
            ("Type", self.type_code),
            ("Issue date", self.issue_date),
            ("Due date", self.due_date),
            ("Currency", self.currency),
            ("Buyer reference", self.buyer_reference),
            ("Purchase order", self.order_reference),
            ("Contract", self.contract_reference),
            ("Delivery date", self.delivery_date),
            ("Invoicing period", self.period),
            ("Profile", self.profile),
        ]
        return [(label, value) for label, value in rows if value]


def render_einvoice(content: bytes) -> EInvoiceDocument:
    """Read a UBL Invoice / CreditNote or a CII CrossIndustryInvoice into a readable document.

    Raises DocumentUnreadable when the XML cannot be parsed (with the parser's
    reason) or is not one of those syntaxes.
    """
    try:
        root = parse_xml(content)
    except InvalidInvoice as exc:
        raise DocumentUnreadable(str(exc)) from exc
    namespace = etree.QName(root).namespace
    if namespace in (UBL_INVOICE, UBL_CREDIT_NOTE):
        return _Ubl(root).document()
    if namespace == CII and etree.QName(root).localname == "CrossIndustryInvoice":
        return _Cii(root).document()
    raise DocumentUnreadable(
        f"The XML is a {etree.QName(root).localname} document, not a UBL or CII invoice; it is shown as its source."
    )


def xml_source(content: bytes, *, limit: int = 200_000) -> str:
    """The XML as indented text for display; the first `limit` characters when it is longer."""
    try:
        text = etree.tostring(parse_xml(content), pretty_print=True, encoding="unicode")
    except InvalidInvoice:
        text = content.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "\n… (cut here: the document is longer)"


def coded(code: str, names: dict[str, str]) -> str:
    """'58' -> '58 (SEPA credit transfer)'; unknown codes stay as they are."""
    name = names.get(code.strip())
    return f"{code} ({name})" if name else code


def _join(*parts: str, sep: str = " ") -> str:
    return sep.join(part for part in parts if part)


class _Reader:
    """find / text helpers over one namespace map."""

    NS: dict[str, str] = {}

    def __init__(self, root: etree._Element):
        self.root = root

    def all(self, element: etree._Element | None, path: str) -> list[etree._Element]:
        return [] if element is None else element.findall(path, self.NS)

    def one(self, element: etree._Element | None, path: str) -> etree._Element | None:
        return None if element is None else element.find(path, self.NS)

    def text(self, element: etree._Element | None, path: str) -> str:
        found = self.one(element, path)
        return " ".join((found.text or "").split()) if found is not None else ""

    def texts(self, element: etree._Element | None, path: str) -> list[str]:
        return [value for node in self.all(element, path) if (value := " ".join((node.text or "").split()))]

    def amount(self, element: etree._Element | None, path: str, currency: str = "") -> str:
        """An amount as written; the first one in `currency` when the XML repeats it per currency."""
        nodes = self.all(element, path)
        if currency:
            nodes = [n for n in nodes if n.get("currencyID") in (None, currency)] or nodes
        return (nodes[0].text or "").strip() if nodes else ""


class _Ubl(_Reader):
    NS = UBL_NS

    def document(self) -> EInvoiceDocument:
        root, text = self.root, self.text
        credit_note = etree.QName(root).namespace == UBL_CREDIT_NOTE
        type_code = text(root, "cbc:CreditNoteTypeCode" if credit_note else "cbc:InvoiceTypeCode")
        currency = text(root, "cbc:DocumentCurrencyCode")
        period = self.one(root, "cac:InvoicePeriod")
        doc = EInvoiceDocument(
            syntax="UBL 2.1 " + ("CreditNote" if credit_note else "Invoice"),
            title="Credit note" if credit_note or type_code == "381" else "Invoice",
            profile=text(root, "cbc:CustomizationID"),
            number=text(root, "cbc:ID"),
            type_code=coded(type_code, DOCUMENT_TYPES),
            issue_date=text(root, "cbc:IssueDate"),
            due_date=text(root, "cbc:DueDate") or text(root, "cac:PaymentMeans/cbc:PaymentDueDate"),
            currency=currency,
            buyer_reference=text(root, "cbc:BuyerReference"),
            order_reference=text(root, "cac:OrderReference/cbc:ID"),
            contract_reference=text(root, "cac:ContractDocumentReference/cbc:ID"),
            delivery_date=text(root, "cac:Delivery/cbc:ActualDeliveryDate"),
            period=_join(text(period, "cbc:StartDate"), text(period, "cbc:EndDate"), sep=" to "),
            notes=self.texts(root, "cbc:Note"),
            seller=self.party(self.one(root, "cac:AccountingSupplierParty/cac:Party")),
            buyer=self.party(self.one(root, "cac:AccountingCustomerParty/cac:Party")),
            payee=self.party(self.one(root, "cac:PayeeParty")),
            payment_terms=" ".join(self.texts(root, "cac:PaymentTerms/cbc:Note")),
        )
        line_tag = "cac:CreditNoteLine" if credit_note else "cac:InvoiceLine"
        quantity_tag = "cbc:CreditedQuantity" if credit_note else "cbc:InvoicedQuantity"
        for line in self.all(root, line_tag):
            quantity = self.one(line, quantity_tag)
            doc.lines.append(
                Line(
                    line_id=text(line, "cbc:ID"),
                    name=text(line, "cac:Item/cbc:Name"),
                    description=text(line, "cac:Item/cbc:Description"),
                    quantity=(quantity.text or "").strip() if quantity is not None else "",
                    unit=quantity.get("unitCode", "") if quantity is not None else "",
                    net_price=_join(
                        text(line, "cac:Price/cbc:PriceAmount"), _per(text(line, "cac:Price/cbc:BaseQuantity"))
                    ),
                    amount=text(line, "cbc:LineExtensionAmount"),
                    vat_category=text(line, "cac:Item/cac:ClassifiedTaxCategory/cbc:ID"),
                    vat_rate=text(line, "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent"),
                    note=" ".join(self.texts(line, "cbc:Note")),
                )
            )
        for item in self.all(root, "cac:AllowanceCharge"):
            doc.allowances_charges.append(
                AllowanceCharge(
                    kind="Charge" if text(item, "cbc:ChargeIndicator").lower() == "true" else "Allowance",
                    reason=_join(
                        text(item, "cbc:AllowanceChargeReason"), _paren(text(item, "cbc:AllowanceChargeReasonCode"))
                    ),
                    amount=text(item, "cbc:Amount"),
                    vat_category=text(item, "cac:TaxCategory/cbc:ID"),
                    vat_rate=text(item, "cac:TaxCategory/cbc:Percent"),
                )
            )
        for subtotal in self.all(root, "cac:TaxTotal/cac:TaxSubtotal"):
            doc.tax_rows.append(
                TaxRow(
                    category=coded(text(subtotal, "cac:TaxCategory/cbc:ID"), VAT_CATEGORIES),
                    rate=text(subtotal, "cac:TaxCategory/cbc:Percent"),
                    taxable_amount=text(subtotal, "cbc:TaxableAmount"),
                    tax_amount=text(subtotal, "cbc:TaxAmount"),
                    exemption=_join(
                        text(subtotal, "cac:TaxCategory/cbc:TaxExemptionReason"),
                        _paren(text(subtotal, "cac:TaxCategory/cbc:TaxExemptionReasonCode")),
                    ),
                )
            )
        totals = self.one(root, "cac:LegalMonetaryTotal")
        doc.totals = [
            (label, value)
            for label, value in [
                ("Sum of line net amounts", text(totals, "cbc:LineExtensionAmount")),
                ("Allowances", text(totals, "cbc:AllowanceTotalAmount")),
                ("Charges", text(totals, "cbc:ChargeTotalAmount")),
                ("Total without VAT", text(totals, "cbc:TaxExclusiveAmount")),
                ("VAT", self.amount(root, "cac:TaxTotal/cbc:TaxAmount", currency)),
                ("Total with VAT", text(totals, "cbc:TaxInclusiveAmount")),
                ("Paid", text(totals, "cbc:PrepaidAmount")),
                ("Rounding", text(totals, "cbc:PayableRoundingAmount")),
                ("Amount due", text(totals, "cbc:PayableAmount")),
            ]
            if value
        ]
        for means in self.all(root, "cac:PaymentMeans"):
            doc.payments.append(
                Payment(
                    means=coded(text(means, "cbc:PaymentMeansCode"), PAYMENT_MEANS),
                    account=text(means, "cac:PayeeFinancialAccount/cbc:ID"),
                    account_name=text(means, "cac:PayeeFinancialAccount/cbc:Name"),
                    bank=text(means, "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID"),
                    reference=text(means, "cbc:PaymentID"),
                    mandate=_join(
                        text(means, "cac:PaymentMandate/cbc:ID"),
                        text(means, "cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID"),
                        sep=", ",
                    ),
                )
            )
        return doc

    def party(self, party: etree._Element | None) -> Party:
        if party is None:
            return Party()
        text = self.text
        address = self.one(party, "cac:PostalAddress")
        legal_name = text(party, "cac:PartyLegalEntity/cbc:RegistrationName")
        trading_name = text(party, "cac:PartyName/cbc:Name")
        taxes = [
            (text(scheme, "cac:TaxScheme/cbc:ID"), text(scheme, "cbc:CompanyID"))
            for scheme in self.all(party, "cac:PartyTaxScheme")
        ]
        endpoint = self.one(party, "cbc:EndpointID")
        return Party(
            name=legal_name or trading_name,
            trading_name=trading_name if legal_name and trading_name != legal_name else "",
            vat_ids=[company for scheme, company in taxes if company and scheme.upper() == "VAT"],
            tax_registrations=[company for scheme, company in taxes if company and scheme.upper() != "VAT"],
            legal_id=text(party, "cac:PartyLegalEntity/cbc:CompanyID"),
            address=[
                line
                for line in [
                    text(address, "cbc:StreetName"),
                    text(address, "cbc:AdditionalStreetName"),
                    *self.texts(address, "cac:AddressLine/cbc:Line"),
                    _join(text(address, "cbc:PostalZone"), text(address, "cbc:CityName")),
                    text(address, "cbc:CountrySubentity"),
                ]
                if line
            ],
            country=text(address, "cac:Country/cbc:IdentificationCode"),
            contact=[
                value
                for value in [
                    text(party, "cac:Contact/cbc:Name"),
                    text(party, "cac:Contact/cbc:Telephone"),
                    text(party, "cac:Contact/cbc:ElectronicMail"),
                ]
                if value
            ],
            electronic_address=_scheme(endpoint),
        )


_CII_DUE_DATE = "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"
_CII_DELIVERY_DATE = "ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString"


class _Cii(_Reader):
    NS = CII_NS

    def document(self) -> EInvoiceDocument:
        root, text = self.root, self.text
        header = self.one(root, "rsm:ExchangedDocument")
        transaction = self.one(root, "rsm:SupplyChainTradeTransaction")
        agreement = self.one(transaction, "ram:ApplicableHeaderTradeAgreement")
        delivery = self.one(transaction, "ram:ApplicableHeaderTradeDelivery")
        settlement = self.one(transaction, "ram:ApplicableHeaderTradeSettlement")
        currency = text(settlement, "ram:InvoiceCurrencyCode")
        type_code = text(header, "ram:TypeCode")
        period = self.one(settlement, "ram:BillingSpecifiedPeriod")
        doc = EInvoiceDocument(
            syntax="UN/CEFACT CII (CrossIndustryInvoice)",
            title="Credit note" if type_code in ("381", "261") else "Invoice",
            profile=text(root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"),
            number=text(header, "ram:ID"),
            type_code=coded(type_code, DOCUMENT_TYPES),
            issue_date=_cii_date(self.one(header, "ram:IssueDateTime/udt:DateTimeString")),
            due_date=_cii_date(self.one(settlement, _CII_DUE_DATE)),
            currency=currency,
            buyer_reference=text(agreement, "ram:BuyerReference"),
            order_reference=text(agreement, "ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID"),
            contract_reference=text(agreement, "ram:ContractReferencedDocument/ram:IssuerAssignedID"),
            delivery_date=_cii_date(self.one(delivery, _CII_DELIVERY_DATE)),
            period=_join(
                _cii_date(self.one(period, "ram:StartDateTime/udt:DateTimeString")),
                _cii_date(self.one(period, "ram:EndDateTime/udt:DateTimeString")),
                sep=" to ",
            ),
            notes=self.texts(header, "ram:IncludedNote/ram:Content"),
            seller=self.party(self.one(agreement, "ram:SellerTradeParty")),
            buyer=self.party(self.one(agreement, "ram:BuyerTradeParty")),
            payee=self.party(self.one(settlement, "ram:PayeeTradeParty")),
            payment_terms=" ".join(self.texts(settlement, "ram:SpecifiedTradePaymentTerms/ram:Description")),
        )
        for item in self.all(transaction, "ram:IncludedSupplyChainTradeLineItem"):
            quantity = self.one(item, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity")
            price = self.one(item, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice")
            tax = self.one(item, "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax")
            doc.lines.append(
                Line(
                    line_id=text(item, "ram:AssociatedDocumentLineDocument/ram:LineID"),
                    name=text(item, "ram:SpecifiedTradeProduct/ram:Name"),
                    description=text(item, "ram:SpecifiedTradeProduct/ram:Description"),
                    quantity=(quantity.text or "").strip() if quantity is not None else "",
                    unit=quantity.get("unitCode", "") if quantity is not None else "",
                    net_price=_join(text(price, "ram:ChargeAmount"), _per(text(price, "ram:BasisQuantity"))),
                    amount=text(
                        item,
                        "ram:SpecifiedLineTradeSettlement/"
                        "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
                    ),
                    vat_category=text(tax, "ram:CategoryCode"),
                    vat_rate=text(tax, "ram:RateApplicablePercent"),
                    note=" ".join(self.texts(item, "ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content")),
                )
            )
        for item in self.all(settlement, "ram:SpecifiedTradeAllowanceCharge"):
            doc.allowances_charges.append(
                AllowanceCharge(
                    kind="Charge" if text(item, "ram:ChargeIndicator/udt:Indicator").lower() == "true" else "Allowance",
                    reason=_join(text(item, "ram:Reason"), _paren(text(item, "ram:ReasonCode"))),
                    amount=text(item, "ram:ActualAmount"),
                    vat_category=text(item, "ram:CategoryTradeTax/ram:CategoryCode"),
                    vat_rate=text(item, "ram:CategoryTradeTax/ram:RateApplicablePercent"),
                )
            )
        for tax in self.all(settlement, "ram:ApplicableTradeTax"):
            doc.tax_rows.append(
                TaxRow(
                    category=coded(text(tax, "ram:CategoryCode"), VAT_CATEGORIES),
                    rate=text(tax, "ram:RateApplicablePercent"),
                    taxable_amount=text(tax, "ram:BasisAmount"),
                    tax_amount=text(tax, "ram:CalculatedAmount"),
                    exemption=_join(text(tax, "ram:ExemptionReason"), _paren(text(tax, "ram:ExemptionReasonCode"))),
                )
            )
        summary = self.one(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
        doc.totals = [
            (label, value)
            for label, value in [
                ("Sum of line net amounts", text(summary, "ram:LineTotalAmount")),
                ("Allowances", text(summary, "ram:AllowanceTotalAmount")),
                ("Charges", text(summary, "ram:ChargeTotalAmount")),
                ("Total without VAT", text(summary, "ram:TaxBasisTotalAmount")),
                ("VAT", self.amount(summary, "ram:TaxTotalAmount", currency)),
                ("Total with VAT", text(summary, "ram:GrandTotalAmount")),
                ("Paid", text(summary, "ram:TotalPrepaidAmount")),
                ("Rounding", text(summary, "ram:RoundingAmount")),
                ("Amount due", text(summary, "ram:DuePayableAmount")),
            ]
            if value
        ]
        for means in self.all(settlement, "ram:SpecifiedTradeSettlementPaymentMeans"):
            account = self.one(means, "ram:PayeePartyCreditorFinancialAccount")
            doc.payments.append(
                Payment(
                    means=_join(
                        coded(text(means, "ram:TypeCode"), PAYMENT_MEANS), _paren(text(means, "ram:Information"))
                    ),
                    account=text(account, "ram:IBANID") or text(account, "ram:ProprietaryID"),
                    account_name=text(account, "ram:AccountName"),
                    bank=text(means, "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID"),
                    reference=text(settlement, "ram:PaymentReference"),
                    mandate=_join(
                        text(settlement, "ram:SpecifiedTradePaymentTerms/ram:DirectDebitMandateID"),
                        text(means, "ram:PayerPartyDebtorFinancialAccount/ram:IBANID"),
                        sep=", ",
                    ),
                )
            )
        return doc

    def party(self, party: etree._Element | None) -> Party:
        if party is None:
            return Party()
        text = self.text
        address = self.one(party, "ram:PostalTradeAddress")
        registrations = [
            (node.get("schemeID", ""), " ".join((node.text or "").split()))
            for node in self.all(party, "ram:SpecifiedTaxRegistration/ram:ID")
        ]
        contact = self.one(party, "ram:DefinedTradeContact")
        name = text(party, "ram:Name")
        trading_name = text(party, "ram:SpecifiedLegalOrganization/ram:TradingBusinessName")
        return Party(
            name=name,
            trading_name=trading_name if trading_name != name else "",
            vat_ids=[value for scheme, value in registrations if value and scheme == "VA"],
            tax_registrations=[value for scheme, value in registrations if value and scheme != "VA"],
            legal_id=text(party, "ram:SpecifiedLegalOrganization/ram:ID"),
            address=[
                line
                for line in [
                    text(address, "ram:LineOne"),
                    text(address, "ram:LineTwo"),
                    text(address, "ram:LineThree"),
                    _join(text(address, "ram:PostcodeCode"), text(address, "ram:CityName")),
                    text(address, "ram:CountrySubDivisionName"),
                ]
                if line
            ],
            country=text(address, "ram:CountryID"),
            contact=[
                value
                for value in [
                    text(contact, "ram:PersonName"),
                    text(contact, "ram:DepartmentName"),
                    text(contact, "ram:TelephoneUniversalCommunication/ram:CompleteNumber"),
                    text(contact, "ram:EmailURIUniversalCommunication/ram:URIID"),
                ]
                if value
            ],
            electronic_address=_scheme(self.one(party, "ram:URIUniversalCommunication/ram:URIID")),
        )


def _cii_date(node: etree._Element | None) -> str:
    """CII date format 102 (YYYYMMDD) as YYYY-MM-DD; other formats as written."""
    if node is None:
        return ""
    value = (node.text or "").strip()
    if node.get("format", "102") == "102" and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _scheme(node: etree._Element | None) -> str:
    if node is None or not (node.text or "").strip():
        return ""
    scheme = node.get("schemeID", "")
    return f"{scheme}:{node.text.strip()}" if scheme else node.text.strip()


def _paren(value: str) -> str:
    return f"({value})" if value else ""


def _per(base_quantity: str) -> str:
    return f"per {base_quantity}" if base_quantity and base_quantity not in ("1", "1.0", "1.00") else ""
