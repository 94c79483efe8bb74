"""One host and URL check for every outbound connection (mailboxes, alert and event
webhooks): internal addresses in any disguise, non-HTTP schemes and bad ports are refused."""

import pytest

from core.hostcheck import HostNotAllowed, UrlNotAllowed, check_url_allowed
from emailsync.errors import MailboxHostNotAllowed
from emailsync.hostcheck import check_host_allowed


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 around 10.0.0.1
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 around the metadata service
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 (RFC 6052) around 127.0.0.1
        ("64:ff9b::c0a8:101", "private"),  # NAT64 around 192.168.1.1
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:a9fe:a9fe", "link-local"),
    ],
)
def test_ipv6_forms_that_embed_an_internal_ipv4_address_are_refused(host, kind):
    with pytest.raises(MailboxHostNotAllowed, match=f"a {kind} address"):
        check_host_allowed(host, allow_private=False)


@pytest.mark.parametrize("host", ["2002:808:808::1", "64:ff9b::808:808"])
def test_ipv6_forms_around_a_public_ipv4_address_pass(host):
    assert check_host_allowed(host, allow_private=False) == [host]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/hostname", "http:// or https://"),
        ("gopher://8.8.8.8/", "http:// or https://"),
        ("ftp://8.8.8.8/x", "http:// or https://"),
        ("http:///no-host", "http:// or https://"),
        ("http://8.8.8.8:0/", "outside 1-65535"),
        ("http://8.8.8.8:70000/", "not valid"),
        ("https://user:secret@8.8.8.8/", "no user name or password"),
    ],
)
def test_urls_that_are_not_plain_http_to_a_host_are_refused(url, words):
    with pytest.raises(UrlNotAllowed, match=words):
        check_url_allowed(url, allow_private=True, what="webhook", setting="X_ALLOW")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://[::1]/",
        "http://169.254.169.254/latest",
        "http://10.1.2.3/",
        "https://[2002:7f00:1::1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://localhost/",
    ],
)
def test_urls_to_internal_hosts_are_refused_unless_allowed(url):
    with pytest.raises(HostNotAllowed, match="X_ALLOW=1"):
        check_url_allowed(url, allow_private=False, what="webhook", setting="X_ALLOW")
    check_url_allowed(url, allow_private=True, what="webhook", setting="X_ALLOW")


def test_a_public_url_passes():
    assert check_url_allowed("https://8.8.8.8/hook", allow_private=False, what="webhook", setting="X_ALLOW") == [
        "8.8.8.8"
    ]
