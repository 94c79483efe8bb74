"""Mailboxes on the test Dovecot's users, and a progress callback that ignores its calls."""

from __future__ import annotations

from collections.abc import Sequence

from emailsync.models import Mailbox


def imap_mailbox(user, *, name: str = "ap", folders: Sequence[str] = ("INBOX",), owner=None) -> Mailbox:
    """A saved mailbox reading `user` (the `imap_user` fixture's kind) over TLS, its password encrypted."""
    mailbox = Mailbox(
        name=name,
        host=user.server.host,
        port=user.server.port,
        security="ssl",
        username=user.name,
        folders=list(folders),
        owner=owner,
    )
    mailbox.set_secret(user.password)
    mailbox.save()
    return mailbox


def no_progress(done, total=None, message=None):
    pass
