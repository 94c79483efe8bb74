"""CII CrossIndustryInvoice (EN 16931, XRechnung CII, Factur-X XML) and ZUGFeRD 1.0 XML extraction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from invoices.extract import extract
from invoices.extract.base import InvalidInvoice
from invoices.extract.cii import CiiExtractor, Zugferd1Extractor
from tests.invoices.einvoice_reference import (
    CII,
    SAMPLES,
    ZF1,
    assert_matches_reference,
    embedded_xml,
    sample_files,
    sample_id,
)

CII_SAMPLES = [
    *sample_files("en16931-cii"),
    *sample_files("facturx-zugferd", ".xml"),
    SAMPLES / "problem-files" / "eicar.cii.xml",
]
ZUGFERD1_PDFS = [p for p in sample_files("facturx-zugferd", ".pdf") if p.name.startswith("ZUGFeRD_1p0")]


@pytest.mark.parametrize("path", CII_SAMPLES, ids=sample_id)
def test_every_cii_sample_extracts_the_values_written_in_it(path):
    content = path.read_bytes()
    invoice = extract(content)
    assert invoice.format == "cii"
    assert_matches_reference(invoice, content)
    assert invoice.xml == content


@pytest.mark.parametrize("path", ZUGFERD1_PDFS, ids=sample_id)
def test_zugferd1_xml_on_its_own_is_format_zugferd1(path):
    xml = embedded_xml(path.read_bytes())
    invoice = extract(xml)
    assert invoice.format == "zugferd1"
    assert_matches_reference(invoice, xml)


def _read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _edit(content: bytes, edit, ns=CII) -> bytes:
    root = etree.fromstring(content)
    edit(root, lambda path: root.xpath(path, namespaces=ns))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_all_header_fields_of_cii_example_2_are_read():
    content = _read("en16931-cii/CII_example2.xml")
    root = etree.fromstring(content)

    def text(path):
        return root.xpath(f"normalize-space({path})", namespaces=CII)

    invoice = extract(content)

    seller, buyer = "//ram:SellerTradeParty", "//ram:BuyerTradeParty"
    assert invoice.type_code == text("//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert (
        invoice.due_date
        == dt.datetime.strptime(
            text("//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"), "%Y%m%d"
        ).date()
    )
    assert invoice.buyer_reference == text("//ram:BuyerReference")
    assert invoice.purchase_order_reference == text("//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID")
    assert invoice.seller_vat_id == text(f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")
    assert invoice.seller_country == text(f"{seller}/ram:PostalTradeAddress/ram:CountryID")
    assert invoice.buyer_name == text(f"{buyer}/ram:Name")
    assert invoice.buyer_vat_id == text(f"{buyer}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")
    assert invoice.buyer_country == text(f"{buyer}/ram:PostalTradeAddress/ram:CountryID")
    assert invoice.buyer_country != ""
    assert invoice.payment_iban == text("//ram:PayeePartyCreditorFinancialAccount/ram:IBANID")
    assert invoice.profile == text("//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")
    sums = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert invoice.line_total == Decimal(text(f"{sums}/ram:LineTotalAmount"))
    assert invoice.allowance_total == Decimal(text(f"{sums}/ram:AllowanceTotalAmount"))
    assert invoice.charge_total == Decimal(text(f"{sums}/ram:ChargeTotalAmount"))
    assert invoice.prepaid_amount == Decimal(text(f"{sums}/ram:TotalPrepaidAmount"))
    assert invoice.warnings == []


def test_vat_breakdown_and_lines_match_the_document():
    content = _read("en16931-cii/CII_example1.xml")
    root = etree.fromstring(content)
    taxes = root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=CII)
    expected_rows = [
        (
            t.xpath("normalize-space(ram:CategoryCode)", namespaces=CII),
            Decimal(t.xpath("string(ram:RateApplicablePercent)", namespaces=CII)),
            Decimal(t.xpath("string(ram:BasisAmount)", namespaces=CII)),
            Decimal(t.xpath("string(ram:CalculatedAmount)", namespaces=CII)),
        )
        for t in taxes
    ]
    items = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=CII)
    expected_lines = [
        (
            i.xpath("normalize-space(ram:AssociatedDocumentLineDocument/ram:LineID)", namespaces=CII),
            i.xpath("normalize-space(ram:SpecifiedTradeProduct/ram:Name)", namespaces=CII),
            Decimal(i.xpath("string(.//ram:BilledQuantity)", namespaces=CII)),
            i.xpath("string(.//ram:BilledQuantity/@unitCode)", namespaces=CII),
            Decimal(i.xpath("string(.//ram:NetPriceProductTradePrice/ram:ChargeAmount)", namespaces=CII)),
            Decimal(i.xpath("string(.//ram:LineTotalAmount)", namespaces=CII)),
            i.xpath("normalize-space(.//ram:ApplicableTradeTax/ram:CategoryCode)", namespaces=CII),
            Decimal(i.xpath("string(.//ram:ApplicableTradeTax/ram:RateApplicablePercent)", namespaces=CII)),
        )
        for i in items
    ]

    invoice = extract(content)

    rows = [(r.category, r.rate, r.taxable_amount, r.tax_amount) for r in invoice.vat_breakdown]
    lines = [
        (li.line_id, li.name, li.quantity, li.unit_code, li.net_price, li.line_amount, li.vat_category, li.vat_rate)
        for li in invoice.lines
    ]
    assert rows == expected_rows
    assert lines == expected_lines
    assert len(lines) == 20


def test_vat_total_is_the_one_in_the_invoice_currency_whatever_the_order():
    content = _read("en16931-cii/CII_example5.xml")
    root = etree.fromstring(content)
    currency = root.xpath("normalize-space(//ram:InvoiceCurrencyCode)", namespaces=CII)
    amounts = root.xpath("//ram:TaxTotalAmount", namespaces=CII)
    assert len(amounts) == 2
    expected = next(Decimal(a.text) for a in amounts if a.get("currencyID") == currency)
    other = next(Decimal(a.text) for a in amounts if a.get("currencyID") != currency)

    def accounting_currency_first(root, xp):
        first, second = xp("//ram:TaxTotalAmount")
        first.addprevious(second)

    for variant in (content, _edit(content, accounting_currency_first)):
        assert extract(variant).tax_total == expected != other


def test_vat_total_without_a_currency_in_the_invoice_currency_is_reported_not_taken():
    def only_foreign(root, xp):
        in_invoice_currency = xp("//ram:TaxTotalAmount")[0]
        in_invoice_currency.getparent().remove(in_invoice_currency)

    invoice = extract(_edit(_read("en16931-cii/CII_example5.xml"), only_foreign))
    assert invoice.tax_total is None
    assert any("BT-110" in w for w in invoice.warnings)


@pytest.mark.parametrize("name", ["facturx-zugferd/testout-ZF2PushCreditNote.xml"])
def test_credit_note_type_code_makes_a_credit_note(name):
    invoice = extract(_read(name))
    assert (invoice.type_code, invoice.type) == ("381", "credit_note")


def test_corrected_invoice_384_is_an_invoice():
    invoice = extract(_read("facturx-zugferd/testout-ZF2PushCorrection.xml"))
    assert (invoice.type_code, invoice.type) == ("384", "invoice")


def test_xrechnung_profile_is_reported():
    invoice = extract(_read("facturx-zugferd/testout-XR.xml"))
    assert "xrechnung" in invoice.profile


@pytest.mark.parametrize(
    ("path", "term"),
    [
        ("//rsm:ExchangedDocument/ram:ID", "BT-1"),
        ("//rsm:ExchangedDocument/ram:IssueDateTime", "BT-2"),
        ("//ram:InvoiceCurrencyCode", "BT-5"),
    ],
)
def test_missing_mandatory_field_is_named_with_its_business_term(path, term):
    def drop(root, xp):
        element = xp(path)[0]
        element.getparent().remove(element)

    with pytest.raises(InvalidInvoice, match=term):
        extract(_edit(_read("en16931-cii/CII_example3.xml"), drop))


def test_issue_date_in_a_format_other_than_102_is_an_error():
    def format_203(root, xp):
        xp("//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString")[0].set("format", "203")

    with pytest.raises(InvalidInvoice, match=r"BT-2.*format '203'"):
        extract(_edit(_read("en16931-cii/CII_example3.xml"), format_203))


def test_garbled_grand_total_is_dropped_with_a_warning():
    def garble(root, xp):
        xp("//ram:GrandTotalAmount")[0].text = "12,50"

    invoice = extract(_edit(_read("en16931-cii/CII_example3.xml"), garble))
    assert invoice.total_gross is None
    assert any("BT-112" in w and "12,50" in w for w in invoice.warnings)


def test_zugferd1_text_only_items_are_not_lines():
    xml = embedded_xml((SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_COMFORT_Rabatte.pdf").read_bytes())
    root = etree.fromstring(xml)
    items = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=ZF1)
    line_ids = root.xpath(
        "//ram:IncludedSupplyChainTradeLineItem/ram:AssociatedDocumentLineDocument/ram:LineID/text()", namespaces=ZF1
    )
    assert len(items) > len(line_ids)

    invoice = extract(xml)

    assert [line.line_id for line in invoice.lines] == line_ids
    assert invoice.allowance_total == Decimal(root.xpath("string(//ram:AllowanceTotalAmount)", namespaces=ZF1))
    assert invoice.seller_tax_registration_id == root.xpath(
        "normalize-space(//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC'])", namespaces=ZF1
    )


def test_zugferd1_basic_without_amount_due_gets_a_derived_one_marked_as_such():
    xml = embedded_xml((SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_BASIC_Einfach.pdf").read_bytes())
    root = etree.fromstring(xml)
    assert not root.xpath("//ram:DuePayableAmount", namespaces=ZF1)
    grand_total = Decimal(root.xpath("string(//ram:GrandTotalAmount)", namespaces=ZF1))

    invoice = extract(xml)

    assert invoice.amount_due == grand_total
    assert invoice.confidence["amount_due"] < 1.0
    assert any("BT-115" in w for w in invoice.warnings)


def test_extractors_claim_only_their_own_dialect():
    cii = _read("en16931-cii/CII_example1.xml")
    zf1 = embedded_xml((SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_BASIC_Einfach.pdf").read_bytes())
    assert CiiExtractor().can_handle(cii) and not CiiExtractor().can_handle(zf1)
    assert Zugferd1Extractor().can_handle(zf1) and not Zugferd1Extractor().can_handle(cii)
    assert not CiiExtractor().can_handle(_read("peppol-bis3/base-example.xml"))
