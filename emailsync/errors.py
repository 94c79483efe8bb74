"""Errors of the mailbox sync that a person can act on.

Every IMAP failure is mapped to one `MailboxError` subclass whose message says
what went wrong in words an operator understands. `transient` tells the job
layer whether retrying later may help (network trouble) or whether someone has
to change something first (wrong password, untrusted certificate).
"""

from __future__ import annotations


class MailboxError(Exception):
    """Base class of mailbox failures; `str(error)` is the message shown to people."""

    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MailboxDNSError(MailboxError):
    """The mailbox host name could not be resolved."""


class MailboxConnectionRefused(MailboxError):
    """Nothing accepts connections on the mailbox host and port."""


class MailboxTimeout(MailboxError):
    """The server did not answer in time."""

    transient = True


class MailboxTLSError(MailboxError):
    """TLS could not be set up or the server's certificate was not trusted."""


class MailboxInsecureRefused(MailboxTLSError):
    """A plain (unencrypted) connection was asked for but is not allowed by the settings."""


class MailboxAuthError(MailboxError):
    """The server rejected the user name, password or token."""


class MailboxFolderMissing(MailboxError):
    """A configured folder does not exist on the server."""


class MailboxConnectionLost(MailboxError):
    """The connection dropped in the middle of a session."""

    transient = True


class MailboxServerUnavailable(MailboxError):
    """The server said it is temporarily unable to serve (IMAP `[UNAVAILABLE]`)."""

    transient = True


class MailboxHostNotAllowed(MailboxError):
    """The host resolves to a private, loopback or otherwise internal address."""


class MailboxProtocolError(MailboxError):
    """The server answered something the client did not expect."""


class UnparseableMessage(ValueError):
    """A downloaded message could not be read as an email at all; the message says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
