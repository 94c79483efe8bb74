"""Missing fields, low-confidence reads, dates, currency codes, VAT id and IBAN check digits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoices.extract import extract
from invoices.models import ValidationRuleSetting
from invoices.validation import RULE_ERROR, RULES, ensure_rule_settings, validate
from tests.invoices.einvoice_reference import SAMPLES
from tests.invoices.invoice_builders import invoice_from_extracted, make_invoice


def run(invoice, *codes):
    return validate(invoice, rules=[RULES[code] for code in codes])


def days_from_today(days: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=days)


# --- fields.missing ---------------------------------------------------------------------------------------------


def test_missing_key_fields_are_listed_in_one_error(db):
    invoice = make_invoice(invoice_number="", seller_name="  ", total_gross=None)
    [finding] = run(invoice, "fields.missing")
    assert finding.severity == "error"
    assert finding.message == "Missing: invoice number (BT-1), seller name (BT-27), total with VAT (BT-112)."


def test_an_invoice_with_its_key_fields_is_not_flagged_for_optional_ones(db):
    assert run(make_invoice(due_date=None, buyer_name="", payment_iban=""), "fields.missing") == []


def test_the_required_fields_are_tunable(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="fields.missing").update(
        parameters={"fields": ["invoice_number", "due_date", "payment_iban"]}
    )
    [finding] = run(make_invoice(due_date=None, payment_iban=""), "fields.missing")
    assert finding.message == "Missing: payment due date (BT-9), IBAN (BT-84)."


def test_an_unknown_field_name_in_the_parameters_is_a_rule_error(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="fields.missing").update(parameters={"fields": ["invoice_nr"]})
    [finding] = run(make_invoice(), "fields.missing")
    assert finding.code == RULE_ERROR
    assert "'invoice_nr'" in finding.message


# --- extraction.low_confidence ----------------------------------------------------------------------------------


def test_a_guessed_key_field_of_a_pdf_needs_a_person(db):
    invoice = make_invoice(
        format="pdf-text",
        confidence={"invoice_number": 0.9, "issue_date": 0.5, "total_gross": 0.45, "seller_name": 0.75},
    )
    [finding] = run(invoice, "extraction.low_confidence")
    assert finding.severity == "error"
    assert "issue date (BT-2) (0.50)" in finding.message
    assert "total with VAT (BT-112) (0.45)" in finding.message
    assert "seller name" not in finding.message
    assert "PDF" in finding.message


def test_confident_reads_and_fields_not_found_are_not_low_confidence(db):
    # A field that was not found has confidence 0 but no value: fields.missing reports it, not this rule.
    invoice = make_invoice(format="pdf-text", due_date=None, confidence={"due_date": 0.0, "total_gross": 0.9})
    assert run(invoice, "extraction.low_confidence") == []


def test_the_real_pdf_whose_amount_due_is_assumed_is_sent_to_review(db):
    pdf = (SAMPLES / "unstructured-pdf" / "hetzner-2016-01-19.pdf").read_bytes()
    invoice = invoice_from_extracted(extract(pdf), filename="hetzner.pdf")
    [finding] = run(invoice, "extraction.low_confidence")
    assert "amount due (BT-115) (0.50)" in finding.message
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="extraction.low_confidence").update(parameters={"threshold": "0.4"})
    assert run(invoice, "extraction.low_confidence") == []


# --- dates ------------------------------------------------------------------------------------------------------


def test_due_date_before_issue_date_is_an_error(db):
    [finding] = run(
        make_invoice(issue_date=days_from_today(-5), due_date=days_from_today(-6)), "dates.due_before_issue"
    )
    assert finding.severity == "error"
    assert "before the issue date" in finding.message
    assert (
        run(make_invoice(issue_date=days_from_today(-5), due_date=days_from_today(-5)), "dates.due_before_issue") == []
    )


def test_issue_date_in_the_future_is_an_error_after_the_grace_days(db):
    assert run(make_invoice(issue_date=days_from_today(1), due_date=None), "dates.issue_in_future") == []
    [finding] = run(make_invoice(issue_date=days_from_today(2), due_date=None), "dates.issue_in_future")
    assert "in the future" in finding.message
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="dates.issue_in_future").update(parameters={"grace_days": 0})
    assert len(run(make_invoice(issue_date=days_from_today(1), due_date=None), "dates.issue_in_future")) == 1


def test_an_old_invoice_is_a_warning(db):
    [finding] = run(make_invoice(issue_date=days_from_today(-400)), "dates.issue_too_old")
    assert finding.severity == "warning"
    assert "400 days ago" in finding.message
    assert run(make_invoice(issue_date=days_from_today(-365)), "dates.issue_too_old") == []


def test_date_rules_skip_invoices_without_dates(db):
    invoice = make_invoice(issue_date=None, due_date=None)
    assert run(invoice, "dates.due_before_issue", "dates.issue_in_future", "dates.issue_too_old") == []


# --- currency.iso4217 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["EUR", "HUF", "CHF", "SEK", "JPY"])
def test_iso_currency_codes_pass(db, code):
    assert run(make_invoice(currency=code), "currency.iso4217") == []


@pytest.mark.parametrize(("code", "hint"), [("EUX", False), ("HRK", False), ("eur", True)])
def test_unknown_or_withdrawn_currency_codes_are_errors(db, code, hint):
    # HRK was withdrawn when Croatia adopted the euro on 1 January 2023.
    [finding] = run(make_invoice(currency=code), "currency.iso4217")
    assert f"'{code}'" in finding.message
    assert ("did you mean EUR?" in finding.message) is hint


# --- seller.vat_id_checksum -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vat_id",
    [
        "DE136695976",
        "de 136 695 976",
        "NL8200.98.395.B.01",
        "FR11999999998",
        "ATU13585627",
        "EL094259216",
        "CHE-116.281.710 MWST",
    ],
)
def test_valid_vat_ids_pass(db, vat_id):
    assert run(make_invoice(seller_vat_id=vat_id), "seller.vat_id_checksum") == []


def test_a_vat_id_with_wrong_check_digits_is_an_error(db):
    [finding] = run(make_invoice(seller_vat_id="DE136695975"), "seller.vat_id_checksum")
    assert finding.severity == "error"
    assert finding.message == "The seller VAT id DE136695975 has wrong check digits."


def test_a_malformed_vat_id_says_what_is_wrong(db):
    [finding] = run(make_invoice(seller_vat_id="DE0815"), "seller.vat_id_checksum")
    assert "not a valid DE VAT id" in finding.message


def test_a_vat_id_without_prefix_is_read_with_the_seller_country(db):
    assert run(make_invoice(seller_vat_id="136695976", seller_country="DE"), "seller.vat_id_checksum") == []
    assert len(run(make_invoice(seller_vat_id="136695975", seller_country="DE"), "seller.vat_id_checksum")) == 1


def test_vat_ids_of_countries_stdnum_does_not_know_are_not_checked(db):
    assert run(make_invoice(seller_vat_id="US123456", seller_country="US"), "seller.vat_id_checksum") == []
    assert run(make_invoice(seller_vat_id="", seller_country="DE"), "seller.vat_id_checksum") == []


# --- payment.iban_checksum --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account", ["DE88200800000970375700", "NL57 RABO 0107 3075 10", "NO9386011117947", "1234567891234", ""]
)
def test_valid_ibans_and_national_account_numbers_pass(db, account):
    assert run(make_invoice(payment_iban=account), "payment.iban_checksum") == []


def test_an_iban_with_wrong_check_digits_is_an_error(db):
    [finding] = run(make_invoice(payment_iban="DE89200800000970375700"), "payment.iban_checksum")
    assert finding.severity == "error"
    assert "wrong check digits" in finding.message


@pytest.mark.parametrize(
    ("account", "words"),
    [
        ("IBAN", "is not an IBAN"),
        ("XX", "is not an IBAN"),
        ("QQ88200800000970375700", "not a country that uses IBANs"),
        ("DE8820080000097037570", "wrong check digits"),
    ],
)
def test_things_that_are_no_iban_are_errors(db, account, words):
    [finding] = run(make_invoice(payment_iban=account), "payment.iban_checksum")
    assert words in finding.message


def test_amounts_in_messages_keep_two_decimals(db):
    # Money is Decimal all the way: 0.1 + 0.2 must print as 0.30, not 0.30000000000000004.
    invoice = make_invoice(lines=[("0.10", "0"), ("0.20", "0")], line_total=Decimal("0.40"))
    [finding] = run(invoice, "totals.lines_sum")
    assert "0.30 EUR" in finding.message
