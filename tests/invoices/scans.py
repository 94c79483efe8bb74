"""Scans made in the test from the Factur-X / ZUGFeRD sample PDFs: each page drawn at 200 dpi by the
renderer the review page uses (PDFium), optionally turned sideways and speckled, saved as an image or an
image-only PDF. The ground truth is the XML embedded in the sample, which the scan no longer carries."""

from __future__ import annotations

import io
import random

from PIL import Image

from invoices.documents import pdf_page_count, render_pdf_page
from tests.invoices.einvoice_reference import SAMPLES, embedded_xml, reference_values

FACTURX = SAMPLES / "facturx-zugferd"
# Fields a person checks first; compared with the embedded XML.
COMPARED = ("invoice_number", "issue_date", "currency", "total_net", "tax_total", "total_gross", "amount_due")


def page_images(
    pdf: bytes, *, dpi: int = 200, rotate: bool = False, noise: float = 0.0, pages: int | None = None
) -> list[Image.Image]:
    """The pages of `pdf` as greyscale scans; `noise` is the share of pixels flipped to black or white."""
    images = []
    count = pdf_page_count(pdf) if pages is None else pages
    for number in range(1, count + 1):
        image = Image.open(io.BytesIO(render_pdf_page(pdf, number, dpi=dpi))).convert("L")
        if rotate:
            image = image.rotate(-90, expand=True)  # a page fed into the scanner sideways
        if noise:
            speckle(image, noise, seed=number)
        images.append(image)
    return images


def speckle(image: Image.Image, share: float, *, seed: int) -> None:
    """Salt-and-pepper noise, the same every run."""
    pixels = image.load()
    width, height = image.size
    chance = random.Random(seed)
    for _ in range(int(width * height * share)):
        pixels[chance.randrange(width), chance.randrange(height)] = chance.choice((0, 255))


def encode(images: list[Image.Image], fmt: str, *, dpi: int = 200) -> bytes:
    """Images as one file: "PNG" / "JPEG" (first page), "TIFF" (multi-page) or "PDF" (image-only PDF)."""
    buffer = io.BytesIO()
    first, rest = images[0], images[1:]
    if fmt == "PDF":
        first.save(buffer, format="PDF", save_all=True, append_images=rest, resolution=float(dpi))
    elif fmt == "TIFF":
        first.save(buffer, format="TIFF", save_all=True, append_images=rest, dpi=(dpi, dpi), compression="tiff_lzw")
    elif fmt == "JPEG":
        first.save(buffer, format="JPEG", quality=85, dpi=(dpi, dpi))
    else:
        first.save(buffer, format=fmt, dpi=(dpi, dpi))
    return buffer.getvalue()


def truth(sample_pdf: bytes) -> dict:
    """The compared fields as the sample's embedded XML states them."""
    values = reference_values(embedded_xml(sample_pdf))
    return {name: values[name] for name in COMPARED if values.get(name) not in (None, "")}


def mismatches(invoice, expected: dict) -> dict:
    """Field -> (read, expected) for every compared field that was not read as the XML says."""
    return {
        name: (getattr(invoice, name), want)
        for name, want in expected.items()
        if str(getattr(invoice, name)).casefold() != str(want).casefold()
    }
