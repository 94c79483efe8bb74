"""validate(): settings rows, switching rules off, severity and parameter overrides, failing rules."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import IntegrityError

from invoices.models import Severity, ValidationRuleSetting
from invoices.validation import RULE_ERROR, RULES, Rule, ensure_rule_settings, validate
from tests.invoices.invoice_builders import make_invoice, make_vendor

DOCS = Path(__file__).resolve().parents[2] / "docs" / "invoices.md"


def codes(findings) -> list[str]:
    return [finding.code for finding in findings]


def test_a_clean_invoice_from_a_known_vendor_has_no_findings(db):
    make_vendor()
    assert validate(make_invoice()) == []


def test_the_first_run_creates_one_settings_row_per_rule_with_its_defaults(db):
    assert ValidationRuleSetting.objects.count() == 0
    validate(make_invoice())
    rows = {row.code: row for row in ValidationRuleSetting.objects.all()}
    assert set(rows) == set(RULES)
    approval = rows["approval.threshold"]
    assert approval.enabled is True
    assert approval.severity == "error"
    assert approval.parameters == {"limit": "10000.00", "limits_by_currency": {}}
    assert "needs approval" in approval.description or "need approval" in approval.description
    assert rows["duplicate.suspect"].severity == "warning"


def test_a_disabled_rule_produces_nothing(db):
    invoice = make_invoice(currency="EUX")
    assert "currency.iso4217" in codes(validate(invoice))
    ValidationRuleSetting.objects.filter(code="currency.iso4217").update(enabled=False)
    assert "currency.iso4217" not in codes(validate(invoice))


def test_a_severity_override_is_applied(db):
    invoice = make_invoice()  # no vendor in the master: vendor.unknown, a warning by default
    [unknown] = [f for f in validate(invoice) if f.code == "vendor.unknown"]
    assert unknown.severity == "warning"
    ValidationRuleSetting.objects.filter(code="vendor.unknown").update(severity=Severity.ERROR)
    [unknown] = [f for f in validate(invoice) if f.code == "vendor.unknown"]
    assert unknown.severity == "error"


def test_a_tuned_parameter_changes_the_outcome(db):
    make_vendor()
    invoice = make_invoice()  # gross 178.50, far below the default limit of 10000.00
    assert validate(invoice) == []
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="approval.threshold").update(parameters={"limit": "100.00"})
    [finding] = validate(invoice)
    assert finding.code == "approval.threshold"
    assert "needs approval" in finding.message
    assert "178.50 EUR" in finding.message


def test_operator_values_are_kept_and_missing_parameter_keys_get_defaults(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="extraction.low_confidence").update(
        parameters={"threshold": "0.95"}, enabled=False, severity="warning"
    )
    row = ensure_rule_settings()["extraction.low_confidence"]
    assert row.enabled is False
    assert row.severity == "warning"
    assert row.parameters["threshold"] == "0.95"
    assert "invoice_number" in row.parameters["fields"]  # the key it lacked, with the default


def test_parameters_that_lack_a_key_still_run_with_the_default(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="approval.threshold").update(parameters={})
    make_vendor()
    invoice = make_invoice(lines=[("20000.00", "19")])
    assert codes(validate(invoice)) == ["approval.threshold"]
    # The row shows the knob again, so operators see what they can tune.
    assert ValidationRuleSetting.objects.get(code="approval.threshold").parameters == {
        "limit": "10000.00",
        "limits_by_currency": {},
    }


def test_a_nonsense_parameter_is_reported_as_rule_error_and_the_other_rules_still_run(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code="approval.threshold").update(parameters={"limit": "ten thousand"})
    invoice = make_invoice(currency="EUX")
    findings = validate(invoice)
    [error] = [f for f in findings if f.code == RULE_ERROR]
    assert error.severity == "warning"
    assert "approval.threshold" in error.message
    assert "'limit'" in error.message and "ten thousand" in error.message
    assert "currency.iso4217" in codes(findings)


class ExplodingRule(Rule):
    code = "test.explodes"
    description = "Always fails."

    def check(self, invoice, params):
        raise ZeroDivisionError("division by zero")


class IntegrityBreakingRule(Rule):
    code = "test.breaks_a_query"
    description = "Makes the database refuse a write."
    uses_database = True

    def check(self, invoice, params):
        ValidationRuleSetting.objects.create(code="test.breaks_a_query", severity="error")  # the code exists
        return []


def test_a_rule_that_raises_gives_one_rule_error_naming_it(db):
    invoice = make_invoice(currency="EUX")
    findings = validate(invoice, rules=[ExplodingRule(), RULES["currency.iso4217"]])
    assert codes(findings) == [RULE_ERROR, "currency.iso4217"]
    assert "test.explodes" in findings[0].message
    assert "division by zero" in findings[0].message


def test_a_failed_query_in_one_rule_does_not_break_the_rules_after_it(db):
    make_invoice(invoice_number="R-1")
    invoice = make_invoice(invoice_number="R-1")
    findings = validate(invoice, rules=[IntegrityBreakingRule(), RULES["duplicate.number"]])
    assert codes(findings) == [RULE_ERROR, "duplicate.number"]
    assert IntegrityError.__name__ in findings[0].message


def test_findings_come_in_rule_order_with_the_configured_severity(db):
    invoice = make_invoice(currency="EUX", lines=[("20000.00", "19")], tax_total=Decimal("1.00"))
    found = codes(validate(invoice))
    order = list(RULES)
    assert found == sorted(found, key=order.index)
    assert {"currency.iso4217", "approval.threshold", "totals.net_tax_gross"} <= set(found)


def test_the_docs_list_every_rule_with_its_default_severity(db):
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Validation rules", 1)[1].split("\n## ", 1)[0]
    for code, rule in RULES.items():
        row = re.search(rf"^\|\s*`{re.escape(code)}`\s*\|\s*(\w+)\s*\|", section, re.MULTILINE)
        assert row, f"{code} is not documented in docs/invoices.md"
        assert row.group(1) == rule.default_severity, f"{code}: documented severity differs"
    assert f"`{RULE_ERROR}`" in section


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_every_rule_has_a_description_and_a_default_severity(rule):
    assert rule.description.strip()
    assert rule.default_severity in Severity.values
    assert re.fullmatch(r"[a-z][a-z0-9]*\.[a-z_0-9]+", rule.code)
