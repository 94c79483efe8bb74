"""Duplicate invoices: the same number from the same seller (blocking), or the same amount a few days apart."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices.extract import extract
from invoices.models import InvoiceStatus, InvoiceType, ValidationRuleSetting
from invoices.validation import RULES, ensure_rule_settings, validate
from tests.invoices.einvoice_reference import SAMPLES
from tests.invoices.invoice_builders import invoice_from_extracted, make_invoice


def run(invoice, *codes):
    return validate(invoice, rules=[RULES[code] for code in codes])


# --- duplicate.number -------------------------------------------------------------------------------------------


def test_the_same_number_from_the_same_seller_in_the_same_year_is_an_error(db):
    first = make_invoice(invoice_number="R-2026-0042", issue_date=dt.date(2026, 2, 3))
    second = make_invoice(invoice_number="R-2026-0042", issue_date=dt.date(2026, 11, 20))
    [finding] = run(second, "duplicate.number")
    assert finding.severity == "error"
    assert f"invoice {first.pk} (R-2026-0042" in finding.message
    assert "issued 2026-02-03" in finding.message
    # The first one is flagged too when it is validated again: neither is the "real" one by itself.
    assert len(run(first, "duplicate.number")) == 1


def test_numbers_and_vat_ids_are_compared_without_spaces_dots_and_case(db):
    make_invoice(invoice_number="r 2026-0042", seller_vat_id="de 136.695.976", issue_date=dt.date(2026, 2, 3))
    second = make_invoice(invoice_number="R2026-0042", seller_vat_id="DE136695976", issue_date=dt.date(2026, 2, 4))
    assert len(run(second, "duplicate.number")) == 1


def test_a_corrected_number_or_seller_is_compared_by_its_new_value(db):
    first = make_invoice(invoice_number="R-1", issue_date=dt.date(2026, 2, 3))
    second = make_invoice(invoice_number="R-2", issue_date=dt.date(2026, 2, 4))
    assert run(second, "duplicate.number") == []

    first.invoice_number = " r-2 "
    first.save(update_fields=["invoice_number"])  # the lookup keys follow a partial save too

    assert len(run(second, "duplicate.number")) == 1


def test_without_vat_ids_the_seller_name_is_compared_ignoring_case(db):
    make_invoice(invoice_number="42", seller_vat_id="", seller_name="Acme Trading Ltd", issue_date=dt.date(2026, 2, 3))
    same = make_invoice(
        invoice_number="42", seller_vat_id="", seller_name="ACME TRADING LTD", issue_date=dt.date(2026, 3, 3)
    )
    other = make_invoice(
        invoice_number="42", seller_vat_id="", seller_name="Other Trading Ltd", issue_date=dt.date(2026, 3, 3)
    )
    assert len(run(same, "duplicate.number")) == 1
    assert run(other, "duplicate.number") == []


@pytest.mark.parametrize(
    "change",
    [
        {"issue_date": dt.date(2025, 2, 3)},  # another year: sellers restart their numbering
        {"seller_vat_id": "FR11999999998"},  # another seller
        {"invoice_number": "R-2026-0043"},
        {"type": InvoiceType.CREDIT_NOTE},  # some sellers number credit notes separately
    ],
)
def test_different_year_seller_number_or_document_type_is_no_duplicate(db, change):
    make_invoice(invoice_number="R-2026-0042", issue_date=dt.date(2026, 2, 3))
    other = make_invoice(**{"invoice_number": "R-2026-0042", "issue_date": dt.date(2026, 5, 1), **change})
    assert run(other, "duplicate.number") == []


@pytest.mark.parametrize("status", [InvoiceStatus.DUPLICATE, InvoiceStatus.FAILED, InvoiceStatus.REJECTED])
def test_duplicate_files_failed_and_rejected_rows_do_not_count(db, status):
    make_invoice(invoice_number="R-7", issue_date=dt.date(2026, 2, 3), status=status)
    assert run(make_invoice(invoice_number="R-7", issue_date=dt.date(2026, 2, 3)), "duplicate.number") == []


def test_an_invoice_without_number_or_date_is_not_compared(db):
    make_invoice(invoice_number="", issue_date=dt.date(2026, 2, 3))
    assert run(make_invoice(invoice_number="", issue_date=dt.date(2026, 2, 3)), "duplicate.number") == []
    make_invoice(invoice_number="R-8", issue_date=None)
    assert run(make_invoice(invoice_number="R-8", issue_date=None), "duplicate.number") == []


def test_the_same_real_invoice_in_ubl_and_in_cii_is_recognised(db):
    # The EN 16931 examples carry the same invoice 12115118 in both syntaxes.
    ubl = extract((SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml").read_bytes())
    cii = extract((SAMPLES / "en16931-cii" / "CII_example1.xml").read_bytes())
    first = invoice_from_extracted(ubl, filename="ubl-tc434-example1.xml")
    second = invoice_from_extracted(cii, filename="CII_example1.xml")
    [finding] = run(second, "duplicate.number")
    assert f"invoice {first.pk} (12115118" in finding.message


# --- duplicate.suspect ------------------------------------------------------------------------------------------


def test_same_seller_same_amount_a_few_days_apart_is_a_suspect(db):
    first = make_invoice(invoice_number="A-1", issue_date=dt.date(2026, 3, 1))
    second = make_invoice(invoice_number="A-1b", issue_date=dt.date(2026, 3, 6))
    [finding] = run(second, "duplicate.suspect")
    assert finding.severity == "warning"
    assert f"invoice {first.pk} (A-1," in finding.message
    assert "178.50 EUR" in finding.message


@pytest.mark.parametrize(
    "change",
    [
        {"issue_date": dt.date(2026, 3, 9)},  # 8 days later: outside the default window of 7
        {"lines": [("100.00", "19"), ("50.01", "19")]},  # another amount
        {"currency": "CHF"},
        {"seller_vat_id": "FR11999999998"},
        {"type": InvoiceType.CREDIT_NOTE},  # a credit note cancelling the invoice has the same amount
        {"invoice_number": "A-1"},  # the same number is duplicate.number's finding
    ],
)
def test_no_suspect_outside_the_window_or_with_another_amount_seller_or_type(db, change):
    make_invoice(invoice_number="A-1", issue_date=dt.date(2026, 3, 1))
    other = make_invoice(**{"invoice_number": "A-2", "issue_date": dt.date(2026, 3, 1), **change})
    assert run(other, "duplicate.suspect") == []


def test_the_suspect_window_is_tunable(db):
    make_invoice(invoice_number="A-1", issue_date=dt.date(2026, 3, 1))
    later = make_invoice(invoice_number="A-2", issue_date=dt.date(2026, 3, 20), total_gross=Decimal("178.50"))
    assert run(later, "duplicate.suspect") == []
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="duplicate.suspect").update(parameters={"window_days": 30})
    assert len(run(later, "duplicate.suspect")) == 1
