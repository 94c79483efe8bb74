"""CSV invoice exports: what a user gets from the files their accounting tools write."""

from __future__ import annotations

import codecs
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from invoices.export import write_csv
from invoices.extract import detect_format
from invoices.extract.base import InvalidInvoice
from invoices.extract.csv_table import CsvExtractor
from invoices.models import Invoice
from tests.invoices.invoice_builders import make_invoice

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "einvoices"

extractor = CsvExtractor()

# A German export: semicolons, decimal commas, thousands points, DD.MM.YYYY dates, totals given.
GERMAN = """Rechnungsnummer;Rechnungsdatum;Fälligkeitsdatum;Währung;Lieferant;USt-IdNr;IBAN;Pos;Bezeichnung;Menge;Einheit;Einzelpreis;Betrag;USt-Satz;Summe Netto;Summe USt;Summe Brutto;Zahlbetrag
R-2026-0042;03.02.2026;05.03.2026;EUR;Müller Bürobedarf GmbH;DE 136 695 976;DE88 2008 0000 0970 3757 00;1;Kopierpapier A4;10;C62;4,50;45,00;19;1.245,00;233,55;1.478,55;1.478,55
R-2026-0042;03.02.2026;05.03.2026;EUR;Müller Bürobedarf GmbH;DE 136 695 976;DE88 2008 0000 0970 3757 00;2;Bürostuhl „Ergo“;1;C62;1.200,00;1.200,00;19;1.245,00;233,55;1.478,55;1.478,55
"""  # noqa: E501

# An English export: commas, decimal points, ISO dates, no totals (they must be computed).
ENGLISH_NO_TOTALS = """Invoice No,Invoice Date,Due Date,Currency,Supplier,Description,Qty,Unit Price,Line Amount,VAT Rate,VAT Category
INV-77,2026-01-15,2026-02-14,EUR,Acme Ltd,Widgets,4,25.00,100.00,19,S
INV-77,2026-01-15,2026-02-14,EUR,Acme Ltd,Books,2,25.00,50.00,7,S
INV-77,2026-01-15,2026-02-14,EUR,Acme Ltd,Gadget,1,10.05,10.05,19,S
"""  # noqa: E501


def test_semicolon_file_with_decimal_commas_reads_as_a_german_user_sees_it():
    invoice = extractor.extract(GERMAN.encode("utf-8"))

    assert invoice.format == "csv"
    assert invoice.invoice_number == "R-2026-0042"
    assert invoice.issue_date == dt.date(2026, 2, 3)
    assert invoice.due_date == dt.date(2026, 3, 5)
    assert invoice.currency == "EUR"
    assert invoice.seller_name == "Müller Bürobedarf GmbH"
    assert invoice.seller_vat_id == "DE136695976"
    assert invoice.payment_iban == "DE88200800000970375700"
    assert [line.name for line in invoice.lines] == ["Kopierpapier A4", "Bürostuhl „Ergo“"]
    assert [line.line_amount for line in invoice.lines] == [Decimal("45.00"), Decimal("1200.00")]
    assert invoice.lines[1].net_price == Decimal("1200.00")
    assert invoice.lines[0].quantity == Decimal("10")
    assert invoice.lines[0].unit_code == "C62"
    assert invoice.lines[0].vat_rate == Decimal("19")
    assert invoice.lines[0].vat_category == "S"
    assert (invoice.total_net, invoice.tax_total, invoice.total_gross, invoice.amount_due) == (
        Decimal("1245.00"),
        Decimal("233.55"),
        Decimal("1478.55"),
        Decimal("1478.55"),
    )
    assert invoice.confidence["total_gross"] == 1.0
    assert invoice.warnings == []


def test_missing_totals_are_computed_from_lines_and_vat_rates_and_flagged():
    invoice = extractor.extract(ENGLISH_NO_TOTALS.encode())

    # By hand: 19 % on 110.05 = 20.9095 -> 20.91; 7 % on 50.00 = 3.50.
    assert invoice.line_total == Decimal("160.05")
    assert invoice.total_net == Decimal("160.05")
    assert invoice.tax_total == Decimal("24.41")
    assert invoice.total_gross == Decimal("184.46")
    assert invoice.amount_due == Decimal("184.46")
    breakdown = {
        (group.category, group.rate): (group.taxable_amount, group.tax_amount) for group in invoice.vat_breakdown
    }
    assert breakdown == {
        ("S", Decimal("19")): (Decimal("110.05"), Decimal("20.91")),
        ("S", Decimal("7")): (Decimal("50.00"), Decimal("3.50")),
    }
    assert any("computed from the lines" in warning for warning in invoice.warnings)
    assert all(invoice.confidence[name] < 1.0 for name in ("total_net", "tax_total", "total_gross", "amount_due"))
    assert invoice.confidence["invoice_number"] == 1.0


def test_utf8_bom_is_not_part_of_the_first_header():
    invoice = extractor.extract(codecs.BOM_UTF8 + ENGLISH_NO_TOTALS.encode())

    assert invoice.invoice_number == "INV-77"
    assert not any("Windows-1252" in warning for warning in invoice.warnings)


