"""Getting the text out of a PDF with pypdf, in two renderings, without ever raising anything but InvalidInvoice."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field

import pypdf
from pypdf.errors import FileNotDecryptedError, PdfReadError

from invoices.extract.base import InvalidInvoice

logger = logging.getLogger(__name__)

# Long documents: read the first pages (header data) and the last ones (totals).
MAX_PAGES_HEAD = 25
MAX_PAGES_TAIL = 5


@dataclass
class PdfText:
    """The text of a PDF in two renderings, and what a person should know about reading it."""

    layout: str
    plain: str
    page_count: int
    warnings: list[str] = field(default_factory=list)

    @property
    def renderings(self) -> tuple[str, str]:
        return self.layout, self.plain


def _clean(text: str) -> str:
    # pypdf leaves lone surrogates for icon fonts; they break encoding later on.
    text = re.sub(r"[\ud800-\udfff\ue000-\uf8ff]", "", text)
    return text.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2212", "-").replace("\r", "")


def pages_to_read(page_count: int) -> list[int]:
    """0-based numbers of the pages read: all of a short document, the head and tail of a long one."""
    if page_count <= MAX_PAGES_HEAD + MAX_PAGES_TAIL:
        return list(range(page_count))
    return [*range(MAX_PAGES_HEAD), *range(page_count - MAX_PAGES_TAIL, page_count)]


def read_pdf_text(content: bytes, *, page_texts: dict[int, tuple[str, str]] | None = None) -> PdfText:
    """Extract the text of a PDF. Raises InvalidInvoice for encrypted, damaged or non-PDF content.

    `page_texts` gives the (layout, plain) text of some pages (0-based) from elsewhere: OCR's own
    renderings of the pages it read, which pypdf cannot lay out.
    """
    page_texts = page_texts or {}
    try:
        reader = pypdf.PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            _decrypt_with_empty_password(reader)
        page_count = len(reader.pages)
    except InvalidInvoice:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files; all mean the same to a user
        raise InvalidInvoice("The PDF is damaged or not a PDF: it could not be opened.") from exc
    if page_count == 0:
        raise InvalidInvoice("The PDF has no pages.")
    text = PdfText(layout="", plain="", page_count=page_count)
    layouts: list[str] = []
    plains: list[str] = []
    unreadable: list[int] = []
    pages = pages_to_read(page_count)
    for index in pages:
        if index in page_texts:
            layout, plain = page_texts[index]
            layouts.append(_clean(layout))
            plains.append(_clean(plain))
            continue
        try:
            page = reader.pages[index]
            plains.append(_clean(page.extract_text()))
        except Exception:  # one damaged page must not lose the others
            logger.info("Page %s of a PDF could not be read", index + 1, exc_info=True)
            unreadable.append(index + 1)
            continue
        try:
            layouts.append(_clean(page.extract_text(extraction_mode="layout")))
        except Exception:
            layouts.append(plains[-1])
    if len(unreadable) == len(pages):
        raise InvalidInvoice("The PDF is damaged: the text of its pages could not be read.")
    if unreadable:
        text.warnings.append(f"The text of page(s) {', '.join(map(str, unreadable))} could not be read.")
    if len(pages) < page_count:
        text.warnings.append(
            f"Only the first {MAX_PAGES_HEAD} and last {MAX_PAGES_TAIL} of {page_count} pages were read."
        )
    text.layout = "\n\f\n".join(layouts)
    text.plain = "\n\f\n".join(plains)
    return text


def _decrypt_with_empty_password(reader: pypdf.PdfReader) -> None:
    """Many PDFs are encrypted only to restrict printing or copying, with an empty password to open them."""
    message = (
        "The PDF is encrypted with a password, so its text cannot be read. "
        "Ask the supplier for a copy without a password."
    )
    try:
        opened = reader.decrypt("")
    except (FileNotDecryptedError, PdfReadError, NotImplementedError, ValueError) as exc:
        raise InvalidInvoice(message) from exc
    if opened == pypdf.PasswordType.NOT_DECRYPTED:
        raise InvalidInvoice(message)
