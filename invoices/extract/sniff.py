"""What kind of file is this? PDF, XML, CSV (and its delimiter), an image of a page,
or a zip: sniffed from the bytes, the one answer for every door a file comes in
through (mail attachments in emailsync, uploads, the drop folder)."""

from __future__ import annotations

import csv
import re
from pathlib import PurePosixPath

from invoices.extract.csv_table import CANDIDATE_DELIMITERS
from invoices.extract.images import image_kind, looks_like_page

DECLARED_KINDS = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/csv": "csv",
    "text/comma-separated-values": "csv",
    "text/tab-separated-values": "csv",
}
EXTENSION_KINDS = {".pdf": "pdf", ".xml": "xml", ".csv": "csv", ".tsv": "csv"}
_SNIFF_BYTES = 64 * 1024


def file_kind(content: bytes, *, declared_type: str = "", filename: str | None = None) -> str | None:
    """ "pdf", "xml", "csv", "image" or "zip" from the bytes; None when they are none of those.

    Asked by every door a file comes in through (mail attachments, uploads).

    The declared type and extension only relax the CSV check (a one-line CSV
    named .csv is accepted; an unnamed one is not). An image counts only when it
    is big enough to be a scanned or photographed page (the invoices extractor
    registry decides); logos and signature pictures are not invoices.
    """
    # Zip first: a stored (uncompressed) PDF member puts "%PDF-" within the archive's first kilobyte.
    if content.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    # Readers accept junk before the header, so "%PDF-" anywhere in the first kilobyte counts.
    if b"%PDF-" in content[:1024]:
        return "pdf"
    if image_kind(content) is not None:
        return "image" if looks_like_page(content) else None
    if _looks_like_xml(content):
        return "xml"
    hinted = declared_kind(declared_type, filename) == "csv"
    if _looks_like_csv(content, hinted=hinted):
        return "csv"
    return None


_XML_PROLOG_NOISE = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL | re.IGNORECASE)
_XML_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s/>]")
_NOT_INVOICE_XML_ROOTS = {b"html", b"svg"}


def _looks_like_xml(content: bytes) -> bool:
    text = _xml_head_as_utf8(content[:_SNIFF_BYTES])
    if text is None:
        return False
    position = 0
    while match := _XML_PROLOG_NOISE.match(text, position):
        if match.end() == position:
            break
        position = match.end()
    text = text[position:].lstrip()
    root = _XML_ROOT.match(text)
    return root is not None and root.group(1).lower() not in _NOT_INVOICE_XML_ROOTS


def _xml_head_as_utf8(head: bytes) -> bytes | None:
    """The start of a document re-encoded as UTF-8 when it is UTF-16 (with or without BOM)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:]
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[2:].decode(codec, errors="ignore").encode("utf-8")
    if head.startswith(b"<\x00"):
        return head.decode("utf-16-le", errors="ignore").encode("utf-8")
    if head.startswith(b"\x00<"):
        return head.decode("utf-16-be", errors="ignore").encode("utf-8")
    stripped = head.lstrip()
    return stripped if stripped.startswith(b"<") else None


def _looks_like_csv(content: bytes, *, hinted: bool) -> bool:
    """Delimited text: the header row and most data rows split into the same number (>= 2) of fields."""
    head = content[:_SNIFF_BYTES]
    if b"\x00" in head:
        return False
    text = head.decode("utf-8" if _is_utf8(head) else "cp1252", errors="replace").lstrip("\ufeff")
    if text.lstrip().startswith("<"):
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    if len(content) > _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the cut may have split the last line
    lines = lines[:50]
    if not lines or sum(not char.isprintable() for char in "".join(lines)) > len("".join(lines)) // 100:
        return False
    for delimiter in CANDIDATE_DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        header_width = widths[0]
        if header_width < 2:
            continue
        if hinted and (len(widths) == 1 or widths.count(header_width) >= 1 + (len(widths) - 1) // 2):
            return True
        if len(widths) >= 2 and widths.count(header_width) >= max(2, int(len(widths) * 0.8)):
            return True
    return False


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as failure:
        # A multi-byte character cut at the end of the sniffed window is still UTF-8.
        return failure.start >= len(data) - 3
    return True


def declared_kind(content_type: str, filename: str | None) -> str | None:
    declared = DECLARED_KINDS.get((content_type or "").lower())
    if declared is None and filename:
        declared = EXTENSION_KINDS.get(PurePosixPath(filename.lower()).suffix)
    return declared
