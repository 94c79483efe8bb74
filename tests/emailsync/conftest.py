"""Fixtures for the emailsync tests: a real Dovecot server and fresh mail users on it."""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from emailsync.imap import ImapSettings
from tests.support.dovecot import DovecotServer, dovecot_installed, remove_server_files

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def dovecot():
    """One private Dovecot (IMAPS plus a plain/STARTTLS port) for the whole test session."""
    problem = None
    if not dovecot_installed():
        problem = "Dovecot is not installed (/usr/sbin/dovecot); run scripts/setup-system.sh"
    elif os.geteuid() != 0:
        problem = "the Dovecot test server must be started as root (it runs mail processes as 'mail')"
    if problem:
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    # Not pytest's tmp_path: its parents are mode 0700 and Dovecot's unprivileged users must reach the files.
    server = DovecotServer(Path(tempfile.mkdtemp(prefix="apintake-dovecot-")))
    server.start()
    yield server
    server.stop()
    remove_server_files(server)


@dataclass(frozen=True)
class ImapUser:
    """A mail user on the test server and the settings to reach it over IMAPS."""

    name: str
    password: str
    server: DovecotServer

    def settings(self, **changes) -> ImapSettings:
        """Settings that log this user in over TLS trusting the test CA; `changes` override fields."""
        base = ImapSettings(
            host=self.server.host,
            port=self.server.port,
            username=self.name,
            secret=self.password,
            security="ssl",
            ca_file=self.server.ca_file,
            timeout=10,
            allow_private=True,
        )
        return replace(base, **changes)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> ImapUser:
    """A new user with a random password and an empty mailbox."""
    name = f"user-{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(18)
    dovecot.add_user(name, password)
    return ImapUser(name=name, password=password, server=dovecot)


@pytest.fixture(scope="session")
def dovecot_shared():
    """A second Dovecot with an other-users namespace (shared/<owner>/...) and a public namespace
    (Public/...), both governed by ACLs, for the group folders scan."""
    if not dovecot_installed() or os.geteuid() != 0:
        problem = "Dovecot is not installed or the tests do not run as root"
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    server = DovecotServer(Path(tempfile.mkdtemp(prefix="apintake-dovecot-shared-")), shared_folders=True)
    server.start()
    yield server
    server.stop()
    remove_server_files(server)


@pytest.fixture(scope="session")
def oauth_provider():
    """The local OAuth / OpenID provider (tests/support/oauth_provider.py), for the whole session."""
    from tests.support.oauth_provider import OAuthProvider

    provider = OAuthProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def dovecot_oauth(oauth_provider):
    """A Dovecot whose XOAUTH2 logins are checked against the local provider's introspection
    endpoint (passdb oauth2); passwords still work for appending test mail."""
    if not dovecot_installed() or os.geteuid() != 0:
        problem = "Dovecot is not installed or the tests do not run as root"
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    server = DovecotServer(
        Path(tempfile.mkdtemp(prefix="apintake-dovecot-oauth-")),
        oauth2_introspection_url=f"{oauth_provider.url}/introspect",
    )
    server.start()
    yield server
    server.stop()
    remove_server_files(server)
