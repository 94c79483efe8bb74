"""How well are scanned invoices read? Scan -> OCR -> plain-PDF extractor, against the same PDFs' text layer
through the same extractor, in the same run. Ground truth is the XML embedded in the Factur-X / ZUGFeRD PDFs.

Usage (from the repository root; needs ocrmypdf and tesseract-ocr with the OCR_LANGUAGES packs):

    .venv/bin/python bench/ocr_accuracy.py [FOLDER ...] [--rotate] [--noise 0.002] [--dpi 200] [--files]

Default folder: the Factur-X / ZUGFeRD samples in shared/samples/einvoices/facturx-zugferd/.
For every PDF with embedded XML:

- text layer: PdfTextExtractor reads the PDF as it is (the embedded XML ignored);
- scan: every page is drawn at --dpi by the review page's renderer (invoices.documents, PDFium),
  greyscale, optionally turned 90 degrees (--rotate) and speckled (--noise, share of pixels), and saved
  as an image-only PDF; invoices.ocr.document_ocr OCRs it page by page as invoice processing does
  (OCRmyPDF + Tesseract, deskew, rotation) and PdfTextExtractor reads the searchable PDF, with the
  text of the OCRed pages laid out from Tesseract's word boxes (invoices/ocr/layout.py).

Both are compared with the XML by bench/pdf_text_accuracy.py's field rules. Printed: fields matched /
expected per field for both, the ratio OCR / text layer (goal >= 0.9), and OCR pages per second of wall
time and per core (CPU seconds of this process and of the OCR programs it ran).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")
# Rendered pages are cached below MEDIA_ROOT: keep them out of the developer's media folder.
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="apintake-bench-ocr-"))

import django  # noqa: E402

django.setup()

from PIL import Image  # noqa: E402

from bench.pdf_text_accuracy import DEFAULT_FOLDERS, FIELDS, ground_truth, matches  # noqa: E402
from invoices.documents import pdf_page_count, render_pdf_page  # noqa: E402
from invoices.extract.base import InvalidInvoice  # noqa: E402
from invoices.extract.pdf_text import PdfTextExtractor  # noqa: E402
from invoices.ocr import document_ocr, extract_scanned, ocr_unavailable_reason  # noqa: E402
from invoices.ocr.engine import ocr_languages  # noqa: E402


def scan(pdf: bytes, *, dpi: int, rotate: bool, noise: float) -> bytes:
    """The PDF as an image-only PDF of greyscale page scans."""
    images = []
    for number in range(1, pdf_page_count(pdf) + 1):
        image = Image.open(io.BytesIO(render_pdf_page(pdf, number, dpi=dpi))).convert("L")
        if rotate:
            image = image.rotate(-90, expand=True)
        if noise:
            speckle(image, noise, seed=number)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi))
    return buffer.getvalue()


def speckle(image: Image.Image, share: float, *, seed: int) -> None:
    """Salt-and-pepper noise, the same every run (as tests/invoices/scans.py makes it)."""
    pixels = image.load()
    width, height = image.size
    chance = random.Random(seed)
    for _ in range(int(width * height * share)):
        pixels[chance.randrange(width), chance.randrange(height)] = chance.choice((0, 255))


def read_or_report(path: Path, source: str, read, argument):
    """The invoice `read(argument)` returns, or None after printing why the file could not be read."""
    try:
        return read(argument)
    except InvalidInvoice as exc:
        print(f"{path.name} ({source}): {exc}")
        return None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, default=DEFAULT_FOLDERS)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--rotate", action="store_true", help="turn every page 90 degrees")
    parser.add_argument("--noise", type=float, default=0.0, help="share of pixels speckled, e.g. 0.002")
    parser.add_argument("--files", action="store_true", help="print each file's misses")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # pypdf and factur-x report every repaired PDF
    problem = ocr_unavailable_reason()
    if problem:
        print(problem)
        return 1

    extractor = PdfTextExtractor()
    matched = {"text": Counter(), "ocr": Counter()}
    expected: Counter[str] = Counter()
    files = pages = 0
    ocr_wall = ocr_cpu = 0.0
    for folder in args.folders:
        for path in sorted(folder.rglob("*.pdf")):
            content = path.read_bytes()
            truth = ground_truth(content)
            if truth is None:
                continue
            files += 1
            scanned = scan(content, dpi=args.dpi, rotate=args.rotate, noise=args.noise)
            started, cpu_started, children_started = time.perf_counter(), time.process_time(), children_cpu()
            outcome = document_ocr(content=scanned)
            ocr_wall += time.perf_counter() - started
            ocr_cpu += time.process_time() - cpu_started + children_cpu() - children_started
            pages += outcome.pages_ocred
            read = {
                "text": read_or_report(path, "text", extractor.extract, content),
                "ocr": read_or_report(path, "ocr", extract_scanned, outcome) if outcome.pdf else None,
            }
            misses = []
            for field in FIELDS:
                if truth[field] in (None, ""):
                    continue
                expected[field] += 1
                for source, invoice in read.items():
                    value = getattr(invoice, field) if invoice else None
                    if matches(field, value, truth[field]):
                        matched[source][field] += 1
                    elif source == "ocr":
                        misses.append(f"{field}: got {value!s} want {truth[field]!s}")
            if args.files:
                mean = outcome.mean_confidence
                print(
                    f"{path.name}: {outcome.pages_ocred} page(s), mean word confidence "
                    f"{'-' if mean is None else f'{mean:.0%}'}" + "".join(f"\n    {miss}" for miss in misses)
                )

    print(
        f"\nfields matched / fields expected ({files} PDFs; scans at {args.dpi} dpi"
        f"{', turned 90 degrees' if args.rotate else ''}{f', noise {args.noise:g}' if args.noise else ''}; "
        f"OCR languages {ocr_languages()})"
    )
    print(f"{'':16}{'text layer':>16}{'scan + OCR':>16}")
    for field in [*FIELDS, None]:
        want = sum(expected.values()) if field is None else expected[field]
        cells = [
            sum(matched[source].values()) if field is None else matched[source][field] for source in ("text", "ocr")
        ]
        print(f"{field or 'all fields':16}" + "".join(f"{f'{got} / {want}':>16}" for got in cells))
    text_total, ocr_total, want = sum(matched["text"].values()), sum(matched["ocr"].values()), sum(expected.values())
    if want and text_total:
        print(
            f"\naccuracy: text layer {text_total / want:.1%}, scan + OCR {ocr_total / want:.1%}; "
            f"OCR / text layer = {ocr_total / text_total:.2f} (goal >= 0.90)"
        )
    if pages:
        print(
            f"{pages} pages OCRed in {ocr_wall:.1f} s: {pages / ocr_wall:.2f} pages/s wall, "
            f"{pages / ocr_cpu:.2f} pages/s per core ({ocr_cpu:.1f} CPU s, OCR programs included; one page at a "
            "time)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
