"""Arithmetic rules: lines vs BT-106, BT-109 from lines, net + VAT = gross, amount due, VAT breakdown."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoices.extract import extract
from invoices.models import InvoiceType
from invoices.validation import RULES, validate
from tests.invoices.einvoice_reference import sample_files, sample_id
from tests.invoices.invoice_builders import invoice_from_extracted, make_invoice

ARITHMETIC = [
    "totals.lines_sum",
    "totals.net_from_lines",
    "totals.net_tax_gross",
    "totals.amount_due",
    "vat.breakdown_sum",
    "vat.breakdown_rate",
]


def run(invoice, *codes):
    """Findings of the named rules only."""
    return validate(invoice, rules=[RULES[code] for code in codes])


def D(text: str) -> Decimal:
    return Decimal(text)


# --- totals.lines_sum -------------------------------------------------------------------------------------------


def test_lines_that_do_not_add_up_to_bt106_are_an_error(db):
    invoice = make_invoice(line_total=D("160.00"))  # the lines are 100.00 + 50.00
    [finding] = run(invoice, "totals.lines_sum")
    assert finding.severity == "error"
    assert "150.00 EUR" in finding.message and "160.00 EUR" in finding.message


def test_lines_may_differ_from_bt106_by_a_cent_per_line(db):
    three_lines = [("10.00", "19"), ("10.00", "19"), ("10.00", "19")]
    assert run(make_invoice(lines=three_lines, line_total=D("30.03")), "totals.lines_sum") == []
    assert len(run(make_invoice(lines=three_lines, line_total=D("30.04")), "totals.lines_sum")) == 1


def test_lines_sum_is_skipped_without_bt106_or_without_lines(db):
    assert run(make_invoice(line_total=None), "totals.lines_sum") == []
    assert run(make_invoice(lines=[], line_total=D("99.00")), "totals.lines_sum") == []


# --- totals.net_from_lines --------------------------------------------------------------------------------------


def test_net_must_be_lines_minus_allowances_plus_charges(db):
    # 150.00 - 20.00 + 5.00 = 135.00
    good = make_invoice(allowance_total=D("20.00"), charge_total=D("5.00"), total_net=D("135.00"))
    assert run(good, "totals.net_from_lines") == []
    bad = make_invoice(allowance_total=D("20.00"), charge_total=D("5.00"), total_net=D("150.00"))
    [finding] = run(bad, "totals.net_from_lines")
    assert "135.00 EUR" in finding.message


def test_net_from_lines_adds_the_lines_up_when_bt106_is_not_stated(db):
    assert run(make_invoice(line_total=None), "totals.net_from_lines") == []
    assert len(run(make_invoice(line_total=None, total_net=D("151.00")), "totals.net_from_lines")) == 1


# --- totals.net_tax_gross ---------------------------------------------------------------------------------------


def test_net_plus_vat_must_be_gross(db):
    [finding] = run(make_invoice(total_gross=D("180.00")), "totals.net_tax_gross")
    assert "178.50 EUR" in finding.message and "180.00 EUR" in finding.message
    assert run(make_invoice(total_gross=D("178.51")), "totals.net_tax_gross") == []  # one cent of rounding


def test_net_tax_gross_is_skipped_when_an_amount_is_missing(db):
    assert run(make_invoice(tax_total=None, total_gross=D("999.00")), "totals.net_tax_gross") == []


# --- totals.amount_due ------------------------------------------------------------------------------------------


def test_amount_due_is_gross_minus_prepaid_plus_rounding(db):
    good = make_invoice(prepaid_amount=D("78.50"), rounding_amount=D("0.01"), amount_due=D("100.01"))
    assert run(good, "totals.amount_due") == []
    bad = make_invoice(prepaid_amount=D("78.50"), amount_due=D("178.50"))
    [finding] = run(bad, "totals.amount_due")
    assert "100.00 EUR" in finding.message


def test_amount_due_of_a_minimum_profile_without_prepaid_is_not_checked(db):
    # Factur-X MINIMUM has no paid amount (BT-113), so a due amount below the gross is normal there.
    minimum = make_invoice(profile="urn:factur-x.eu:1p0:minimum", amount_due=D("100.00"))
    assert run(minimum, "totals.amount_due") == []
    assert len(run(make_invoice(profile="urn:cen.eu:en16931:2017", amount_due=D("100.00")), "totals.amount_due")) == 1


# --- credit notes -----------------------------------------------------------------------------------------------


def test_a_negative_credit_note_is_not_flagged_for_being_negative(db):
    invoice = make_invoice(type=InvoiceType.CREDIT_NOTE, lines=[("-100.00", "19"), ("-50.00", "19")])
    assert invoice.total_gross == D("-178.50")
    assert run(invoice, *ARITHMETIC) == []


def test_a_credit_note_with_positive_totals_and_negative_lines_is_consistent(db):
    invoice = make_invoice(
        type=InvoiceType.CREDIT_NOTE,
        lines=[("-100.00", "19"), ("-50.00", "19")],
        line_total=D("150.00"),
        total_net=D("150.00"),
        tax_total=D("28.50"),
        total_gross=D("178.50"),
        amount_due=D("178.50"),
    )
    assert run(invoice, *ARITHMETIC) == []


def test_a_credit_note_whose_totals_do_not_add_up_is_still_flagged(db):
    invoice = make_invoice(
        type=InvoiceType.CREDIT_NOTE, lines=[("-100.00", "19"), ("-50.00", "19")], total_gross=D("-200.00")
    )
    assert [f.code for f in run(invoice, *ARITHMETIC)] == ["totals.net_tax_gross", "totals.amount_due"]


def test_a_negative_invoice_must_be_consistent_in_its_own_signs(db):
    # An invoice (not a credit note) does not get the credit note's sign leniency.
    invoice = make_invoice(lines=[("-100.00", "19")], total_gross=D("119.00"))
    assert "totals.net_tax_gross" in [f.code for f in run(invoice, *ARITHMETIC)]


# --- vat.breakdown_sum / vat.breakdown_rate ---------------------------------------------------------------------


def test_breakdown_tax_amounts_must_add_up_to_the_vat_total(db):
    breakdown = [
        {"category": "S", "rate": "19", "taxable_amount": "100.00", "tax_amount": "19.00"},
        {"category": "S", "rate": "7", "taxable_amount": "50.00", "tax_amount": "3.50"},
    ]
    invoice = make_invoice(
        lines=[("100.00", "19"), ("50.00", "7")],
        vat_breakdown=breakdown,
        tax_total=D("25.00"),
        total_gross=D("175.00"),
        amount_due=D("175.00"),
    )
    [finding] = run(invoice, "vat.breakdown_sum")
    assert "22.50 EUR" in finding.message and "25.00 EUR" in finding.message
    fixed = make_invoice(lines=[("100.00", "19"), ("50.00", "7")], vat_breakdown=breakdown)
    assert run(fixed, "vat.breakdown_sum") == []


def test_breakdown_taxable_amounts_must_add_up_to_the_net_total(db):
    breakdown = [{"category": "S", "rate": "19", "taxable_amount": "140.00", "tax_amount": "28.50"}]
    [finding] = run(make_invoice(vat_breakdown=breakdown), "vat.breakdown_sum")
    assert "taxable amounts add up to 140.00 EUR" in finding.message


def test_breakdown_row_tax_must_match_its_rate(db):
    wrong = [{"category": "S", "rate": "19", "taxable_amount": "150.00", "tax_amount": "21.00"}]
    [finding] = run(
        make_invoice(vat_breakdown=wrong, tax_total=D("21.00"), total_gross=D("171.00"), amount_due=D("171.00")),
        "vat.breakdown_rate",
    )
    assert "19 %" in finding.message and "28.50 EUR" in finding.message and "21.00 EUR" in finding.message


def test_breakdown_rate_accepts_the_en16931_rounding_of_one_unit(db):
    # The Hungarian EN 16931 example rounds 27 % of 69180.00 (18678.60) to whole forints: 18679.00.
    row = [{"category": "S", "rate": "27.00", "taxable_amount": "69180.00", "tax_amount": "18679.00"}]
    assert run(make_invoice(currency="HUF", vat_breakdown=row), "vat.breakdown_rate") == []


def test_breakdown_row_without_rate_must_carry_no_tax(db):
    outside_scope = [{"category": "O", "rate": None, "taxable_amount": "150.00", "tax_amount": "0.00"}]
    assert run(make_invoice(vat_breakdown=outside_scope), "vat.breakdown_rate") == []
    taxed = [{"category": "O", "rate": None, "taxable_amount": "150.00", "tax_amount": "5.00"}]
    [finding] = run(make_invoice(vat_breakdown=taxed), "vat.breakdown_rate")
    assert "category O" in finding.message and "no rate" in finding.message


def test_unreadable_breakdown_amounts_are_skipped_not_guessed(db):
    garbled = [{"category": "S", "rate": "19", "taxable_amount": "n/a", "tax_amount": "28.50"}]
    assert run(make_invoice(vat_breakdown=garbled), "vat.breakdown_rate") == []


# --- the official examples are consistent -----------------------------------------------------------------------

OFFICIAL_EXAMPLES = [*sample_files("en16931-ubl"), *sample_files("en16931-cii"), *sample_files("peppol-bis3")]


@pytest.mark.parametrize("path", OFFICIAL_EXAMPLES, ids=sample_id)
def test_the_official_en16931_and_peppol_examples_pass_the_arithmetic_rules(db, path):
    invoice = invoice_from_extracted(extract(path.read_bytes()), filename=path.name)
    assert run(invoice, *ARITHMETIC) == []


def test_a_zugferd_correction_whose_amount_due_is_zero_is_flagged(db):
    # ZUGFeRD 1.0 had no BR-CO-16; this real correction states total -8.79 but amount due 0.00.
    [path] = [p for p in sample_files("facturx-zugferd") if p.name == "ZUGFeRD_1p0_COMFORT_Rechnungskorrektur.pdf"]
    invoice = invoice_from_extracted(extract(path.read_bytes()), filename=path.name)
    [finding] = run(invoice, *ARITHMETIC)
    assert finding.code == "totals.amount_due"
    assert "-8.79 EUR" in finding.message
