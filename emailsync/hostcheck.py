"""Refuse IMAP hosts that point inside our own network.

A mailbox host is user input: without this check, anyone allowed to add a
mailbox could make the worker connect to internal services (SSRF). The
addresses returned here are the ones the client must connect to, so a second
DNS answer cannot swap in an internal address after the check.
"""

from __future__ import annotations

import ipaddress
import socket

from emailsync.errors import MailboxDNSError, MailboxHostNotAllowed

ALLOW_PRIVATE_SETTING = "EMAILSYNC_ALLOW_PRIVATE_HOSTS"


def check_host_allowed(host: str, *, allow_private: bool) -> list[str]:
    """Resolve `host` and return its addresses, refusing internal ones unless `allow_private`.

    Raises MailboxDNSError when the name does not resolve and MailboxHostNotAllowed when
    any address is private, loopback, link-local, reserved, multicast or unspecified.
    """
    addresses = _resolve(host)
    if allow_private:
        return addresses
    for address in addresses:
        reason = _internal_reason(ipaddress.ip_address(address))
        if reason:
            raise MailboxHostNotAllowed(
                f"The mailbox host {host!r} resolves to {address}, a {reason} address. Connections to internal "
                f"addresses are refused; set {ALLOW_PRIVATE_SETTING}=1 to allow them."
            )
    return addresses


def _resolve(host: str) -> list[str]:
    if not host or not host.strip():
        raise MailboxDNSError("The mailbox host is empty.")
    try:
        infos = socket.getaddrinfo(host.strip(), None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as failure:
        raise MailboxDNSError(f"The mailbox host {host!r} could not be resolved ({_describe(failure)}).") from failure
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # Drop an IPv6 zone ("%eth0") so ipaddress can read it; the zone does not change the address class.
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise MailboxDNSError(f"The mailbox host {host!r} has no address.")
    return addresses


def _internal_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    # An IPv4-mapped IPv6 address (::ffff:10.0.0.1) reaches the IPv4 host: judge that one.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for reason, matches in checks:
        if matches:
            return reason
    # Shared address space (100.64.0.0/10, carrier-grade NAT) is neither global nor private.
    if not address.is_global:
        return "non-public"
    return None


def _describe(failure: Exception) -> str:
    if isinstance(failure, socket.gaierror) and len(failure.args) > 1:
        return str(failure.args[1])
    return str(failure)