def test_utf16_with_bom_is_read():
    invoice = extractor.extract(GERMAN.encode("utf-16"))

    assert invoice.seller_name == "Müller Bürobedarf GmbH"
    assert invoice.total_gross == Decimal("1478.55")


def test_cp1252_file_keeps_umlauts_and_warns_about_the_encoding():
    content = GERMAN.replace("„Ergo“", "Ergo").encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")

    invoice = extractor.extract(content)

    assert invoice.seller_name == "Müller Bürobedarf GmbH"
    assert invoice.lines[1].name == "Bürostuhl Ergo"
    assert any("Windows-1252" in warning for warning in invoice.warnings)


def test_tab_separated_file_with_aliases_in_any_case():
    content = (
        b"INVOICE NUMBER\tissue_date\tcurrency\tSeller Name\tline_name\tquantity\tnet_price\tline_amount\tvat_rate\t"
        b"Total Net\tTax Total\tTotal Gross\n"
        b"T-1\t31/01/2026\tCHF\tAlpen AG\tBeratung\t2\t1'000.00\t2'000.00\t8.1\t2'000.00\t162.00\t2'162.00\n"
    )

    invoice = extractor.extract(content)

    assert invoice.invoice_number == "T-1"
    assert invoice.issue_date == dt.date(2026, 1, 31)
    assert invoice.currency == "CHF"
    assert invoice.lines[0].net_price == Decimal("1000.00")
    assert invoice.lines[0].vat_rate == Decimal("8.1")
    assert invoice.total_gross == Decimal("2162.00")


def test_slashed_dates_are_day_first():
    content = ENGLISH_NO_TOTALS.replace("2026-01-15", "03/04/2026").encode()

    assert extractor.extract(content).issue_date == dt.date(2026, 4, 3)


def test_a_us_style_date_is_refused_with_the_rule_in_the_message():
    content = ENGLISH_NO_TOTALS.replace("2026-01-15", "01/15/2026").encode()

    with pytest.raises(
        InvalidInvoice,
        match=r"Row 2, column 'Invoice Date': '01/15/2026' is not a valid date "
        r"\(dates with slashes are read as DD/MM/YYYY\)",
    ):
        extractor.extract(content)


def test_thousands_separators_in_both_conventions():
    english = ENGLISH_NO_TOTALS.replace("25.00,100.00", '"1,000.00","4,000.00"').encode()
    invoice = extractor.extract(english)

    assert invoice.lines[0].net_price == Decimal("1000.00")
    assert invoice.lines[0].line_amount == Decimal("4000.00")


def test_credit_note_type_and_line_amount_from_quantity_times_price():
    content = (
        "invoice_number;type;issue_date;currency;line_name;quantity;net_price;vat_rate\n"
        "GS-9;Gutschrift;2026-02-01;EUR;Rücknahme;3;19,99;19\n"
    ).encode()

    invoice = extractor.extract(content)

    assert invoice.type == "credit_note"
    assert invoice.lines[0].line_amount == Decimal("59.97")
    assert invoice.total_net == Decimal("59.97")
    assert invoice.tax_total == Decimal("11.39")


def test_rows_of_two_invoices_are_refused():
    content = ENGLISH_NO_TOTALS.replace(
        "INV-77,2026-01-15,2026-02-14,EUR,Acme Ltd,Books", "INV-78,2026-01-15,2026-02-14,EUR,Acme Ltd,Books"
    ).encode()

    with pytest.raises(InvalidInvoice) as raised:
        extractor.extract(content)

    message = str(raised.value)
    assert "more than one invoice" in message
    assert "'INV-77' in row 2" in message
    assert "'INV-78' in row 3" in message


def test_a_bad_number_names_row_and_column():
    content = ENGLISH_NO_TOTALS.replace("Books,2,", "Books,12x,").encode()

    with pytest.raises(InvalidInvoice, match=r"^Row 3, column 'Qty': '12x' is not a number\.$"):
        extractor.extract(content)


def test_invoice_level_values_that_differ_between_rows_are_refused():
    content = ENGLISH_NO_TOTALS.replace("2026-02-14,EUR,Acme Ltd,Books", "2026-02-14,USD,Acme Ltd,Books").encode()

    with pytest.raises(InvalidInvoice, match=r"Row 3, column 'Currency': 'USD' differs from 'EUR' in row 2"):
        extractor.extract(content)


def test_unquoted_decimal_commas_in_a_comma_separated_file_are_explained():
    content = b"invoice_number,line_name,line_amount\nA-1,Item,12,50\n"
    assert extractor.can_handle(content)  # so the user gets this message, not "unrecognised file"

    with pytest.raises(InvalidInvoice, match=r"Row 2 has 4 cells but the header has 3 .*must be quoted"):
        extractor.extract(content)


def test_a_line_without_any_amount_is_refused():
    content = b"invoice_number;line_name;quantity;line_amount\nA-1;Item;2;\n"

    with pytest.raises(InvalidInvoice, match=r"Row 2: the line has no amount"):
        extractor.extract(content)


