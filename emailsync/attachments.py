"""Find the parts of an email that may be invoices.

Every attachment is hostile data: only bytes are inspected, nothing is run or
opened with another program, and attachment or zip member names are cleaned
for display and never used as paths. The kind of a file is decided from its
bytes (PDF magic, XML prolog, delimited text, a page-sized
JPEG / PNG / TIFF); the declared type and the file
name only break ties and explain refusals.

Zip archives are expanded one level. Their limits (member count, total size,
compression ratio) are checked against the central directory before anything
is decompressed. A message has limits of its own: its raw size, and the bytes
all its archives together may expand to (six archives each within the limits
once held 288 MB at a time); over either, the whole message is refused with
MessageOverBudget.
"""

from __future__ import annotations

import datetime as dt
import email
import io
import mimetypes
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from pathlib import PurePosixPath
from typing import Literal

from emailsync.errors import UnparseableMessage
from emailsync.mime import decode_header_value, headers_of, is_attachment_like
from invoices.extract import image_kind
from invoices.extract.sniff import declared_kind, file_kind

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_ZIP_MAX_MEMBERS = 100
DEFAULT_ZIP_MAX_TOTAL_BYTES = 100 * 1024 * 1024
DEFAULT_ZIP_MAX_RATIO = 100
DEFAULT_MESSAGE_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MESSAGE_MAX_EXPANDED_BYTES = 100 * 1024 * 1024

InvoiceKind = Literal["pdf", "xml", "csv", "image"]
_INVOICE_KINDS = ("pdf", "xml", "csv", "image")
_KIND_EXTENSIONS = {"pdf": "pdf", "xml": "xml", "csv": "csv", "jpeg": "jpg", "png": "png", "tiff": "tif"}
_KIND_NAMES = {"pdf": "PDF", "xml": "XML", "csv": "CSV"}
_MAX_FILENAME_CHARS = 200
_FORWARDED_MESSAGE_TYPES = ("message/rfc822", "message/global")
# Only Python's built-in table: the answer must not depend on the host's /etc/mime.types.
_BUILTIN_MIME_TYPES = mimetypes.MimeTypes(filenames=())


@dataclass(frozen=True)
class Attachment:
    """A part (or zip member) whose bytes look like an invoice file."""

    filename: str
    content: bytes = field(repr=False)
    content_type: str
    detected_kind: InvoiceKind
    archive: str | None = None  # the zip it came from, for zip members

    @property
    def size(self) -> int:
        """Length of the content in bytes."""
        return len(self.content)


@dataclass(frozen=True)
class SkippedPart:
    """An attachment that is not processed, with the reason a person reads."""

    filename: str | None
    content_type: str
    reason: str
    archive: str | None = None


@dataclass(frozen=True)
class ParsedMessage:
    """The headers of a message plus its candidate and skipped attachments."""

    message_id: str | None
    subject: str
    sender: str
    date: dt.datetime | None  # aware; None when the Date header is missing or unreadable
    candidates: list[Attachment]
    skipped: list[SkippedPart]


class MessageOverBudget(UnparseableMessage):
    """The message as a whole is over a per-message limit (raw size, or bytes its archives
    expand to): it is recorded with this reason and skipped, not retried."""


@dataclass
class _Limits:
    max_bytes: int
    zip_max_members: int
    zip_max_total_bytes: int
    zip_max_ratio: float
    message_max_expanded_bytes: int = DEFAULT_MESSAGE_MAX_EXPANDED_BYTES
    expanded_bytes: int = 0  # what this message's archives expanded to so far


