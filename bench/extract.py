"""Throughput of invoice extraction, against the bare parsing step beneath it, in one process.

Run: .venv/bin/python bench/extract.py [--seconds 1.0]

For each group of sample files it measures files per CPU-second (one core) of
`extract()` and of the step it cannot avoid (XML: `lxml.etree.fromstring` on the same
bytes; Factur-X PDF: `facturx.get_xml_from_pdf`), interleaving the two and keeping
the best of several rounds, and prints a table with the targets. Needs no database
and no Django settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import facturx
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoices.extract import extract  # noqa: E402  (needs the project root on sys.path)

SAMPLES = ROOT.parent / "shared" / "samples" / "einvoices"
BIG_UBL = "FT_G2G_TD01_con_Allegato__Bonifico_e_Split_Payment.xml"
XML_TARGET = 2000.0  # invoices per second on one core
PDF_TARGET_RATIO = 0.7  # of the bare factur-x step


def _files(*patterns: str, exclude: str = "") -> list[bytes]:
    paths = sorted(p for pattern in patterns for p in SAMPLES.glob(pattern) if p.name != exclude)
    return [p.read_bytes() for p in paths]


def _bare_xml(content: bytes) -> None:
    etree.fromstring(content)


def _bare_pdf(content: bytes) -> None:
    facturx.get_xml_from_pdf(content, check_xsd=False)


def _rate(step: Callable[[bytes], object], files: list[bytes], seconds: float) -> float:
    """Files per CPU-second of `step` over `files`, looping for about `seconds`.

    CPU time of this process, not wall time: the figure is "per core", and other
    work on a shared machine then does not count against it.
    """
    done, started = 0, time.process_time()
    while True:
        for content in files:
            step(content)
        done += len(files)
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return done / elapsed


def _best_rates(step, bare, files, seconds: float, rounds: int = 5) -> tuple[float, float]:
    best_step = best_bare = 0.0
    for _ in range(rounds):
        best_bare = max(best_bare, _rate(bare, files, seconds / rounds))
        best_step = max(best_step, _rate(step, files, seconds / rounds))
    return best_step, best_bare


def main() -> None:
    """Measure every group and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="measuring time per group and step")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # factur-x logs a line per PDF

    groups = [
        ("UBL (EN 16931 + Peppol)", _files("en16931-ubl/*", "peppol-bis3/*", exclude=BIG_UBL), _bare_xml, "xml"),
        ("UBL 3.3 MB with attachment", _files(f"en16931-ubl/{BIG_UBL}"), _bare_xml, "info"),
        ("CII (EN 16931 + Factur-X XML)", _files("en16931-cii/*", "facturx-zugferd/*.xml"), _bare_xml, "xml"),
        ("Factur-X / ZUGFeRD 2 PDF", _files("facturx-zugferd/[!Z]*.pdf"), _bare_pdf, "pdf"),
        ("ZUGFeRD 1.0 PDF", _files("facturx-zugferd/ZUGFeRD_1p0*.pdf"), _bare_pdf, "pdf"),
    ]
    header = f"{'group':32} {'files':>5} {'extract/s':>10} {'bare/s':>10} {'ratio':>6}  target (per CPU-second)"
    print(header)
    print("-" * len(header))
    for name, files, bare, kind in groups:
        for content in files:
            extract(content)  # warm up, and fail loudly if a sample no longer extracts
        step_rate, bare_rate = _best_rates(extract, bare, files, args.seconds)
        ratio = step_rate / bare_rate
        if kind == "xml":
            verdict = f">= {XML_TARGET:,.0f}/s {'ok' if step_rate >= XML_TARGET else 'MISSED'}"
        elif kind == "pdf":
            verdict = f">= {PDF_TARGET_RATIO}x bare {'ok' if ratio >= PDF_TARGET_RATIO else 'MISSED'}"
        else:
            verdict = "(size outlier, no target)"
        print(f"{name:32} {len(files):>5} {step_rate:>10,.0f} {bare_rate:>10,.0f} {ratio:>6.2f}  {verdict}")
    print("bare step: lxml.etree.fromstring for XML, facturx.get_xml_from_pdf(check_xsd=False) for PDF")


if __name__ == "__main__":
    main()
