"""Refuse IMAP hosts that point inside our own network.

The check itself is core.hostcheck, shared with the alert and event webhooks;
here its answers become the mailbox errors the sync reports.
"""

from __future__ import annotations

from core import hostcheck
from emailsync.errors import MailboxDNSError, MailboxHostNotAllowed

ALLOW_PRIVATE_SETTING = "EMAILSYNC_ALLOW_PRIVATE_HOSTS"


def check_host_allowed(host: str, *, allow_private: bool) -> list[str]:
    """Resolve `host` and return its addresses, refusing internal ones unless `allow_private`.

    Raises MailboxDNSError when the name does not resolve and MailboxHostNotAllowed when
    any address is internal (see core.hostcheck.check_host_allowed).
    """
    try:
        return hostcheck.check_host_allowed(
            host, allow_private=allow_private, what="mailbox host", setting=ALLOW_PRIVATE_SETTING
        )
    except hostcheck.HostNotAllowed as exc:
        raise MailboxHostNotAllowed(str(exc)) from None
    except hostcheck.HostUnresolvable as exc:
        raise MailboxDNSError(str(exc)) from exc
