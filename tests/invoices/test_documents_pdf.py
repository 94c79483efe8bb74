"""PDF pages as images: the Factur-X / ZUGFeRD samples render, are cached per
(sha256, page, dpi), and bad input gets a clear error."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from invoices.documents import DocumentUnreadable, PageOutOfRange, pdf_page_count, render_pdf_page
from invoices.documents.pdf import cache_dir

SAMPLES = Path("/work/shared/samples/einvoices/facturx-zugferd")
PDFS = sorted(SAMPLES.glob("*.pdf"))

pytestmark = pytest.mark.skipif(not PDFS, reason="the Factur-X samples are not on this machine")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.parametrize("path", PDFS, ids=lambda p: p.name)
def test_every_facturx_sample_renders_its_first_page_as_an_a4_png(path):
    content = path.read_bytes()
    assert pdf_page_count(content) >= 1

    png = render_pdf_page(content, 1, dpi=100)

    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    # A4 portrait at 100 dpi is 827 x 1169 pixels; the samples are A4 or US letter.
    assert 800 <= image.width <= 860 and 1090 <= image.height <= 1180
    # Not a blank page: the invoice text puts dark pixels on it.
    assert image.convert("L").getextrema()[0] < 80


def test_dpi_scales_the_image():
    content = PDFS[0].read_bytes()
    small = Image.open(io.BytesIO(render_pdf_page(content, 1, dpi=72)))
    large = Image.open(io.BytesIO(render_pdf_page(content, 1, dpi=144)))
    assert abs(large.width - 2 * small.width) <= 2


def test_a_rendered_page_is_cached_on_disk_per_sha_page_and_dpi():
    content = PDFS[0].read_bytes()
    first = render_pdf_page(content, 1, dpi=150)
    cached = list(cache_dir().rglob("*.png"))
    assert len(cached) == 1 and cached[0].name.endswith("-p1-150.png")

    # The second call is served from the file: overwrite it and the overwrite comes back.
    cached[0].write_bytes(b"from-the-cache")
    assert render_pdf_page(content, 1, dpi=150) == b"from-the-cache"
    # Another dpi is another entry.
    assert render_pdf_page(content, 1, dpi=100) != first
    assert len(list(cache_dir().rglob("*.png"))) == 2


def test_every_page_of_a_multi_page_pdf_renders_and_the_next_one_is_out_of_range():
    # The longest sample; each of its pages renders, the one after the last does not.
    content, count = max(((p.read_bytes(), pdf_page_count(p.read_bytes())) for p in PDFS), key=lambda c: c[1])
    for page in range(1, count + 1):
        assert render_pdf_page(content, page, dpi=50).startswith(b"\x89PNG")
    with pytest.raises(PageOutOfRange, match=f"the PDF has {count}"):
        render_pdf_page(content, count + 1)
    with pytest.raises(PageOutOfRange):
        render_pdf_page(content, 0)


@pytest.mark.parametrize("content", [b"", b"%PDF-1.7\nnot really a pdf", b"\x89PNG\r\n\x1a\n"])
def test_a_pdf_the_renderer_cannot_open_is_a_clear_error(content):
    with pytest.raises(DocumentUnreadable, match="PDF"):
        render_pdf_page(content, 1)
    with pytest.raises(DocumentUnreadable):
        pdf_page_count(content)
    assert not cache_dir().exists() or not list(cache_dir().rglob("*.png"))


def test_a_truncated_pdf_is_a_clear_error_not_a_crash():
    content = PDFS[0].read_bytes()
    with pytest.raises(DocumentUnreadable):
        render_pdf_page(content[: len(content) // 3], 1)


@pytest.mark.parametrize("dpi", [0, 10, 301, 2000])
def test_a_dpi_outside_the_allowed_range_is_refused(dpi):
    with pytest.raises(ValueError, match="dpi must be between"):
        render_pdf_page(PDFS[0].read_bytes(), 1, dpi=dpi)
