"""The compliance scan and the duplicate.number validation rule give one answer:
both ask invoices.selectors (normalised seller and number, document type, issue
year, the same statuses left out). The scan used to match the raw VAT id and
number only."""

from __future__ import annotations

from datetime import date

import pytest

from invoices.validation.rules.duplicates import DuplicateNumberRule
from monitoring.compliance import invoices_breaking
from monitoring.models import PolicyRule
from tests.monitoring.test_compliance import make_invoice

pytestmark = pytest.mark.django_db

FIRST = {"seller_vat_id": "DE123456789", "invoice_number": "INV-1", "issue_date": date(2026, 3, 1)}
# (what the later invoice changes, whether it is a duplicate of the first)
CASES = {
    "the same invoice again": ({}, True),
    "number written with other spaces and case": ({"invoice_number": " inv- 1"}, True),
    "a different number": ({"invoice_number": "INV-2"}, False),
    "VAT id written with a space": ({"seller_vat_id": "DE 123456789"}, True),
    "same number in another year": ({"issue_date": date(2027, 3, 1)}, False),
    "a credit note with the same number": ({"type": "credit_note"}, False),
    "another seller": ({"seller_vat_id": "FR12345678901"}, False),
    "no issue date": ({"issue_date": None}, False),
}


@pytest.mark.parametrize("name", CASES)
def test_compliance_and_validation_agree_on_each_duplicate_case(name):
    changes, duplicate = CASES[name]
    make_invoice(**FIRST)
    later = make_invoice(**{**FIRST, **changes})
    rule = PolicyRule.objects.create(name="duplicate", kind="suspected_duplicate")

    validation_says = bool(DuplicateNumberRule().check(later, {}))
    compliance_says = invoices_breaking(rule).filter(pk=later.pk).exists()
    assert (validation_says, compliance_says) == (duplicate, duplicate)


@pytest.mark.parametrize("status", ["duplicate", "failed", "rejected"])
def test_neither_counts_an_earlier_copy_that_is_out_of_scope(status):
    make_invoice(**FIRST, status=status)
    later = make_invoice(**FIRST)
    rule = PolicyRule.objects.create(name="duplicate", kind="suspected_duplicate")
    assert not DuplicateNumberRule().check(later, {})
    assert not invoices_breaking(rule).filter(pk=later.pk).exists()