# An invoice without lines (a Factur-X MINIMUM, say) as a CSV export writes it: the invoice columns
# filled, every line column empty.
NO_LINES = """invoice_number,issue_date,due_date,type,currency,seller_name,seller_vat_id,buyer_name,payment_iban,purchase_order_reference,total_net,tax_total,total_gross,amount_due,line_id,line_name,quantity,unit_code,net_price,line_amount,vat_category,vat_rate
FA-2026-17,2026-02-03,,invoice,EUR,Le Fournisseur SARL,FR11999999998,Acheteur SA,,,100.00,20.00,120.00,120.00,,,,,,,,
"""  # noqa: E501


def test_an_invoice_without_lines_imports_as_an_invoice_with_no_lines():
    invoice = extractor.extract(NO_LINES.encode())

    assert invoice.invoice_number == "FA-2026-17"
    assert invoice.issue_date == dt.date(2026, 2, 3)
    assert invoice.seller_name == "Le Fournisseur SARL"
    assert invoice.buyer_name == "Acheteur SA"
    assert invoice.lines == []
    assert invoice.line_total is None
    assert invoice.vat_breakdown == []
    assert (invoice.total_net, invoice.tax_total, invoice.total_gross, invoice.amount_due) == (
        Decimal("100.00"),
        Decimal("20.00"),
        Decimal("120.00"),
        Decimal("120.00"),
    )
    assert invoice.warnings == []


def test_a_row_without_line_data_among_lines_is_not_taken_for_a_line():
    content = (
        b"invoice_number;line_name;line_amount;vat_rate;total_gross\n"
        b"A-1;Paper;10,00;19;23,80\n"
        b"A-1;;;;23,80\n"
        b"A-1;Pens;10,00;19;23,80\n"
    )

    invoice = extractor.extract(content)

    assert [(line.line_id, line.name, line.line_amount) for line in invoice.lines] == [
        ("1", "Paper", Decimal("10.00")),
        ("2", "Pens", Decimal("10.00")),
    ]
    assert invoice.total_gross == Decimal("23.80")


def test_an_exported_invoice_without_lines_imports_again_without_lines(db):
    stored = make_invoice(
        invoice_number="EMPTY-1",
        lines=[],
        total_net=Decimal("100.00"),
        tax_total=Decimal("19.00"),
        total_gross=Decimal("119.00"),
        amount_due=Decimal("119.00"),
    )

    again = extractor.extract(write_csv(Invoice.objects.filter(pk=stored.pk).prefetch_related("lines")))

    assert again.invoice_number == "EMPTY-1"
    assert again.lines == []
    assert (again.total_net, again.tax_total, again.total_gross, again.amount_due) == (
        Decimal("100.00"),
        Decimal("19.00"),
        Decimal("119.00"),
        Decimal("119.00"),
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"Dear supplier,\nplease find attached our invoice.\nKind regards\n",
        b"name;city\nAlice;Berlin\n",
        b"invoice_number;comment\nA-1;no amounts here\n",
        b'<?xml version="1.0"?>\n<Invoice>invoice_number;line_amount</Invoice>\n',
        b"%PDF-1.7\ninvoice_number;line_amount\n",
        bytes(range(256)) * 4,
    ],
)
def test_text_and_binary_that_is_not_an_invoice_csv_is_not_claimed(content):
    assert extractor.can_handle(content) is False


def test_no_sample_e_invoice_is_taken_for_a_csv():
    samples = [path for path in SAMPLES.rglob("*") if path.is_file() and path.suffix.lower() in (".xml", ".pdf")]
    assert len(samples) > 40

    claimed = [path.name for path in samples if extractor.can_handle(path.read_bytes())]

    assert claimed == []


def test_extract_of_a_non_csv_raises_invalid_invoice():
    with pytest.raises(InvalidInvoice, match="no invoice number column"):
        extractor.extract(b"Dear supplier,\nplease find attached our invoice.\n")


def test_the_registry_detects_a_csv_export():
    assert extractor.can_handle(GERMAN.encode("cp1252", errors="replace"))
    assert detect_format(ENGLISH_NO_TOTALS.encode()) == "csv"


def test_the_example_in_the_user_docs_reads_as_documented():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text(encoding="utf-8")
    example = docs.split("## CSV", 1)[1].split("### Example\n\n```\n", 1)[1].split("```", 1)[0]

    invoice = extractor.extract(example.encode())

    # docs/formats.md: "net 1,245.00, VAT 236.55 (19 % of 1,245.00), gross and amount due 1,481.55"
    assert invoice.invoice_number == "R-2026-0042"
    assert invoice.issue_date == dt.date(2026, 2, 3)
    assert len(invoice.lines) == 2
    assert (invoice.total_net, invoice.tax_total, invoice.total_gross, invoice.amount_due) == (
        Decimal("1245.00"),
        Decimal("236.55"),
        Decimal("1481.55"),
        Decimal("1481.55"),
    )