def candidate_attachments(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    zip_max_members: int = DEFAULT_ZIP_MAX_MEMBERS,
    zip_max_total_bytes: int = DEFAULT_ZIP_MAX_TOTAL_BYTES,
    zip_max_ratio: float = DEFAULT_ZIP_MAX_RATIO,
    message_max_bytes: int = DEFAULT_MESSAGE_MAX_BYTES,
    message_max_expanded_bytes: int = DEFAULT_MESSAGE_MAX_EXPANDED_BYTES,
) -> ParsedMessage:
    """Parse a raw RFC 822 message into its headers, invoice candidates and skipped attachments.

    Raises UnparseableMessage when the bytes are not an email message at all, and its
    subclass MessageOverBudget when the message is larger than `message_max_bytes` or its
    zip archives together would expand to more than `message_max_expanded_bytes`.
    """
    if not isinstance(raw, bytes | bytearray) or not raw or raw.isspace():
        raise UnparseableMessage("The message is empty.")
    if len(raw) > message_max_bytes:
        raise MessageOverBudget(message_too_large_reason(len(raw), message_max_bytes))
    failures = []
    # compat32 accepts nearly anything and is several times faster (the modern policy re-parses a
    # header on every access), but garbles raw 8-bit file names; the modern policy decodes those.
    # So: compat32 first, and the modern policy when a name came out garbled or compat32 failed.
    parsed = None
    for parse_policy in (policy.compat32, policy.default):
        limits = _Limits(max_bytes, zip_max_members, zip_max_total_bytes, zip_max_ratio, message_max_expanded_bytes)
        try:
            message = email.message_from_bytes(raw, policy=parse_policy)
            _require_headers(message)
            parsed = _extract(message, limits)
        except UnparseableMessage:
            raise
        except Exception as failure:  # the email package raises many types on bad input
            failures.append(f"{type(failure).__name__}: {failure}")
            continue
        if not _has_garbled_names(parsed):
            return parsed
    if parsed is not None:
        return parsed
    raise UnparseableMessage("The message could not be parsed: " + "; ".join(failures))


def message_too_large_reason(size: int, limit: int) -> str:
    """The reason recorded for a message over EMAILSYNC_MESSAGE_MAX_BYTES."""
    return f"The message is {_human_size(size)}, over the limit of {_human_size(limit)} per message; not processed."


def _has_garbled_names(parsed: ParsedMessage) -> bool:
    names = [part.filename for part in parsed.candidates] + [part.filename for part in parsed.skipped]
    names += [part.archive for part in parsed.candidates + parsed.skipped]
    return any(name and "\ufffd" in name for name in names)


