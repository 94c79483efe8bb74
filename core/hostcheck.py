"""Refuse outbound connections into our own network: the one check every outbound
connection uses (IMAP mailboxes, alert webhooks, event webhooks).

A mailbox host or a webhook URL is user input: without this check, anyone allowed
to set one could make the server connect to internal services (SSRF), read local
files (file://) or reach the cloud metadata service. The host is resolved and every
address judged, including IPv6 forms that carry an IPv4 address inside them
(IPv4-mapped, 6to4, NAT64). The addresses returned are the ones to connect to, so a
second DNS answer cannot swap in an internal address after the check.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6052 well-known NAT64 prefix: the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostNotAllowed(ValueError):
    """The host resolves to an internal address (the message names it and the allow setting)."""


class HostUnresolvable(ValueError):
    """The host name is empty or does not resolve."""


class UrlNotAllowed(ValueError):
    """The URL is not http(s) to a host on a valid port, or carries credentials."""


def check_host_allowed(host: str, *, allow_private: bool, what: str = "host", setting: str = "") -> list[str]:
    """Resolve `host` and return its addresses, refusing internal ones unless `allow_private`.

    Raises HostUnresolvable when the name does not resolve and HostNotAllowed when any
    address is private, loopback, link-local, reserved, multicast, unspecified or not
    global, directly or embedded in an IPv6 address. `what` names the host in messages
    ("mailbox host"), `setting` the variable that allows internal hosts.
    """
    addresses = _resolve(host, what)
    if allow_private:
        return addresses
    for address in addresses:
        reason = internal_reason(ipaddress.ip_address(address))
        if reason:
            allow = f"; set {setting}=1 to allow them" if setting else ""
            raise HostNotAllowed(
                f"The {what} {host!r} resolves to {address}, a {reason} address. Connections to "
                f"internal addresses are refused{allow}."
            )
    return addresses


def check_url_allowed(url: str, *, allow_private: bool, what: str = "webhook", setting: str = "") -> list[str]:
    """Check an outbound http(s) URL: scheme, host, port 1-65535, no credentials, then the host
    as check_host_allowed does. Returns the host's addresses."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"The {what} URL is not valid: {exc}.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UrlNotAllowed(f"A {what} URL must start with http:// or https:// and name a host.")
    if port is not None and not 1 <= port <= 65535:
        raise UrlNotAllowed(f"The port {port} of the {what} URL is outside 1-65535.")
    if parts.username or parts.password:
        raise UrlNotAllowed(f"Put no user name or password in a {what} URL; requests are signed instead.")
    return check_host_allowed(parts.hostname, allow_private=allow_private, what=f"{what} host", setting=setting)


def internal_reason(address: IPAddress) -> str | None:
    """Why `address` is internal ("loopback", "private", ...), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            # The packet ends at the embedded IPv4 host: judge that one.
            return internal_reason(embedded)
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


def _resolve(host: str, what: str) -> list[str]:
    if not host or not host.strip():
        raise HostUnresolvable(f"The {what} is empty.")
    try:
        infos = socket.getaddrinfo(host.strip(), None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as failure:
        raise HostUnresolvable(f"The {what} {host!r} could not be resolved ({_describe(failure)}).") from failure
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # Drop an IPv6 zone ("%eth0") so ipaddress can read it; the zone does not change the address class.
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostUnresolvable(f"The {what} {host!r} has no address.")
    return addresses


def _describe(failure: Exception) -> str:
    if isinstance(failure, socket.gaierror) and len(failure.args) > 1:
        return str(failure.args[1])
    return str(failure)
