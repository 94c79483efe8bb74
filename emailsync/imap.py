"""A small IMAP client for the mailbox sync, with every failure mapped to a typed MailboxError.

Built on imaplib (through imap-tools for login and folder listing). The
connection goes to the addresses that passed the host check, so a second DNS
answer cannot redirect it; TLS always verifies the certificate against the
system CAs plus an optional extra CA file. Plain IMAP is refused unless
explicitly allowed.

Reads never change the mailbox: bodies are fetched with BODY.PEEK, so \\Seen
is only set by mark_seen().
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imap_tools import BaseMailBox
from imap_tools.errors import UnexpectedCommandStatusError
from imap_tools.utils import encode_folder

from emailsync.errors import (
    MailboxAuthError,
    MailboxConnectionLost,
    MailboxConnectionRefused,
    MailboxDNSError,
    MailboxError,
    MailboxFolderMissing,
    MailboxInsecureRefused,
    MailboxProtocolError,
    MailboxServerUnavailable,
    MailboxTimeout,
    MailboxTLSError,
)
from emailsync.hostcheck import check_host_allowed
from emailsync.imap_response import ImapResponseError, parse_fetch_response
from emailsync.mime import bodystructure_has_candidate, parse_date, parse_headers

logger = logging.getLogger(__name__)

ALLOW_INSECURE_SETTING = "EMAILSYNC_ALLOW_INSECURE"
CA_FILE_SETTING = "EMAILSYNC_CA_FILE"
SUMMARY_ITEMS = (
    "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)] BODYSTRUCTURE)"
)
_FLAG_ATOM = re.compile(r"^\\?[^\s(){%*\"\\\]]+$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RESPONSE_CODE = re.compile(rb"^\s*\[([A-Z-]+)")

Security = Literal["ssl", "starttls", "plain"]
AuthMethod = Literal["password", "xoauth2"]


@dataclass(frozen=True)
class ImapSettings:
    """Where and how to log in. `secret` is the password or the OAuth2 access token."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    security: Security = "ssl"
    auth: AuthMethod = "password"
    ca_file: str | Path | None = None
    timeout: float = 30.0
    allow_private: bool = False
    allow_insecure: bool = False

    def describe(self) -> str:
        """`user@host:port (security)` for messages and logs; never includes the secret."""
        return f"{self.username}@{self.host}:{self.port} ({self.security})"


@dataclass(frozen=True)
class FolderState:
    """What SELECT tells about a folder. UIDs are only comparable within one UIDVALIDITY."""

    uidvalidity: int
    uidnext: int
    exists: int
    read_only: bool = False  # opened read-only, or the server allows no changes (e.g. a shared folder)


@dataclass(frozen=True)
class MessageSummary:
    """What the sync needs to decide about a message without downloading it."""

    uid: int
    message_id: str | None
    subject: str
    sender: str
    date: dt.datetime | None  # the Date header, else the server's INTERNALDATE
    size: int
    flags: tuple[str, ...]
    has_candidate_attachment: bool
    internal_date: dt.datetime | None = None


@dataclass(frozen=True)
class Namespaces:
    """The server's namespaces (RFC 2342): (prefix, delimiter) pairs of each kind."""

    personal: tuple[tuple[str, str], ...] = ()
    other_users: tuple[tuple[str, str], ...] = ()
    shared: tuple[tuple[str, str], ...] = ()


def xoauth2_sasl_string(username: str, access_token: str) -> bytes:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01".encode()


