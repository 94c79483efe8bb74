"""UBL 2.1 Invoice / CreditNote extraction (EN 16931, Peppol BIS 3, XRechnung UBL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from invoices.extract import extract
from invoices.extract.base import InvalidInvoice
from invoices.extract.ubl import UblExtractor
from tests.invoices.einvoice_reference import (
    SAMPLES,
    UBL,
    assert_matches_reference,
    sample_files,
    sample_id,
)

UBL_SAMPLES = [
    *sample_files("en16931-ubl"),
    *sample_files("peppol-bis3"),
    SAMPLES / "problem-files" / "eicar.ubl.xml",
]


@pytest.mark.parametrize("path", UBL_SAMPLES, ids=sample_id)
def test_every_ubl_sample_extracts_the_values_written_in_it(path):
    content = path.read_bytes()
    invoice = extract(content)
    assert invoice.format == "ubl"
    assert_matches_reference(invoice, content)
    assert invoice.xml == content


def _read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _edit(content: bytes, edit) -> bytes:
    """Apply `edit(root)` to a parsed copy of a sample and serialise it again."""
    root = etree.fromstring(content)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _first(root, path):
    return root.xpath(path, namespaces=UBL)[0]


def test_all_header_fields_of_the_tc434_example_are_read():
    content = _read("en16931-ubl/ubl-tc434-example2.xml")
    root = etree.fromstring(content)

    def text(path):
        return root.xpath(f"normalize-space({path})", namespaces=UBL)

    invoice = extract(content)

    party, buyer = "cac:AccountingSupplierParty/cac:Party", "cac:AccountingCustomerParty/cac:Party"
    assert invoice.type_code == text("cbc:InvoiceTypeCode") == "380"
    assert invoice.type == "invoice"
    assert invoice.due_date == dt.date.fromisoformat(text("cbc:DueDate"))
    assert invoice.buyer_reference == text("cbc:BuyerReference")
    assert invoice.purchase_order_reference == text("cac:OrderReference/cbc:ID")
    assert invoice.seller_vat_id == text(f"{party}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID")
    assert invoice.seller_country == text(f"{party}/cac:PostalAddress/cac:Country/cbc:IdentificationCode")
    assert invoice.buyer_name == text(f"{buyer}/cac:PartyLegalEntity/cbc:RegistrationName")
    assert invoice.buyer_vat_id == text(f"{buyer}/cac:PartyTaxScheme/cbc:CompanyID")
    assert invoice.buyer_country == text(f"{buyer}/cac:PostalAddress/cac:Country/cbc:IdentificationCode")
    assert invoice.buyer_country != ""
    assert invoice.payment_iban == text("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID")
    assert invoice.profile == text("cbc:CustomizationID")
    totals = "cac:LegalMonetaryTotal"
    assert invoice.line_total == Decimal(text(f"{totals}/cbc:LineExtensionAmount"))
    assert invoice.allowance_total == Decimal(text(f"{totals}/cbc:AllowanceTotalAmount"))
    assert invoice.charge_total == Decimal(text(f"{totals}/cbc:ChargeTotalAmount"))
    assert invoice.prepaid_amount == Decimal(text(f"{totals}/cbc:PrepaidAmount"))
    assert invoice.confidence["invoice_number"] == 1.0
    assert invoice.warnings == []


def test_seller_tax_registration_other_than_vat_is_bt32():
    content = _read("en16931-ubl/ubl-tc434-example5.xml")
    root = etree.fromstring(content)
    expected = root.xpath(
        "normalize-space(cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme"
        "[not(cac:TaxScheme/cbc:ID='VAT')]/cbc:CompanyID)",
        namespaces=UBL,
    )
    assert expected
    assert extract(content).seller_tax_registration_id == expected


def test_vat_breakdown_rows_match_the_tax_subtotals():
    content = _read("en16931-ubl/ubl-tc434-example2.xml")
    root = etree.fromstring(content)
    subtotals = root.xpath("cac:TaxTotal/cac:TaxSubtotal", namespaces=UBL)
    expected = [
        (
            s.xpath("normalize-space(cac:TaxCategory/cbc:ID)", namespaces=UBL),
            Decimal(s.xpath("string(cac:TaxCategory/cbc:Percent)", namespaces=UBL)),
            Decimal(s.xpath("string(cbc:TaxableAmount)", namespaces=UBL)),
            Decimal(s.xpath("string(cbc:TaxAmount)", namespaces=UBL)),
        )
        for s in subtotals
    ]

    rows = extract(content).vat_breakdown

    assert [(r.category, r.rate, r.taxable_amount, r.tax_amount) for r in rows] == expected
    assert len(rows) == 3


def test_exemption_reason_text_and_code_are_read():
    with_text = _read("en16931-ubl/guide-example2.xml")
    reasons = etree.fromstring(with_text).xpath(
        "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason", namespaces=UBL
    )
    assert reasons
    expected_text = " ".join(reasons[0].text.split())
    with_code = _read("peppol-bis3/vat-category-E.xml")
    expected_code = etree.fromstring(with_code).xpath(
        "normalize-space(//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReasonCode)", namespaces=UBL
    )

    assert expected_text in [row.exemption_reason for row in extract(with_text).vat_breakdown]
    assert extract(with_code).vat_breakdown[0].exemption_reason_code == expected_code == "VATEX-EU-F"


def test_lines_carry_id_name_quantity_unit_price_amount_and_vat():
    content = _read("en16931-ubl/guide-example1.xml")
    root = etree.fromstring(content)
    expected = [
        (
            line.xpath("normalize-space(cbc:ID)", namespaces=UBL),
            line.xpath("normalize-space(cac:Item/cbc:Name)", namespaces=UBL),
            Decimal(line.xpath("string(cbc:InvoicedQuantity)", namespaces=UBL)),
            line.xpath("string(cbc:InvoicedQuantity/@unitCode)", namespaces=UBL),
            Decimal(line.xpath("string(cac:Price/cbc:PriceAmount)", namespaces=UBL)),
            Decimal(line.xpath("string(cbc:LineExtensionAmount)", namespaces=UBL)),
            line.xpath("normalize-space(cac:Item/cac:ClassifiedTaxCategory/cbc:ID)", namespaces=UBL),
            Decimal(line.xpath("string(cac:Item/cac:ClassifiedTaxCategory/cbc:Percent)", namespaces=UBL)),
        )
        for line in root.xpath("cac:InvoiceLine", namespaces=UBL)
    ]

    lines = extract(content).lines

    actual = [
        (li.line_id, li.name, li.quantity, li.unit_code, li.net_price, li.line_amount, li.vat_category, li.vat_rate)
        for li in lines
    ]
    assert actual == expected
    assert len(actual) == 20


@pytest.mark.parametrize(
    "name", ["en16931-ubl/ubl-tc434-creditnote1.xml", "peppol-bis3/base-creditnote-correction.xml"]
)
def test_credit_note_documents_are_credit_notes_with_credited_quantities(name):
    content = _read(name)
    root = etree.fromstring(content)
    quantities = [Decimal(q) for q in root.xpath("cac:CreditNoteLine/cbc:CreditedQuantity/text()", namespaces=UBL)]

    invoice = extract(content)

    assert etree.QName(root).localname == "CreditNote"
    assert invoice.type == "credit_note"
    assert invoice.type_code == root.xpath("normalize-space(cbc:CreditNoteTypeCode)", namespaces=UBL)
    assert [line.quantity for line in invoice.lines] == quantities


def test_invoice_document_with_credit_note_type_code_is_a_credit_note():
    def make_396(root):
        _first(root, "cbc:InvoiceTypeCode").text = "396"

    invoice = extract(_edit(_read("peppol-bis3/base-example.xml"), make_396))
    assert (invoice.type_code, invoice.type) == ("396", "credit_note")


def test_negative_invoice_stays_an_invoice():
    invoice = extract(_read("peppol-bis3/base-negative-inv-correction.xml"))
    assert invoice.type == "invoice"
    assert invoice.total_gross < 0


@pytest.mark.parametrize("name", ["en16931-ubl/ubl-tc434-example5.xml", "peppol-bis3/Allowance-example.xml"])
def test_vat_total_is_the_one_in_the_invoice_currency_not_the_accounting_currency(name):
    content = _read(name)
    root = etree.fromstring(content)
    currency = root.xpath("normalize-space(cbc:DocumentCurrencyCode)", namespaces=UBL)
    in_currency = root.xpath("cac:TaxTotal/cbc:TaxAmount[@currencyID=$c]/text()", namespaces=UBL, c=currency)
    other = root.xpath("cac:TaxTotal/cbc:TaxAmount[@currencyID!=$c]/text()", namespaces=UBL, c=currency)
    assert len(in_currency) == 1 and len(other) == 1

    def accounting_currency_first(root):
        tax_totals = root.xpath("cac:TaxTotal", namespaces=UBL)
        tax_totals[0].addprevious(tax_totals[1])

    for variant in (content, _edit(content, accounting_currency_first)):
        invoice = extract(variant)
        assert invoice.tax_total == Decimal(in_currency[0]) != Decimal(other[0])
        assert invoice.vat_breakdown, "the subtotals come from the invoice-currency TaxTotal"


def test_credit_note_due_date_comes_from_payment_means():
    def add_payment_due_date(root):
        means = _first(root, "cac:PaymentMeans")
        due = etree.SubElement(means, f"{{{UBL['cbc']}}}PaymentDueDate")
        due.text = "2024-03-31"
        means.insert(1, due)

    invoice = extract(_edit(_read("peppol-bis3/base-creditnote-correction.xml"), add_payment_due_date))
    assert invoice.due_date == dt.date(2024, 3, 31)


def test_trading_name_is_used_when_there_is_no_registration_name():
    def drop_registration_name(root):
        name = _first(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName")
        name.getparent().remove(name)

    content = _edit(_read("en16931-ubl/guide-example2.xml"), drop_registration_name)
    expected = etree.fromstring(content).xpath(
        "normalize-space(cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name)", namespaces=UBL
    )
    assert extract(content).seller_name == expected


@pytest.mark.parametrize(
    ("path", "term"),
    [("cbc:ID", "BT-1"), ("cbc:IssueDate", "BT-2"), ("cbc:DocumentCurrencyCode", "BT-5")],
)
def test_missing_mandatory_field_is_named_with_its_business_term(path, term):
    def drop(root):
        element = _first(root, path)
        element.getparent().remove(element)

    with pytest.raises(InvalidInvoice, match=term) as caught:
        extract(_edit(_read("peppol-bis3/base-example.xml"), drop))
    assert "missing" in str(caught.value)


def test_unreadable_issue_date_is_an_error_that_quotes_the_value():
    def bad_date(root):
        _first(root, "cbc:IssueDate").text = "13/11/2017"

    with pytest.raises(InvalidInvoice, match=r"issue date \(BT-2.*'13/11/2017'"):
        extract(_edit(_read("peppol-bis3/base-example.xml"), bad_date))


def test_garbled_optional_amount_is_dropped_with_a_warning_not_guessed():
    def garble(root):
        _first(root, "cac:LegalMonetaryTotal/cbc:PrepaidAmount").text = "1.000,00"

    invoice = extract(_edit(_read("en16931-ubl/guide-example2.xml"), garble))

    assert invoice.prepaid_amount is None
    assert "prepaid_amount" not in invoice.confidence
    assert any("BT-113" in w and "1.000,00" in w for w in invoice.warnings)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e3", "1_000", "\u0661\u0660\u0660", "12 EUR"])
def test_non_decimal_literals_are_never_read_as_money(value):
    def garble(root):
        _first(root, "cac:LegalMonetaryTotal/cbc:PayableAmount").text = value

    invoice = extract(_edit(_read("peppol-bis3/base-example.xml"), garble))
    assert invoice.amount_due is None
    assert any("BT-115" in w for w in invoice.warnings)


def test_large_italian_sample_is_ubl_with_an_attachment_and_reads_fully():
    path = SAMPLES / "en16931-ubl" / "FT_G2G_TD01_con_Allegato__Bonifico_e_Split_Payment.xml"
    content = path.read_bytes()
    assert len(content) > 3_000_000
    root = etree.fromstring(content)
    assert root.tag == "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"

    invoice = extract(content)

    assert invoice.format == "ubl"
    assert invoice.prepaid_amount == Decimal(
        root.xpath("string(cac:LegalMonetaryTotal/cbc:PrepaidAmount)", namespaces=UBL)
    )
    assert invoice.payment_iban == root.xpath(
        "normalize-space(cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID)", namespaces=UBL
    )


def test_ubl_extractor_claims_only_ubl_documents():
    extractor = UblExtractor()
    assert extractor.can_handle(_read("peppol-bis3/base-example.xml"))
    assert extractor.can_handle(_read("en16931-ubl/ubl-tc434-creditnote1.xml"))
    assert not extractor.can_handle(_read("en16931-cii/CII_example1.xml"))
    assert not extractor.can_handle(b"<Invoice/>")  # no UBL namespace
    assert not extractor.can_handle(b"%PDF-1.4 ...")
