"""How well does the plain-PDF text extractor read invoices? Ground truth is the XML embedded in Factur-X /
ZUGFeRD PDFs, which the text extractor never looks at.

Usage (from the repository root):

    .venv/bin/python bench/pdf_text_accuracy.py [FOLDER ...] [--files]

Default folder: the Factur-X / ZUGFeRD samples in shared/samples/einvoices/facturx-zugferd/.
For every PDF with embedded XML it calls PdfTextExtractor directly (so the embedded XML is
ignored), reads the same fields from the XML with XPath (CII 2.x and ZUGFeRD 1.0
namespaces), and prints fields matched / fields expected, per field and per folder, plus
files per second. A field counts as expected only where the XML has a value.

Matching rules: text fields compare after folding case and whitespace; the seller name
also matches when one name contains the other as whole words (the XML may say "Au bon
moulin" where the letterhead says "Au bon moulin SARL"); VAT ids compare without spaces;
amounts compare as decimals; dates as dates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import facturx
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from invoices.extract.base import InvalidInvoice  # noqa: E402
from invoices.extract.pdf_text import PdfTextExtractor  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "samples" / "einvoices"
DEFAULT_FOLDERS = [SAMPLES / "facturx-zugferd"]

FIELDS = (
    "invoice_number",
    "issue_date",
    "currency",
    "seller_name",
    "seller_vat_id",
    "total_net",
    "tax_total",
    "total_gross",
    "amount_due",
)

# Namespaces of the two generations: CII D16B (Factur-X / ZUGFeRD 2.x) and ZUGFeRD 1.0.
NAMESPACES = {
    "cii": {
        "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
        "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    },
    "zugferd1": {
        "rsm": "urn:ferd:CrossIndustryDocument:invoice:1p0",
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12",
        "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15",
    },
}
XPATHS = {
    "cii": {
        "invoice_number": "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID",
        "issue_date": "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
        "settlement": "//ram:ApplicableHeaderTradeSettlement",
        "summation": "//ram:SpecifiedTradeSettlementHeaderMonetarySummation",
    },
    "zugferd1": {
        "invoice_number": "/rsm:CrossIndustryDocument/rsm:HeaderExchangedDocument/ram:ID",
        "issue_date": "/rsm:CrossIndustryDocument/rsm:HeaderExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
        "settlement": "//ram:ApplicableSupplyChainTradeSettlement",
        "summation": "//ram:SpecifiedTradeSettlementMonetarySummation",
    },
}


def _text(tree: etree._Element, path: str, ns: dict[str, str]) -> str:
    found = tree.xpath(path, namespaces=ns)
    return " ".join((found[0].text or "").split()) if found else ""


def ground_truth(pdf_bytes: bytes) -> dict[str, object] | None:
    """The fields of the embedded XML, or None when the PDF has none we can read."""
    try:
        _, xml = facturx.get_xml_from_pdf(pdf_bytes, check_xsd=False)
    except Exception:  # a PDF without (readable) XML is no ground truth
        return None
    if not xml:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    tree = etree.fromstring(xml.removeprefix(b"\xef\xbb\xbf"), parser=parser)
    generation = next((g for g, ns in NAMESPACES.items() if tree.tag.startswith(f"{{{ns['rsm']}}}")), None)
    if generation is None:
        return None
    ns, paths = NAMESPACES[generation], XPATHS[generation]
    summation = paths["summation"]
    issue = _text(tree, paths["issue_date"], ns)
    truth: dict[str, object] = {
        "invoice_number": _text(tree, paths["invoice_number"], ns),
        "issue_date": dt.datetime.strptime(issue, "%Y%m%d").date() if re.fullmatch(r"\d{8}", issue) else None,
        "currency": _text(tree, f"{paths['settlement']}/ram:InvoiceCurrencyCode", ns),
        "seller_name": _text(tree, "//ram:SellerTradeParty/ram:Name", ns),
        "seller_vat_id": _text(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ns),
    }
    for name, element in (
        ("total_net", "TaxBasisTotalAmount"),
        ("tax_total", "TaxTotalAmount"),
        ("total_gross", "GrandTotalAmount"),
        ("amount_due", "DuePayableAmount"),
    ):
        value = _text(tree, f"{summation}/ram:{element}", ns)
        truth[name] = Decimal(value) if value else None
    return truth


def _fold(value: str) -> str:
    return " ".join(re.sub(r"[^\w&]+", " ", value).casefold().split())


def matches(field: str, extracted: object, expected: object) -> bool:
    """Does the extracted value match the ground truth (rules in the module docstring)?"""
    if extracted in (None, ""):
        return False
    if field == "seller_name":
        a, b = _fold(str(extracted)), _fold(str(expected))
        return a == b or f" {a} " in f" {b} " or f" {b} " in f" {a} "
    if field == "seller_vat_id":
        return re.sub(r"[\s.-]", "", str(extracted)).upper() == re.sub(r"[\s.-]", "", str(expected)).upper()
    if field in ("invoice_number", "currency"):
        return _fold(str(extracted)) == _fold(str(expected))
    return extracted == expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, default=DEFAULT_FOLDERS)
    parser.add_argument("--files", action="store_true", help="print each file's misses")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # pypdf reports every repaired cross-reference

    extractor = PdfTextExtractor()
    matched: dict[str, Counter[str]] = defaultdict(Counter)
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    files_per_group: Counter[str] = Counter()
    files = errors = 0
    elapsed = cpu = 0.0
    for folder in args.folders:
        for path in sorted(folder.rglob("*.pdf")):
            content = path.read_bytes()
            truth = ground_truth(content)
            if truth is None:
                continue
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                invoice = extractor.extract(content)
            except InvalidInvoice as exc:
                invoice, errors = None, errors + 1
                print(f"{path.name}: {exc}")
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
            files += 1
            group = str(path.parent.relative_to(SAMPLES) if path.is_relative_to(SAMPLES) else path.parent)
            files_per_group[group] += 1
            misses = []
            for field in FIELDS:
                if truth[field] in (None, ""):
                    continue
                expected[group][field] += 1
                value = getattr(invoice, field) if invoice else None
                if matches(field, value, truth[field]):
                    matched[group][field] += 1
                else:
                    misses.append(f"{field}: got {value!s} want {truth[field]!s}")
            if args.files and misses:
                print(f"{path.name}\n    " + "\n    ".join(misses))

    groups = sorted(expected)
    matched["all folders"] = sum((matched[group] for group in groups), Counter())
    expected["all folders"] = sum((expected[group] for group in groups), Counter())
    files_per_group["all folders"] = files
    columns = [*groups, "all folders"] if len(groups) > 1 else groups
    print("\nfields matched / fields expected")
    print(f"{'':16}" + "".join(f"{column:>24}" for column in columns))
    for field in [*FIELDS, None]:
        cells = []
        for column in columns:
            got = sum(matched[column].values()) if field is None else matched[column][field]
            want = sum(expected[column].values()) if field is None else expected[column][field]
            cells.append(f"{got} / {want}" + (f" ({100 * got / want:.1f} %)" if field is None and want else ""))
        print(f"{field or 'all fields':16}" + "".join(f"{cell:>24}" for cell in cells))
    print(f"{'PDFs':16}" + "".join(f"{files_per_group[column]:>24}" for column in columns))
    # CPU time is what one core spends; wall time also counts waiting for a busy machine.
    print(
        f"\n{files} files with embedded XML, {errors} unreadable, "
        f"{files / elapsed if elapsed else 0:.1f} files/s wall, {files / cpu if cpu else 0:.1f} files/s of CPU time "
        "(text extraction + heuristics, one process)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
