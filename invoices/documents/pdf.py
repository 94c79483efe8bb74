"""PDF pages (also Factur-X / ZUGFeRD) as PNG images, rendered with PDFium.

Rendered pages are cached on disk per (sha256 of the PDF, page, dpi) under
MEDIA_ROOT/page-images/, so a page is drawn once however often the review page
shows it. PDFium is not thread-safe: every call into it holds one lock.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from pathlib import Path

import pypdfium2 as pdfium
from django.conf import settings

from invoices.documents.errors import DocumentUnreadable, PageOutOfRange

# Below 36 dpi text is unreadable; above 300 a page image of a large-format
# page becomes tens of megabytes for no gain on screen.
MIN_DPI = 36
MAX_DPI = 300
# A 300-dpi A3 page is ~17 megapixels; anything above that is a hostile page box.
MAX_PIXELS = 20_000_000

_pdfium_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "page-images"


def _cache_path(sha256: str, page_number: int, dpi: int) -> Path:
    return cache_dir() / sha256[:2] / f"{sha256}-p{page_number}-{dpi}.png"


def _open(content: bytes) -> pdfium.PdfDocument:
    if not content:
        raise DocumentUnreadable("The PDF is empty.")
    try:
        return pdfium.PdfDocument(content)
    except pdfium.PdfiumError as exc:
        # PDFium's own words ("Data format error", "Incorrect password") say what is wrong.
        detail = str(exc).removeprefix("Failed to load document ").strip("(). ") or "unknown error"
        raise DocumentUnreadable(f"The PDF cannot be displayed: {detail}.") from exc


def pdf_page_count(content: bytes) -> int:
    """Number of pages of a PDF; DocumentUnreadable when PDFium cannot open it."""
    with _pdfium_lock:
        document = _open(content)
        try:
            return len(document)
        finally:
            document.close()


def render_pdf_page(content: bytes, page_number: int, dpi: int = 150) -> bytes:
    """One page (1-based) of a PDF as PNG bytes at `dpi`, from the disk cache when drawn before.

    Raises DocumentUnreadable when the PDF cannot be opened or the page cannot be
    drawn, PageOutOfRange for a page the PDF does not have, ValueError for a dpi
    outside MIN_DPI..MAX_DPI.
    """
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise ValueError(f"dpi must be between {MIN_DPI} and {MAX_DPI}, not {dpi}.")
    if page_number < 1:
        raise PageOutOfRange(f"There is no page {page_number}.")
    sha256 = hashlib.sha256(content).hexdigest()
    path = _cache_path(sha256, page_number, dpi)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    png = _render(content, page_number, dpi)
    _write_atomically(path, png)
    return png


def _render(content: bytes, page_number: int, dpi: int) -> bytes:
    with _pdfium_lock:
        document = _open(content)
        try:
            if page_number > len(document):
                raise PageOutOfRange(f"There is no page {page_number}; the PDF has {len(document)}.")
            page = document[page_number - 1]
            try:
                width, height = page.get_size()  # in points, 1/72 inch
                scale = dpi / 72
                if width * scale * height * scale > MAX_PIXELS:
                    raise DocumentUnreadable(
                        f"Page {page_number} is too large to display ({width:.0f} x {height:.0f} points)."
                    )
                bitmap = page.render(scale=scale, may_draw_forms=True)
                image = bitmap.to_pil()
            except pdfium.PdfiumError as exc:
                raise DocumentUnreadable(f"Page {page_number} of the PDF cannot be drawn: {exc}.") from exc
            finally:
                page.close()
        finally:
            document.close()
    buffer = io.BytesIO()
    # zlib level 3: on invoice pages faster than Pillow's default 6 and no larger (docs/benchmarks.md).
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file and rename, so a reader never sees half a PNG.

    A cache that cannot be written (full disk, read-only media) costs a re-render
    next time, never the response.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        pass
