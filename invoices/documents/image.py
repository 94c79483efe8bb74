"""Scans and photos (JPEG, PNG, TIFF incl. multi-page) as page images, for invoices that
OCR has not turned into a searchable PDF (OCR missing, disabled, or it failed).

Each frame is shown at the width an A4 page has at the asked dpi (never enlarged),
re-encoded as PNG so that every browser shows it (TIFF is not shown by browsers), and
cached on disk beside the PDF page images.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, UnidentifiedImageError

from invoices.documents.errors import DocumentUnreadable, PageOutOfRange
from invoices.documents.pdf import MAX_DPI, MIN_DPI, _cache_path, _write_atomically
from invoices.extract.images import MAX_PIXELS, image_kind

A4_WIDTH_INCHES = 8.27


def _open(content: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(content))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DocumentUnreadable(f"The image cannot be displayed: {exc}.") from exc
    if image.width * image.height > MAX_PIXELS:
        raise DocumentUnreadable(f"The image is too large to display ({image.width} x {image.height} pixels).")
    return image


def image_page_count(content: bytes) -> int:
    """Frames of the image (pages of a multi-page TIFF); DocumentUnreadable when Pillow cannot read it."""
    with _open(content) as image:
        return getattr(image, "n_frames", 1)


def render_image_page(content: bytes, page_number: int, dpi: int = 150) -> bytes:
    """One frame (1-based) of a scan or photo as PNG, from the disk cache when drawn before."""
    if image_kind(content) is None:
        raise DocumentUnreadable("The file is not a JPEG, PNG or TIFF image.")
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise ValueError(f"dpi must be between {MIN_DPI} and {MAX_DPI}, not {dpi}.")
    if page_number < 1:
        raise PageOutOfRange(f"There is no page {page_number}.")
    path = _cache_path(hashlib.sha256(content).hexdigest(), page_number, dpi).with_suffix(".image.png")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    with _open(content) as image:
        frames = getattr(image, "n_frames", 1)
        if page_number > frames:
            raise PageOutOfRange(f"There is no page {page_number}; the image has {frames}.")
        try:
            image.seek(page_number - 1)
            frame = image.convert("RGB")
        except (OSError, ValueError, EOFError) as exc:
            raise DocumentUnreadable(f"Page {page_number} of the image cannot be drawn: {exc}.") from exc
    width = round(A4_WIDTH_INCHES * dpi)
    if frame.width > width:
        frame = frame.resize((width, round(frame.height * width / frame.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG", compress_level=3)
    png = buffer.getvalue()
    _write_atomically(path, png)
    return png
