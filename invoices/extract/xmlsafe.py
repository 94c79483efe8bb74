"""One hardened XML parser for every untrusted document we read.

Invoices arrive from strangers by e-mail. The parser never resolves entities,
never loads a DTD, never touches the network and refuses documents that carry a
DOCTYPE at all (entity bombs and XXE both need one; no e-invoice standard uses
one). Every parser error becomes InvalidInvoice with a message a person can act on.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

from invoices.extract.base import InvalidInvoice

_UTF8_BOM = b"\xef\xbb\xbf"
_ENCODING_DECL_RE = re.compile(rb"""\A(<\?xml\s[^>]{0,200}?encoding\s*=\s*)(["'])([^"'>]{0,60})\2""")
# The XML spec's EncName production; anything else is not a well-formed declaration.
_ENCODING_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_POSITION_SUFFIX_RE = re.compile(r",? line \d+, column \d+$")

_DOCTYPE_MESSAGE = "The XML contains a DOCTYPE declaration; e-invoices never need one, and it is refused for safety."
_PROLOG_ITEM_RE = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)

_local = threading.local()  # lxml parser objects must not be shared between threads


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            # Whitespace between elements carries nothing in e-invoices; dropping it parses faster.
            remove_blank_text=True,
        )
        _local.parser = parser
    return parser


def looks_like_xml(content: bytes) -> bool:
    """Cheap test on the first bytes: could this be an XML document at all?"""
    head = content[:64].lstrip(b" \t\r\n")
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :].lstrip(b" \t\r\n")
    # UTF-16 documents start with a byte-order mark or with "<" and a zero byte.
    return head.startswith((b"<", b"\xff\xfe", b"\xfe\xff", b"\x00<"))


def parse_xml(content: bytes, *, warnings: list[str] | None = None) -> etree._Element:
    """Parse untrusted XML bytes and return the root element.

    Raises InvalidInvoice for a DOCTYPE, for malformed XML and for anything lxml
    refuses. An undeclarable encoding name on otherwise valid UTF-8 (seen in the
    wild: "UTF-8-W/O-BOM") is repaired and noted in `warnings`, if given.
    """
    data = _strip_leading_noise(content)
    if not data:
        raise InvalidInvoice("The XML document is empty.")
    if _prolog_has_doctype(data):
        raise InvalidInvoice(_DOCTYPE_MESSAGE)
    data, note = _repair_encoding_declaration(data)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidInvoice(_syntax_message(exc)) from exc
    except (etree.LxmlError, ValueError) as exc:
        raise InvalidInvoice(f"The XML could not be read: {exc}.") from exc
    if root is None:  # pragma: no cover - lxml raises for empty documents, this is a guard
        raise InvalidInvoice("The XML document has no root element.")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InvalidInvoice(_DOCTYPE_MESSAGE)
    if note and warnings is not None:
        warnings.append(note)
    return root


def _strip_leading_noise(content: bytes) -> bytes:
    """Drop a UTF-8 byte-order mark and whitespace before the first "<" (both harmless, both seen)."""
    data = content
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if data[:1].isspace():
        stripped = data.lstrip(b" \t\r\n")
        if stripped.startswith(b"<"):
            data = stripped
    return data


def _prolog_has_doctype(data: bytes) -> bool:
    """True when a DOCTYPE comes before the root element, so a bomb never reaches libxml2.

    Covers ASCII-compatible encodings; UTF-16 documents are caught after parsing by
    the docinfo check, with libxml2's own entity-amplification limits in force.
    """
    position = 0
    while True:
        match = _PROLOG_ITEM_RE.match(data, position)
        if not match or match.end() == position:
            break
        position = match.end()
    return data[position : position + 9].upper() == b"<!DOCTYPE"


def _repair_encoding_declaration(data: bytes) -> tuple[bytes, str | None]:
    """Rewrite an invalid or unknown encoding name to UTF-8 when the bytes are valid UTF-8."""
    match = _ENCODING_DECL_RE.match(data)
    if not match:
        return data, None
    declared = match.group(3).decode("ascii", "replace")
    if _ENCODING_NAME_RE.fullmatch(declared) and _known_codec(declared):
        return data, None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data, None  # leave it to the parser, which will say what is wrong
    repaired = match.group(1) + match.group(2) + b"UTF-8" + match.group(2) + data[match.end() :]
    return repaired, f'The XML declares an unknown character encoding "{declared}"; it was read as UTF-8.'


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    reason = _POSITION_SUFFIX_RE.sub("", exc.msg or "").strip() or "unknown error"
    line, column = exc.position if exc.position else (exc.lineno, 0)
    if reason == "Document is empty":
        return "The XML is not well-formed: the document is empty or does not start with an element."
    return f"The XML is not well-formed: line {line}, column {column}: {reason}."


def qualified_root_tag(content: bytes) -> str | None:
    """The root element's tag in Clark notation ("{namespace}Local"), or None if not parseable XML.

    The parsed tree is kept for the current thread so that detection followed by
    extraction of the same bytes parses them only once (see `parse_xml_shared`).
    """
    if not looks_like_xml(content):
        return None
    try:
        root = parse_xml_shared(content)
    except InvalidInvoice:
        return None
    return root.tag if isinstance(root.tag, str) else None


def parse_xml_shared(content: bytes, *, warnings: list[str] | None = None) -> etree._Element:
    """`parse_xml`, remembering the last result per thread for the same bytes object.

    Detection asks every XML extractor "is this yours?" before one extracts; without
    this the same document would be parsed once per question. The memo is keyed on
    object identity and holds a reference, so a different document never matches.
    """
    memo = getattr(_local, "memo", None)
    if memo is not None and memo[0] is content:
        _, root, notes, error = memo
    else:
        notes: list[str] = []
        root, error = None, None
        try:
            root = parse_xml(content, warnings=notes)
        except InvalidInvoice as exc:
            error = exc
        _local.memo = (content, root, notes, error)
    if error is not None:
        raise InvalidInvoice(str(error)) from error.__cause__
    if warnings is not None:
        warnings.extend(notes)
    return root


def forget_shared() -> None:
    """Drop the remembered tree (a large document should not stay in memory after extraction)."""
    _local.memo = None
