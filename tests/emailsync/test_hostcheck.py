"""Mailbox hosts that point inside our own network are refused unless explicitly allowed."""

from __future__ import annotations

import pytest

from emailsync.errors import MailboxDNSError, MailboxHostNotAllowed
from emailsync.hostcheck import check_host_allowed
from emailsync.imap import ImapConnection, ImapSettings


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("localhost", "loopback"),
        ("10.20.30.40", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.10", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6 reaches the IPv4 host
        ("100.64.0.1", "non-public"),  # carrier-grade NAT space
    ],
)
def test_internal_addresses_are_refused(host, kind):
    with pytest.raises(MailboxHostNotAllowed) as raised:
        check_host_allowed(host, allow_private=False)
    message = str(raised.value)
    assert f"a {kind} address" in message
    assert "EMAILSYNC_ALLOW_PRIVATE_HOSTS=1" in message
    assert not raised.value.transient


def test_internal_addresses_are_returned_when_allowed():
    assert check_host_allowed("127.0.0.1", allow_private=True) == ["127.0.0.1"]
    assert set(check_host_allowed("localhost", allow_private=True)) & {"127.0.0.1", "::1"}


@pytest.mark.parametrize("host", ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"])
def test_public_addresses_pass(host):
    assert check_host_allowed(host, allow_private=False) == [host]


@pytest.mark.parametrize("host", ["no-such-host.invalid", "", "   "])
def test_names_that_do_not_resolve_are_dns_errors(host):
    with pytest.raises(MailboxDNSError):
        check_host_allowed(host, allow_private=True)


def test_the_imap_client_checks_the_host_before_connecting():
    settings = ImapSettings(host="127.0.0.1", port=993, username="u", secret="s", allow_private=False)
    with pytest.raises(MailboxHostNotAllowed, match="loopback"):
        ImapConnection(settings).connect()