def display_filename(name: str | None) -> str | None:
    """A file name safe to show: no directories, control or bidi characters, bounded length."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Category C covers control, format (bidi overrides that disguise "fdp.exe"), surrogates, private use.
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C"))
    name = " ".join(name.split())
    if name in ("", ".", ".."):
        return None
    if len(name) > _MAX_FILENAME_CHARS:
        suffix = PurePosixPath(name).suffix[:20]
        name = name[: _MAX_FILENAME_CHARS - len(suffix)] + suffix
    return name


# -- message walk --------------------------------------------------------------


def _require_headers(message: Message) -> None:
    if not message.keys():
        raise UnparseableMessage("No email headers were found: this is not an email message.")


def _extract(message: Message, limits: _Limits) -> ParsedMessage:
    headers = headers_of(message)
    candidates: list[Attachment] = []
    skipped: list[SkippedPart] = []
    for part in _leaf_parts(message):
        _classify_part(part, limits, candidates, skipped)
    return ParsedMessage(
        message_id=headers.message_id,
        subject=headers.subject,
        sender=headers.sender,
        date=headers.date,
        candidates=candidates,
        skipped=skipped,
    )


def _leaf_parts(message: Message):
    """Every part that is not a container, including parts hidden after a closing boundary."""
    for part in message.walk():
        content_type = part.get_content_type()
        if part.is_multipart():
            # message/delivery-status and similar with a file name are shown as attachments by mail clients.
            is_report = content_type.startswith("message/") and content_type not in _FORWARDED_MESSAGE_TYPES
            if is_report and (_filename(part) or part.get_content_disposition() == "attachment"):
                yield part
            if content_type.startswith("multipart/"):
                yield from _parts_after_closing_boundary(part)
            continue
        yield part


def _parts_after_closing_boundary(multipart: Message):
    """Parts that a broken message placed in the epilogue, e.g. after a reused boundary closed it early.

    Some mail clients still show them, and hiding an attachment this way is a known trick: they are
    reported like any other part rather than silently dropped.
    """
    boundary = multipart.get_boundary()
    epilogue = multipart.epilogue
    if not boundary or not epilogue or f"--{boundary}" not in epilogue:
        return
    delimiter = re.compile(rf"^--{re.escape(boundary)}(?:--)?[ \t]*\r?$", re.MULTILINE)
    for chunk in delimiter.split(epilogue)[1:]:
        raw_chunk = chunk.lstrip("\r\n").encode("ascii", errors="surrogateescape")
        if not raw_chunk.strip():
            continue
        hidden = email.message_from_bytes(raw_chunk, policy=multipart.policy)
        if hidden.keys():
            yield from _leaf_parts(hidden)


def _classify_part(part: Message, limits: _Limits, candidates: list, skipped: list) -> None:
    content_type = part.get_content_type()
    raw_name = _filename(part)
    if not is_attachment_like(
        content_type=content_type, disposition=part.get_content_disposition(), has_filename=bool(raw_name)
    ):
        return
    name = display_filename(raw_name)
    if part.is_multipart():
        skipped.append(SkippedPart(name, content_type, f"not an invoice type ({content_type})"))
        return
    content = part.get_payload(decode=True) or b""
    _classify_content(
        content,
        name=name,
        content_type=content_type,
        limits=limits,
        candidates=candidates,
        skipped=skipped,
        archive=None,
    )


def _classify_content(
    content: bytes,
    *,
    name: str | None,
    content_type: str,
    limits: _Limits,
    candidates: list,
    skipped: list,
    archive: str | None,
) -> None:
    def skip(reason: str) -> None:
        skipped.append(SkippedPart(name, content_type, reason, archive))

    if not content:
        skip("empty attachment")
        return
    if len(content) > limits.max_bytes:
        skip(f"over the size limit ({_human_size(len(content))} > {_human_size(limits.max_bytes)})")
        return
    kind = file_kind(content, declared_type=content_type, filename=name)
    if kind == "zip":
        if archive is not None:
            skip("nested zip archive not expanded")
        else:
            _expand_zip(
                content, name=name, content_type=content_type, limits=limits, candidates=candidates, skipped=skipped
            )
        return
    if kind in _INVOICE_KINDS:
        extension = _KIND_EXTENSIONS[image_kind(content) if kind == "image" else kind]
        filename = name or f"attachment-{len(candidates) + len(skipped) + 1}.{extension}"
        candidates.append(Attachment(filename, content, content_type, kind, archive))
        return
    declared = declared_kind(content_type, name)
    if declared is not None:
        skip(f"declared as {_KIND_NAMES[declared]} but the content is not {_KIND_NAMES[declared]}")
    else:
        skip(f"not an invoice type ({content_type})")


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # malformed RFC 2231 parameters
        name = None
    if not name:
        return None
    if "=?" in name:  # compat32 leaves RFC 2047 words in parameters; some senders use them there
        name = decode_header_value(name, name="Subject")
    return name


# -- zip archives --------------------------------------------------------------


def _expand_zip(
    content: bytes, *, name: str | None, content_type: str, limits: _Limits, candidates: list, skipped: list
) -> None:
    zip_type = content_type if content_type not in _GENERIC_TYPES else "application/zip"

    def skip_archive(reason: str) -> None:
        skipped.append(SkippedPart(name, zip_type, reason))

    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as failure:
        skip_archive(f"damaged zip archive ({failure})")
        return
    # Everything below reads the central directory only; nothing is decompressed yet.
    document = _zip_based_document(members, name)
    if document is not None:
        # A .docx or .xlsx is a zip of XML parts: expanding it would offer those parts as XML invoices.
        described = content_type if content_type not in _GENERIC_TYPES else document
        skip_archive(f"not an invoice type ({described})")
        return
    if len(members) > limits.zip_max_members:
        skip_archive(f"zip: too many members ({len(members)} > {limits.zip_max_members})")
        return
    total = sum(info.file_size for info in members)
    if total > limits.zip_max_total_bytes:
        skip_archive(
            f"zip: members too large in total ({_human_size(total)} > {_human_size(limits.zip_max_total_bytes)})"
        )
        return
    worst_ratio = max((info.file_size / max(info.compress_size, 1) for info in members), default=0)
    if worst_ratio > limits.zip_max_ratio:
        skip_archive(f"zip bomb: compression ratio {worst_ratio:.0f} > {limits.zip_max_ratio:g}")
        return
    if limits.expanded_bytes + total > limits.message_max_expanded_bytes:
        raise MessageOverBudget(
            f"The zip archives of this message would expand to more than "
            f"{_human_size(limits.message_max_expanded_bytes)} together (at {name or 'an archive'}); "
            "not processed."
        )
    limits.expanded_bytes += total
    with archive:
        for info in members:
            _classify_zip_member(
                archive, info, archive_name=name or "archive.zip", limits=limits, candidates=candidates, skipped=skipped
            )


def _classify_zip_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    *,
    archive_name: str,
    limits: _Limits,
    candidates: list,
    skipped: list,
) -> None:
    name = display_filename(_member_name(info))
    guessed_type = _BUILTIN_MIME_TYPES.guess_type(name or "", strict=False)[0] or "application/octet-stream"

    def skip(reason: str) -> None:
        skipped.append(SkippedPart(name, guessed_type, reason, archive_name))

    if info.flag_bits & 0x1:
        skip("encrypted zip member")
        return
    if info.file_size > limits.max_bytes:
        skip(f"over the size limit ({_human_size(info.file_size)} > {_human_size(limits.max_bytes)})")
        return
    try:
        with archive.open(info) as member:
            # The central directory may lie about sizes: never read more than it promised.
            data = member.read(info.file_size + 1)[: info.file_size + 1]
    except NotImplementedError as failure:
        skip(f"unsupported zip compression ({failure})")
        return
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as failure:
        skip(f"damaged zip member ({failure})")
        return
    if len(data) > info.file_size:
        skip("damaged zip member (larger than its directory entry says)")
        return
    _classify_content(
        data,
        name=name,
        content_type=guessed_type,
        limits=limits,
        candidates=candidates,
        skipped=skipped,
        archive=archive_name,
    )


_GENERIC_TYPES = frozenset(
    {"application/octet-stream", "application/zip", "application/x-zip-compressed", "application/x-zip"}
)
_DOCUMENT_EXTENSIONS = {
    ".docx": "Word document",
    ".xlsx": "Excel workbook",
    ".pptx": "PowerPoint presentation",
    ".odt": "OpenDocument text",
    ".ods": "OpenDocument spreadsheet",
    ".odp": "OpenDocument presentation",
    ".epub": "e-book",
    ".jar": "Java archive",
    ".apk": "Android package",
}


def _zip_based_document(members: list[zipfile.ZipInfo], name: str | None) -> str | None:
    """What kind of document a zip is, when it is a file format built on zip rather than an archive."""
    described = _DOCUMENT_EXTENSIONS.get(PurePosixPath((name or "").lower()).suffix)
    if described:
        return described
    names = {info.filename for info in members}
    if "[Content_Types].xml" in names:
        return "Office Open XML document"
    if members and members[0].filename == "mimetype":
        return "OpenDocument file"
    if "META-INF/MANIFEST.MF" in names:
        return "Java archive"
    return None


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name; many archivers write UTF-8 names without setting the zip's UTF-8 flag."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename  # cp437, as zipfile read it; other legacy code pages cannot be told apart


def _human_size(size: int) -> str:
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            value = round(size / factor, 1)
            return f"{value:g} {unit}"
    return f"{size} bytes"