class ImapConnection:
    """One logged-in IMAP session; use as a context manager.

    Every method raises a MailboxError subclass on failure, never an imaplib
    or socket exception.
    """

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._client: imaplib.IMAP4 | None = None
        self._mailbox: _MailBox | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._selected: str | None = None
        self.selected_read_only = False

    def __enter__(self) -> ImapConnection:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- session -------------------------------------------------------------

    def connect(self) -> None:
        """Resolve and check the host, open the connection (TLS as configured) and log in."""
        self.close()  # connecting again replaces the old session
        settings = self.settings
        if settings.security not in ("ssl", "starttls", "plain"):
            raise MailboxProtocolError(f"Unknown security setting {settings.security!r}: use ssl, starttls or plain.")
        if settings.security == "plain" and not settings.allow_insecure:
            raise MailboxInsecureRefused(
                f"Plain IMAP to {settings.host}:{settings.port} would send the password unencrypted and is refused. "
                f"Use security 'ssl' or 'starttls', or set {ALLOW_INSECURE_SETTING}=1 to allow it."
            )
        addresses = check_host_allowed(settings.host, allow_private=settings.allow_private)
        logger.debug("IMAP connecting to %s", settings.describe())
        with self._mapped_errors("connecting", connecting=True):
            context = self._ssl_context() if settings.security != "plain" else None
            self._mailbox = _MailBox(lambda: self._open_client(addresses, context))
            self._client = self._mailbox.client
        try:
            with self._mapped_errors("logging in", connecting=True):
                self._login()
                self._capabilities = self._read_capabilities()
        except MailboxError:
            self.close()  # do not leave a half-open session behind a failed login
            raise
        logger.debug("IMAP logged in to %s", settings.describe())

    def close(self) -> None:
        """Log out and close the socket; never raises."""
        client, self._client, self._mailbox, self._selected = self._client, None, None, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(Exception):
            client.shutdown()

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities after login (upper case), e.g. {"MOVE", "UIDPLUS", ...}."""
        return self._capabilities

    # -- folders -------------------------------------------------------------

    def namespaces(self) -> Namespaces:
        """The personal, other users' and shared namespaces (NAMESPACE, RFC 2342); empty
        other/shared ones when the server does not offer NAMESPACE."""
        client = self._require_client()
        if "NAMESPACE" not in self._capabilities:
            return Namespaces(personal=(("", "/"),))
        with self._mapped_errors("reading the namespaces"):
            typ, data = client.namespace()
            self._require_ok(typ, data, "NAMESPACE")
        line = next((item for item in data if isinstance(item, bytes)), b"")
        try:
            groups = parse_namespace_line(line)
        except ValueError as exc:
            raise MailboxProtocolError(f"The server's NAMESPACE answer cannot be read: {exc}") from exc
        return Namespaces(*groups)

    def list_folders(self, under: str = "") -> list[str]:
        """Names of the folders that can be selected (all, or those below the prefix `under`)."""
        mailbox = self._require_mailbox()
        with self._mapped_errors("listing folders"):
            folders = mailbox.folder.list(under) if under else mailbox.folder.list()
        unselectable = {"\\NOSELECT", "\\NONEXISTENT"}
        return [info.name for info in folders if not unselectable & {flag.upper() for flag in info.flags}]

    def select_folder(self, name: str, *, readonly: bool = False) -> FolderState:
        """Open a folder; raises MailboxFolderMissing when it does not exist."""
        client = self._require_client()
        read_only = readonly
        with self._mapped_errors(f"opening folder {name!r}"):
            try:
                typ, data = client.select(_folder_argument(name), readonly)
            except imaplib.IMAP4.readonly:
                # The server grants reading only (an ACL without write rights): open it for reading.
                read_only = True
                typ, data = client.select(_folder_argument(name), True)
            if typ != "OK":
                self._selected = None
                text = _response_text(data)
                code = _response_code(data)
                if code in ("UNAVAILABLE", "SERVERBUG", "INUSE", "LIMIT"):
                    raise MailboxServerUnavailable(f"The server could not open folder {name!r} right now: {text}")
                if code in ("NOPERM", "PRIVACYREQUIRED"):
                    raise MailboxProtocolError(f"The server refused to open folder {name!r}: {text}")
                raise MailboxFolderMissing(
                    f"The folder {name!r} does not exist on {self.settings.host} ({text}). "
                    "Check the folder names configured for this mailbox."
                )
            self._selected = name
            exists = _first_int(data)
            uidvalidity = _first_int(client.untagged_responses.get("UIDVALIDITY", []))
            uidnext = _first_int(client.untagged_responses.get("UIDNEXT", []))
            if uidnext is None or uidvalidity is None:
                # Some servers leave these out of SELECT; STATUS on the open folder is allowed.
                status = self._require_mailbox().folder.status(name, ["UIDNEXT", "UIDVALIDITY"])
                uidnext = uidnext if uidnext is not None else status.get("UIDNEXT")
                uidvalidity = uidvalidity if uidvalidity is not None else status.get("UIDVALIDITY")
        if uidvalidity is None:
            raise MailboxProtocolError(f"The server did not report a UIDVALIDITY for folder {name!r}.")
        self.selected_read_only = read_only
        return FolderState(uidvalidity=uidvalidity, uidnext=uidnext or 0, exists=exists or 0, read_only=read_only)

    # -- reading -------------------------------------------------------------

    def search_since(self, since: dt.date) -> list[int]:
        """UIDs in the selected folder received on or after `since` (by the server's internal date)."""
        client = self._require_selected()
        if isinstance(since, dt.datetime):
            since = since.date()
        criteria = f"SINCE {since.day:02d}-{_MONTHS[since.month - 1]}-{since.year}"
        with self._mapped_errors("searching"):
            typ, data = client.uid("SEARCH", criteria)
            self._require_ok(typ, data, "UID SEARCH")
        return sorted({int(uid) for line in data if line for uid in line.split()})

    def fetch_summaries(self, uids: Iterable[int], batch_size: int = 200) -> Iterator[MessageSummary]:
        """Headers, size, flags and attachment hint of messages, one round trip per batch.

        UIDs that no longer exist are left out. Nothing is marked as read.
        """
        client = self._require_selected()
        for batch in _batches(uids, batch_size):
            with self._mapped_errors("fetching message headers"):
                typ, data = client.uid("FETCH", _uid_set(batch), SUMMARY_ITEMS)
                self._require_ok(typ, data, "UID FETCH")
                responses = parse_fetch_response(data)
            wanted = set(batch)
            for items in responses:
                summary = _summary_from(items)
                if summary is not None and summary.uid in wanted:
                    wanted.discard(summary.uid)  # a second, unsolicited FETCH for the same UID is ignored
                    yield summary

    def fetch_raw(self, uids: Iterable[int], batch_size: int = 20) -> Iterator[tuple[int, bytes]]:
        """The complete raw messages (BODY.PEEK[]: \\Seen is not set), in batches."""
        client = self._require_selected()
        for batch in _batches(uids, batch_size):
            with self._mapped_errors("downloading messages"):
                typ, data = client.uid("FETCH", _uid_set(batch), "(UID BODY.PEEK[])")
                self._require_ok(typ, data, "UID FETCH")
                responses = parse_fetch_response(data)
            wanted = set(batch)
            for items in responses:
                uid = _int_or_none(items.get("UID"))
                body = items.get("BODY[]")
                if uid in wanted and isinstance(body, bytes):
                    wanted.discard(uid)
                    yield uid, body

    # -- changing ------------------------------------------------------------

    def mark_seen(self, uids: Iterable[int]) -> None:
        """Set \\Seen on the messages."""
        self.add_flag(uids, "\\Seen")

    def add_flag(self, uids: Iterable[int], flag: str) -> None:
        """Add a system flag (\\Flagged) or keyword ($Invoice) to the messages."""
        if not _FLAG_ATOM.match(flag):
            raise ValueError(f"{flag!r} is not a valid IMAP flag")
        client = self._require_selected()
        for batch in _batches(uids, 500):
            with self._mapped_errors("setting flags"):
                typ, data = client.uid("STORE", _uid_set(batch), "+FLAGS.SILENT", f"({flag})")
                self._require_ok(typ, data, "UID STORE")

    def move(self, uids: Iterable[int], folder: str) -> None:
        """Move messages to another folder: MOVE when offered, else COPY, flag \\Deleted and expunge them."""
        client = self._require_selected()
        target = _folder_argument(folder)
        for batch in _batches(uids, 500):
            uid_set = _uid_set(batch)
            with self._mapped_errors(f"moving messages to {folder!r}"):
                if "MOVE" in self._capabilities:
                    typ, data = client.uid("MOVE", uid_set, target)
                    self._require_move_target(typ, data, folder)
                    continue
                typ, data = client.uid("COPY", uid_set, target)
                self._require_move_target(typ, data, folder)
                typ, data = client.uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
                self._require_ok(typ, data, "UID STORE")
                if "UIDPLUS" in self._capabilities:
                    # Expunge only these messages, not others someone else flagged \Deleted.
                    typ, data = client.uid("EXPUNGE", uid_set)
                else:
                    typ, data = client.expunge()
                self._require_ok(typ, data, "EXPUNGE")

    # -- internals -----------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.settings.ca_file:
            try:
                context.load_verify_locations(cafile=str(self.settings.ca_file))
            except (OSError, ssl.SSLError) as failure:
                raise MailboxTLSError(
                    f"The extra CA file {self.settings.ca_file} could not be read: {failure}"
                ) from failure
        return context

    def _open_client(self, addresses: Sequence[str], context: ssl.SSLContext | None) -> imaplib.IMAP4:
        settings = self.settings
        if settings.security == "ssl":
            assert context is not None
            return _PinnedIMAP4SSL(
                addresses, settings.host, settings.port, ssl_context=context, timeout=settings.timeout
            )
        client = _PinnedIMAP4(addresses, settings.host, settings.port, timeout=settings.timeout)
        if settings.security == "starttls":
            try:
                client.starttls(ssl_context=context)
            except (imaplib.IMAP4.abort, ssl.SSLError, OSError):
                _close_quietly(client)
                raise
            except imaplib.IMAP4.error as failure:
                _close_quietly(client)
                raise MailboxTLSError(
                    f"{settings.host}:{settings.port} does not offer STARTTLS ({failure}). "
                    "Use security 'ssl' with the server's TLS port."
                ) from failure
        return client

    def _login(self) -> None:
        settings, client, mailbox = self.settings, self._require_client(), self._require_mailbox()
        if settings.auth == "xoauth2":
            if "AUTH=XOAUTH2" not in client.capabilities:
                raise MailboxAuthError(f"{settings.host} does not offer XOAUTH2 login; use a password instead.")
            self._authenticate("XOAUTH2", xoauth2_sasl_string(settings.username, settings.secret))
            return
        if settings.auth != "password":
            raise MailboxAuthError(f"Unknown login method {settings.auth!r}: use password or xoauth2.")
        if _has_control_characters(settings.username + settings.secret):
            # LOGIN sends them as quoted strings: a line break would end the command early.
            raise MailboxAuthError("The user name or password contains line breaks or control characters.")
        if (settings.username + settings.secret).isascii():
            try:
                mailbox.login(settings.username, settings.secret, initial_folder=None)
            except UnexpectedCommandStatusError as failure:
                self._raise_login_refused(failure.command_result[1])
            return
        # LOGIN only carries ASCII; AUTHENTICATE PLAIN carries UTF-8 user names and passwords.
        self._authenticate("PLAIN", b"\0" + settings.username.encode() + b"\0" + settings.secret.encode())

    def _authenticate(self, mechanism: str, initial_response: bytes) -> None:
        responses = iter([initial_response])

        def answer(_challenge: bytes) -> bytes:
            # After a failed XOAUTH2 the server sends an error challenge; the protocol answer is empty.
            return next(responses, b"")

        try:
            self._require_client().authenticate(mechanism, answer)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as failure:
            self._raise_login_refused([str(failure).encode()])

    def _raise_login_refused(self, data: list) -> None:
        text = _response_text(data)
        if _response_code(data) in ("UNAVAILABLE", "SERVERBUG"):
            raise MailboxServerUnavailable(f"{self.settings.host} cannot log users in right now: {text}")
        what = "access token" if self.settings.auth == "xoauth2" else "user name or password"
        raise MailboxAuthError(f"{self.settings.host} rejected the {what} for {self.settings.username!r}: {text}")

    def _read_capabilities(self) -> frozenset[str]:
        # Servers announce more (MOVE, UIDPLUS, ...) after login than in their greeting.
        client = self._require_client()
        typ, data = client.capability()
        self._require_ok(typ, data, "CAPABILITY")
        words = b" ".join(line for line in data if isinstance(line, bytes)).decode("ascii", "replace")
        capabilities = frozenset(words.upper().split())
        client.capabilities = tuple(capabilities)
        return capabilities

    def _require_client(self) -> imaplib.IMAP4:
        if self._client is None:
            raise MailboxConnectionLost("Not connected: call connect() (or use the connection as a context manager).")
        return self._client

    def _require_mailbox(self) -> _MailBox:
        self._require_client()
        assert self._mailbox is not None
        return self._mailbox

    def _require_selected(self) -> imaplib.IMAP4:
        client = self._require_client()
        if self._selected is None:
            raise MailboxProtocolError("No folder is open: call select_folder() first.")
        return client

    def _require_ok(self, typ: str, data: list, command: str) -> None:
        if typ == "OK":
            return
        text = _response_text(data)
        if _response_code(data) in ("UNAVAILABLE", "SERVERBUG", "INUSE", "LIMIT"):
            raise MailboxServerUnavailable(f"{command} failed on {self.settings.host}, try again later: {text}")
        raise MailboxProtocolError(f"{command} failed on {self.settings.host}: {typ} {text}")

    def _require_move_target(self, typ: str, data: list, folder: str) -> None:
        if typ != "OK" and _response_code(data) == "TRYCREATE":
            raise MailboxFolderMissing(f"The folder {folder!r} to move messages to does not exist.")
        self._require_ok(typ, data, f"moving messages to {folder!r}")

    @contextlib.contextmanager
    def _mapped_errors(self, action: str, *, connecting: bool = False) -> Iterator[None]:
        """Turn imaplib, ssl and socket exceptions into MailboxErrors that say what failed."""
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            yield
        except MailboxError:
            raise
        except imaplib.IMAP4.readonly as failure:
            raise MailboxProtocolError(
                f"{where} only allows reading while {action} ({failure}); open the folder with readonly=True."
            ) from failure
        except ImapResponseError as failure:
            raise MailboxProtocolError(
                f"{where} sent a response that could not be read while {action}: {failure}"
            ) from failure
        except imaplib.IMAP4.abort as failure:
            self._forget_connection()
            if isinstance(failure.__context__, TimeoutError) or "timed out" in str(failure):
                raise MailboxTimeout(
                    f"{where} stopped answering while {action} (timeout {self.settings.timeout:g} s)."
                ) from failure
            raise MailboxConnectionLost(f"The connection to {where} was lost while {action}: {failure}") from failure
        except ssl.SSLCertVerificationError as failure:
            raise MailboxTLSError(
                f"The TLS certificate of {where} is not trusted: {failure.verify_message or failure.reason}. "
                f"If the server uses a private CA, set {CA_FILE_SETTING} to its CA bundle."
            ) from failure
        except ssl.SSLError as failure:
            if not connecting:
                self._forget_connection()
                raise MailboxConnectionLost(
                    f"The TLS connection to {where} broke while {action}: {failure}"
                ) from failure
            raise MailboxTLSError(
                f"TLS with {where} failed ({failure.reason or failure}). Is this the server's TLS port, and is "
                "'security' set right (ssl for port 993, starttls for port 143)?"
            ) from failure
        except socket.gaierror as failure:
            raise MailboxDNSError(f"The mailbox host {self.settings.host!r} could not be resolved.") from failure
        except ConnectionRefusedError as failure:
            raise MailboxConnectionRefused(
                f"{where} refused the connection: nothing listens there. Check the host and port."
            ) from failure
        except TimeoutError as failure:
            self._forget_connection()
            raise MailboxTimeout(
                f"{where} did not answer while {action} (timeout {self.settings.timeout:g} s)."
            ) from failure
        except OSError as failure:
            self._forget_connection()
            raise MailboxConnectionLost(f"The connection to {where} failed while {action}: {failure}") from failure
        except UnexpectedCommandStatusError as failure:
            raise MailboxProtocolError(f"{where} refused a command while {action}: {failure}") from failure
        except imaplib.IMAP4.error as failure:
            raise MailboxProtocolError(f"{where} answered unexpectedly while {action}: {failure}") from failure

    def _forget_connection(self) -> None:
        client, self._client, self._mailbox, self._selected = self._client, None, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


# -- imaplib / imap-tools plumbing ---------------------------------------------


class _MailBox(BaseMailBox):
    """imap-tools' mailbox over a client we create (pinned addresses, our TLS context)."""

    def __init__(self, client_factory) -> None:
        self._client_factory = client_factory
        super().__init__()

    def _get_mailbox_client(self) -> imaplib.IMAP4:
        return self._client_factory()


def _connect_pinned(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first checked address that answers."""
    last_failure: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as failure:
            last_failure = failure
    assert last_failure is not None
    raise last_failure


class _PinnedIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 that connects to pre-resolved addresses but keeps `host` for TLS verification."""

    def __init__(self, addresses: Sequence[str], host: str, port: int, timeout: float | None = None) -> None:
        self._addresses = list(addresses)
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout):
        return _connect_pinned(self._addresses, self.port, timeout)


class _PinnedIMAP4SSL(imaplib.IMAP4_SSL):
    """imaplib.IMAP4_SSL that connects to pre-resolved addresses and verifies the certificate for `host`."""

    def __init__(
        self,
        addresses: Sequence[str],
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        timeout: float | None = None,
    ) -> None:
        self._addresses = list(addresses)
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = _connect_pinned(self._addresses, self.port, timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _has_control_characters(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


def _folder_argument(name: str) -> bytes:
    """A folder name as an IMAP argument (modified UTF-7, quoted); refuses names that could inject commands."""
    if not name or _has_control_characters(name):
        raise MailboxFolderMissing(
            f"The folder name {name!r} is empty or contains line breaks or control characters; "
            "IMAP folder names cannot."
        )
    return encode_folder(name)


def _close_quietly(client: imaplib.IMAP4) -> None:
    # After a failed handshake the socket may already be closed; the original error is what matters.
    with contextlib.suppress(Exception):
        client.shutdown()


# -- response helpers ------------------------------------------------------------

_NAMESPACE_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|(NIL))', re.IGNORECASE)


def parse_namespace_line(line: bytes) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The three namespace groups of a NAMESPACE response, each a tuple of (prefix, delimiter).

    `(("" "/")) (("shared/" "/")) NIL` gives ((("", "/"),), (("shared/", "/"),), ()).
    Namespace extensions (RFC 2342 section 6) are ignored. Raises ValueError on anything else.
    """
    position, stack, top = 0, [], []
    while position < len(line.rstrip()):
        match = _NAMESPACE_TOKEN.match(line, position)
        if match is None:
            raise ValueError(f"unexpected {line[position : position + 20]!r}")
        position = match.end()
        opening, closing, quoted, nil = match.groups()
        if opening:
            stack.append([])
        elif closing:
            if not stack:
                raise ValueError("unbalanced ')'")
            done = stack.pop()
            (stack[-1] if stack else top).append(done)
        elif quoted is not None:
            if not stack:
                raise ValueError("a string outside a list")
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", quoted).decode("utf-8", "replace"))
        elif nil:
            (stack[-1] if stack else top).append(None)
    if stack or len(top) != 3:
        raise ValueError(f"expected three namespace groups, got {len(top)}")
    groups = []
    for group in top:
        entries = []
        for entry in group or []:
            if not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[0], str):
                raise ValueError(f"a namespace entry is not (prefix delimiter): {entry!r}")
            entries.append((entry[0], entry[1] if isinstance(entry[1], str) else ""))
        groups.append(tuple(entries))
    return tuple(groups)


def _summary_from(items: dict[str, object]) -> MessageSummary | None:
    uid = _int_or_none(items.get("UID"))
    if uid is None or "BODYSTRUCTURE" not in items:
        return None  # an unsolicited FETCH (e.g. a flag change by another client)
    header_block = next((value for key, value in items.items() if key.startswith("BODY[HEADER.FIELDS")), b"")
    headers = parse_headers(header_block if isinstance(header_block, bytes) else b"")
    internal_date = _internal_date(items.get("INTERNALDATE"))
    flags = items.get("FLAGS")
    return MessageSummary(
        uid=uid,
        message_id=headers.message_id,
        subject=headers.subject,
        sender=headers.sender,
        date=headers.date or internal_date,
        size=_int_or_none(items.get("RFC822.SIZE")) or 0,
        flags=tuple(flag.decode("ascii", "replace") for flag in flags if isinstance(flag, bytes))
        if isinstance(flags, list)
        else (),
        has_candidate_attachment=bodystructure_has_candidate(items.get("BODYSTRUCTURE")),
        internal_date=internal_date,
    )


def _internal_date(value: object) -> dt.datetime | None:
    if not isinstance(value, bytes):
        return None
    # "17-Jul-1996 02:44:25 -0700"; strptime's %b depends on the locale, the month table does not.
    match = re.match(rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})", value)
    if match is None:
        return parse_date(value.decode("ascii", "replace"))
    day, month, year, hour, minute, second, zone = (part.decode() for part in match.groups())
    try:
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * (-1 if zone[0] == "-" else 1)
        return dt.datetime(
            int(year),
            _MONTHS.index(month.title()) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=dt.timezone(offset),
        )
    except ValueError:
        return None


def _batches(uids: Iterable[int], size: int) -> Iterator[list[int]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    ordered = sorted({int(uid) for uid in uids})
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _uid_set(uids: Sequence[int]) -> str:
    """Sorted UIDs as an IMAP sequence set with ranges: [1, 2, 3, 7] -> "1:3,7"."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(f"{start}:{previous}" if previous != start else str(start))
        start = previous = uid
    ranges.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(ranges)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bytes | str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int):
        return value
    return None


def _first_int(values: Iterable[object]) -> int | None:
    for value in values:
        number = _int_or_none(value)
        if number is not None:
            return number
    return None


def _response_text(data: list) -> str:
    parts = [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in data if item]
    return " ".join(parts).strip() or "no details"


def _response_code(data: list) -> str | None:
    for item in data:
        if isinstance(item, bytes) and (match := _RESPONSE_CODE.match(item)):
            return match.group(1).decode()
        if isinstance(item, str) and (match := _RESPONSE_CODE.match(item.encode())):
            return match.group(1).decode()
    return None
