"""Independent reads of the sample e-invoices, for comparing with what extract() returns.

Written from the standards' element names with plain lxml XPath, deliberately not
sharing any code or path table with invoices.extract, so that a wrong path in the
extractor cannot agree with itself here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import facturx
from lxml import etree

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "einvoices"

UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
ZF1 = {
    "rsm": "urn:ferd:CrossIndustryDocument:invoice:1p0",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15",
}


def sample_files(folder: str, *suffixes: str) -> list[Path]:
    """Files of one sample folder, optionally only those with the given suffixes (case-insensitive)."""
    files = sorted(p for p in (SAMPLES / folder).iterdir() if p.is_file())
    if suffixes:
        files = [p for p in files if p.suffix.lower() in suffixes]
    return files


def sample_id(path: Path) -> str:
    """Readable pytest id for a sample file."""
    return f"{path.parent.name}/{path.name}"


def embedded_xml(pdf: bytes) -> bytes:
    """The XML inside a Factur-X / ZUGFeRD PDF, as the factur-x library returns it."""
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert xml, "the sample PDF should carry XML"
    return xml


def _decimal(root: etree._Element, path: str, ns: dict[str, str]) -> Decimal | None:
    text = root.xpath(f"string({path})", namespaces=ns).strip()
    return Decimal(text) if text else None


def reference_values(xml: bytes) -> dict:
    """Invoice number, issue date, currency, seller name and BT-109/110/112/115, read with XPath."""
    root = etree.fromstring(xml)
    local = etree.QName(root).localname
    if local in ("Invoice", "CreditNote"):
        return _ubl(root)
    if local == "CrossIndustryInvoice":
        return _cii(root, CII, document="rsm:ExchangedDocument", summation="//ram:ApplicableHeaderTradeSettlement")
    if local == "CrossIndustryDocument":
        return _cii(
            root, ZF1, document="rsm:HeaderExchangedDocument", summation="//ram:ApplicableSupplyChainTradeSettlement"
        )
    raise AssertionError(f"not an invoice sample: {root.tag}")


def _ubl(root: etree._Element) -> dict:
    ns = UBL
    currency = root.xpath("string(cbc:DocumentCurrencyCode)", namespaces=ns).strip()
    party = "cac:AccountingSupplierParty/cac:Party"
    seller = root.xpath(f"normalize-space({party}/cac:PartyLegalEntity/cbc:RegistrationName)", namespaces=ns)
    seller = seller or root.xpath(f"normalize-space({party}/cac:PartyName/cbc:Name)", namespaces=ns)
    tax = root.xpath("cac:TaxTotal/cbc:TaxAmount[@currencyID=$cur]", namespaces=ns, cur=currency)
    return {
        "invoice_number": root.xpath("string(cbc:ID)", namespaces=ns).strip(),
        "issue_date": dt.date.fromisoformat(root.xpath("string(cbc:IssueDate)", namespaces=ns).strip()),
        "currency": currency,
        "seller_name": seller,
        "total_net": _decimal(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount", ns),
        "tax_total": Decimal(tax[0].text) if tax else None,
        "total_gross": _decimal(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", ns),
        "amount_due": _decimal(root, "cac:LegalMonetaryTotal/cbc:PayableAmount", ns),
        "line_count": int(root.xpath("count(cac:InvoiceLine|cac:CreditNoteLine)", namespaces=ns)),
    }


def _cii(root: etree._Element, ns: dict[str, str], *, document: str, summation: str) -> dict:
    currency = root.xpath(f"string({summation}/ram:InvoiceCurrencyCode)", namespaces=ns).strip()
    date_text = root.xpath(f"string({document}/ram:IssueDateTime/udt:DateTimeString)", namespaces=ns).strip()
    sums = f"{summation}/*[contains(local-name(), 'MonetarySummation')]"
    tax = root.xpath(f"{sums}/ram:TaxTotalAmount[@currencyID=$cur or not(@currencyID)]", namespaces=ns, cur=currency)
    gross = _decimal(root, f"{sums}/ram:GrandTotalAmount", ns)
    due = _decimal(root, f"{sums}/ram:DuePayableAmount", ns)
    if due is None and gross is not None:
        # EN 16931 BT-115 = BT-112 - BT-113 + BT-114, for documents that leave it out.
        prepaid = _decimal(root, f"{sums}/ram:TotalPrepaidAmount", ns) or 0
        rounding = _decimal(root, f"{sums}/ram:RoundingAmount", ns) or 0
        due = gross - prepaid + rounding
    items = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=ns)
    lines = [
        item
        for item in items
        if item.xpath("string(ram:AssociatedDocumentLineDocument/ram:LineID)", namespaces=ns).strip()
        or item.xpath("string(.//ram:LineTotalAmount)", namespaces=ns).strip()
    ]
    return {
        "invoice_number": root.xpath(f"string({document}/ram:ID)", namespaces=ns).strip(),
        "issue_date": dt.datetime.strptime(date_text, "%Y%m%d").date(),
        "currency": currency,
        "seller_name": root.xpath("normalize-space(//ram:SellerTradeParty/ram:Name)", namespaces=ns),
        "total_net": _decimal(root, f"{sums}/ram:TaxBasisTotalAmount", ns),
        "tax_total": Decimal(tax[0].text) if tax else None,
        "total_gross": gross,
        "amount_due": due,
        "line_count": len(lines),
    }


def assert_matches_reference(invoice, xml: bytes) -> None:
    """Every reference value equals what the extractor returned (Decimal compares by value)."""
    expected = reference_values(xml)
    actual = {name: getattr(invoice, name) for name in expected if name != "line_count"}
    actual["line_count"] = len(invoice.lines)
    assert actual == expected
    for name in ("total_net", "tax_total", "total_gross", "amount_due"):
        value = getattr(invoice, name)
        assert value is None or isinstance(value, Decimal), name
    assert isinstance(invoice.issue_date, dt.date)
