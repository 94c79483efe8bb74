"""Pictures of invoices (JPEG, PNG, TIFF incl. multi-page): recognised from their bytes, turned into a PDF.

An image has no text to read: its fields come from OCR (invoices/ocr/), which
runs as a step of the invoice's processing job before extraction. Without OCR
the extractor below returns an empty invoice with a warning, so the invoice
goes to review instead of failing.
"""

from __future__ import annotations

import contextlib
import io
import logging

from PIL import Image, ImageFile, UnidentifiedImageError

from invoices.extract.base import ExtractedInvoice, Extractor, InvalidInvoice

logger = logging.getLogger(__name__)

# Magic numbers; the file name is never consulted (see invoices/extract/__init__.py).
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
IMAGE_KINDS = ("jpeg", "png", "tiff")
# A photo of a whole page at 600 dpi is ~35 megapixels; beyond that it is a hostile image.
MAX_PIXELS = 60_000_000
# A scanned page or a photo of one: at 96 dpi an A4 page is 794 x 1123 pixels. Logos, signatures and
# newsletter pictures are smaller; they are not taken for invoices.
MIN_PAGE_SHORT_SIDE = 700
MIN_PAGE_LONG_SIDE = 900
# img2pdf assumes 96 dpi for images that do not say; scanners and phones mostly do say.
_FALLBACK_DPI = 200


def image_kind(content: bytes) -> str | None:
    """ "jpeg", "png" or "tiff" when the bytes start like one of those images, else None."""
    for signature, kind in _SIGNATURES:
        if content.startswith(signature):
            return kind
    return None


def image_size(content: bytes) -> tuple[int, int] | None:
    """Width and height in pixels from the image's header (nothing is decoded), or None if unreadable."""
    if image_kind(content) is None:
        return None
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size
    except Exception:  # Pillow raises many types for damaged headers; all mean "cannot tell"
        return None


def looks_like_page(content: bytes) -> bool:
    """Is this an image big enough to be a scanned or photographed page (not a logo or an icon)?"""
    size = image_size(content)
    return size is not None and min(size) >= MIN_PAGE_SHORT_SIDE and max(size) >= MIN_PAGE_LONG_SIDE


class ImageExtractor(Extractor):
    """Scans and photos. Their text comes from OCR, which invoice processing runs before extraction."""

    format = "image"

    def can_handle(self, content: bytes) -> bool:
        return image_kind(content) is not None

    def extract(self, content: bytes) -> ExtractedInvoice:
        """An empty invoice that says why: an image has no text layer (OCR did not run)."""
        image_to_pdf(content)  # a damaged image is an error of its own, whether or not OCR runs
        invoice = ExtractedInvoice(format=self.format)
        invoice.warnings.append(
            f"The file is a picture ({image_kind(content).upper()}) without text; "
            "its fields can only be read by OCR, which did not run."
        )
        return invoice


def image_to_pdf(content: bytes) -> tuple[bytes, int]:
    """A PDF with one page per image frame (multi-page TIFF), and the number of pages.

    The image data goes into the PDF unchanged where the format allows (img2pdf);
    raises InvalidInvoice for a damaged or unreadable image.
    """
    import img2pdf  # loads pikepdf (qpdf): only processes that convert an image pay for it

    kind = (image_kind(content) or "image").upper()
    try:
        with _truncated_images_refused():
            with Image.open(io.BytesIO(content)) as image:
                image.verify()  # checks the structure (a PNG cut short after a whole chunk still decodes)
            with Image.open(io.BytesIO(content)) as image:
                frames = getattr(image, "n_frames", 1)
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidInvoice(
                        f"The {kind} image is too large to read ({image.width} x {image.height} pixels)."
                    )
                for index in range(frames):
                    image.seek(index)
                    image.load()  # decodes the pixels: a truncated or damaged file fails here
    except InvalidInvoice:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise InvalidInvoice(f"The {kind} image is damaged and cannot be read ({exc}).") from exc
    try:
        pdf = img2pdf.convert(content, rotation=img2pdf.Rotation.ifvalid, layout_fun=img2pdf.default_layout_fun)
    except Exception as exc:  # img2pdf refuses alpha channels and some rare encodings: decode and re-encode
        logger.info("img2pdf could not take the %s as is (%s); converting its pixels", kind, exc)
        pdf = _pixels_to_pdf(content, kind)
    return pdf, frames


@contextlib.contextmanager
def _truncated_images_refused():
    """Pillow decodes cut-off images when ImageFile.LOAD_TRUNCATED_IMAGES is set, and WeasyPrint (mail bodies
    rendered to PDF) sets it for the whole process on import: a truncated upload must still be an error here."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _pixels_to_pdf(content: bytes, kind: str) -> bytes:
    """Decode every frame with Pillow and write them as a PDF (transparency flattened onto white)."""
    pages = []
    try:
        with Image.open(io.BytesIO(content)) as image:
            dpi = image.info.get("dpi", (_FALLBACK_DPI, _FALLBACK_DPI))[0] or _FALLBACK_DPI
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frame = image.convert("RGBA")
                page = Image.new("RGB", frame.size, "white")
                page.paste(frame, mask=frame.split()[3])
                pages.append(page)
        buffer = io.BytesIO()
        pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=float(dpi))
    except Exception as exc:
        raise InvalidInvoice(f"The {kind} image cannot be converted to a PDF ({exc}).") from exc
    return buffer.getvalue()
