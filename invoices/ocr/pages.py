"""Which pages of a PDF need OCR: those without a usable text layer.

A page whose text layer reads as words is left alone (no double work). A page
with no text, or with a text layer of garbage (fonts without a Unicode map
give control characters, "(cid:12)" runs or letter salad), is OCRed.
"""

from __future__ import annotations

import io
import logging
import re

import pypdf

from invoices.extract.pdf_text.reading import pages_to_read

logger = logging.getLogger(__name__)

# Fewer visible characters than this on a page is a page without text (a scan, a stamp).
MIN_PAGE_CHARS = 20
# Share of visible characters that are letters, digits or usual punctuation in real text.
MIN_PRINTABLE_SHARE = 0.85
# Share of words (2+ letters) with a vowel: real text in our languages is far above this;
# a wrong font mapping gives consonant salad.
MIN_WORDLIKE_SHARE = 0.6
_USUAL = set(".,:;-\u2013/()%€$£&@'\"+#*!?[]_=<>§°|")
_VOWELS = re.compile(r"[aeiouyàâäáéèêëíìîïóòôöúùûüæœøå]", re.IGNORECASE)
_CID = re.compile(r"\(cid:\d+\)")


def text_is_usable(text: str) -> bool:
    """Does this page text read as text (rather than no text or garbage)?"""
    if _CID.search(text):
        text = _CID.sub("\ufffd", text)
    visible = re.sub(r"\s", "", text)
    if len(visible) < MIN_PAGE_CHARS:
        return False
    usual = sum(char.isalnum() or char in _USUAL for char in visible)
    if usual / len(visible) < MIN_PRINTABLE_SHARE:
        return False
    words = re.findall(r"[^\W\d_]{2,}", text)
    if not words:
        return True  # digits and punctuation only: a table of numbers is still text
    wordlike = sum(bool(_VOWELS.search(word)) for word in words)
    return wordlike / len(words) >= MIN_WORDLIKE_SHARE


def open_pdf(content: bytes) -> pypdf.PdfReader | None:
    """A reader for the PDF (decrypted with the empty password), or None when pypdf cannot open it.

    None is not an error here: extraction reports an unreadable PDF in its own words.
    """
    try:
        reader = pypdf.PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            return None
        len(reader.pages)
    except Exception:  # pypdf raises many types for damaged files
        logger.info("pypdf cannot open the PDF to look for scanned pages", exc_info=True)
        return None
    return reader


def pages_without_text(reader: pypdf.PdfReader) -> list[int]:
    """0-based numbers of the pages whose text layer is missing or garbage, among those the text reader reads."""
    scanned = []
    for index in pages_to_read(len(reader.pages)):
        try:
            text = reader.pages[index].extract_text()
        except Exception:  # a page pypdf cannot read text from is treated like a scan
            logger.info("Text of page %s could not be read; it will be OCRed", index + 1, exc_info=True)
            text = ""
        if not text_is_usable(text):
            scanned.append(index)
    return scanned
