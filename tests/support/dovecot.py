"""A private Dovecot IMAP server for tests and benchmarks.

Each `DovecotServer` writes its own configuration, TLS certificates, password
file and Maildirs under `base_dir` and never reads the system configuration in
/etc/dovecot. It listens on 127.0.0.1 only: IMAPS on `port` and, optionally,
plain IMAP with STARTTLS on `plain_port`.

Dovecot refuses to run mail processes as root and runs its login processes as
an unprivileged user, so mail users get the `mail` system user's uid/gid, the
login and internal processes run as `dovenull` / `dovecot` (both created by the
Debian package), and those users must be able to traverse `base_dir`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from imap_tools.imap_utf7 import utf7_encode

DOVECOT_BINARY = "/usr/sbin/dovecot"
DOVECONF_BINARY = "/usr/bin/doveconf"
HOST = "127.0.0.1"

_USER_NAME = re.compile(r"^[A-Za-z0-9._@+-]+$")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 5.0
_STOP_GRACE_SECONDS = 0.5


class DovecotError(RuntimeError):
    """The test IMAP server could not be started, stopped or driven; the message says why."""


def dovecot_installed() -> bool:
    """True when the Dovecot binaries this helper runs are present (scripts/setup-system.sh installs them)."""
    return os.access(DOVECOT_BINARY, os.X_OK) and os.access(DOVECONF_BINARY, os.X_OK)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class DovecotServer:
    """A Dovecot instance of our own: start(), add users, append mail, stop().

    `ca_file` is the PEM file of the CA that signed the server certificate
    (for `localhost` and 127.0.0.1); clients must trust it explicitly.
    """

    def __init__(
        self,
        base_dir: Path,
        port: int | None = None,
        *,
        with_plain_port: bool = True,
        shared_folders: bool = False,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.host = HOST
        self.port = port or free_port()
        self.plain_port = free_port() if with_plain_port else None
        self.config_file = self.base_dir / "dovecot.conf"
        self.log_file = self.base_dir / "dovecot.log"
        self.stderr_file = self.base_dir / "dovecot.stderr"
        self.passwd_dir = self.base_dir / "passwd.d"
        self.ca_file = self.base_dir / "tls" / "ca.pem"
        self.mail_root = self.base_dir / "mail"
        self._cert_file = self.base_dir / "tls" / "server.pem"
        self._key_file = self.base_dir / "tls" / "server.key"
        self.shared_folders = shared_folders
        # With an introspection URL, XOAUTH2 / OAUTHBEARER logins are checked against that endpoint
        # (passdb oauth2); passwords still work for the test helpers that append mail.
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_config_file = self.base_dir / "dovecot-oauth2.conf.ext"
        self.public_root = self.base_dir / "public"
        self._passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Write the configuration and start Dovecot; returns once the IMAPS port answers."""
        if self.running:
            return
        if not dovecot_installed():
            raise DovecotError(f"Dovecot is not installed ({DOVECOT_BINARY}); run scripts/setup-system.sh")
        if os.geteuid() != 0:
            raise DovecotError("DovecotServer must run as root: it runs mail processes as the 'mail' user")
        self._prepare_files()
        with self.stderr_file.open("wb") as stderr:
            # Own session: the master and every child it forks share one process group, so stop() can
            # check that nothing of this instance is left behind.
            self._process = subprocess.Popen(
                [DOVECOT_BINARY, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        self._wait_until_ready()

    def stop(self) -> None:
        """Stop Dovecot and wait until every one of its processes has exited."""
        process = self._process
        if process is None:
            return
        self._process = None
        group = process.pid  # start_new_session made the master the leader of its own process group
        # SIGTERM to the whole group: every Dovecot process shuts down gracefully at once. (Signalled
        # alone, the master waits about a second for its children.)
        _signal_group(group, signal.SIGTERM)
        if not _wait_for_group(process, group, _STOP_GRACE_SECONDS):
            # When a child exits just as the master shuts down, the master sleeps in whole seconds
            # before reaping it. This is throw-away test mail: do not wait for that.
            _signal_group(group, signal.SIGKILL)
            if not _wait_for_group(process, group, _STOP_TIMEOUT_SECONDS):
                raise DovecotError(f"Dovecot processes of group {group} survived SIGKILL")

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping users and mail."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """True while the Dovecot master process started by this object is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- users and mail ----------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create a mail user, or give an existing one a new password.

        Each user has a password file of its own: Dovecot checks a passwd-file for changes at most once a
        second, so a shared file would hide users added right after a login. Re-keying an existing user
        therefore waits until Dovecot is bound to notice.
        """
        if not _USER_NAME.match(name):
            raise ValueError(f"test user names may only use letters, digits and . _ @ + - (got {name!r})")
        if any(char in password for char in ":\n\r\0"):
            raise ValueError("test passwords may not contain ':', newlines or NUL")
        existed = name in self._passwords
        self._passwords[name] = password
        if self.passwd_dir.exists():
            self._write_passwd_file(name)
            if existed:
                time.sleep(1.1)

    def password(self, user: str) -> str:
        """The password given to add_user for `user`."""
        return self._passwords[user]

    def append(
        self,
        user: str,
        folder: str,
        raw_message: bytes,
        flags: Iterable[str] = (),
        date: dt.datetime | None = None,
    ) -> int:
        """APPEND one message (creating the folder if needed) and return its UID."""
        return self.append_many(user, folder, [raw_message], flags=flags, date=date)[0]

    def append_many(
        self,
        user: str,
        folder: str,
        raw_messages: Iterable[bytes],
        flags: Iterable[str] = (),
        date: dt.datetime | None = None,
    ) -> list[int]:
        """APPEND several messages over one connection (creating the folder if needed); returns their UIDs."""
        flag_list = f"({' '.join(flags)})" if flags else None
        when = date or dt.datetime.now(dt.UTC)
        uids = []
        with self.session(user) as client:
            self._ensure_folder(client, folder)
            for raw in raw_messages:
                typ, data = client.append(_quote(folder), flag_list, when, raw)
                _check(typ, data, f"APPEND to {folder!r}")
                match = _APPENDUID.search(data[0] or b"")
                if match is None:
                    raise DovecotError(f"APPEND to {folder!r} answered without APPENDUID: {data!r}")
                uids.append(int(match.group(2)))
        return uids

    def create_folder(self, user: str, folder: str) -> None:
        """Create a folder for `user` (no error if it exists)."""
        with self.session(user) as client:
            self._ensure_folder(client, folder)

    def delete_folder(self, user: str, folder: str) -> None:
        """Delete a folder and its mail; re-creating it gives it a new UIDVALIDITY."""
        with self.session(user) as client:
            typ, data = client.delete(_quote(folder))
            _check(typ, data, f"DELETE {folder!r}")

    def uidvalidity(self, user: str, folder: str) -> int:
        """The folder's current UIDVALIDITY, read with STATUS."""
        with self.session(user) as client:
            typ, data = client.status(_quote(folder), "(UIDVALIDITY)")
            _check(typ, data, f"STATUS {folder!r}")
            match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
            if match is None:
                raise DovecotError(f"STATUS {folder!r} answered without UIDVALIDITY: {data!r}")
            return int(match.group(1))

    def share_folder(self, owner: str, folder: str, grantee: str, rights: str = "lr") -> None:
        """Let `grantee` see `owner`'s folder (SETACL, RFC 4314); it appears in the grantee's
        other-users namespace as shared/<owner>/<folder>. Needs `shared_folders=True`."""
        with self.session(owner) as client:
            self._ensure_folder(client, folder)
            typ, data = client.setacl(_quote(folder), grantee, rights)
            _check(typ, data, f"SETACL {folder!r} {grantee}")

    def create_public_folder(self, folder: str, acl: dict[str, str]) -> None:
        """A folder of the public namespace (Public/<folder>) with the given rights per user
        ({"alice": "lrwsti"}; "anyone" for everybody). Needs `shared_folders=True`."""
        mail_user = pwd.getpwnam("mail")
        directory = self.public_root / f".{folder}"
        for path in (self.public_root, directory, directory / "cur", directory / "new", directory / "tmp"):
            path.mkdir(exist_ok=True)
            os.chown(path, mail_user.pw_uid, mail_user.pw_gid)
        lines = [f"{who if who == 'anyone' else 'user=' + who} {rights}" for who, rights in acl.items()]
        acl_file = directory / "dovecot-acl"
        acl_file.write_text("\n".join(lines) + "\n")
        os.chown(acl_file, mail_user.pw_uid, mail_user.pw_gid)

    @contextlib.contextmanager
    def session(self, user: str) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in imaplib connection for `user` over TLS, logged out afterwards."""
        client = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self.client_ssl_context(), timeout=10)
        try:
            # AUTHENTICATE PLAIN rather than LOGIN: it carries UTF-8 passwords.
            credentials = f"\0{user}\0{self._passwords[user]}".encode()
            typ, data = client.authenticate("PLAIN", lambda _challenge: credentials)
            _check(typ, data, f"login of {user!r}")
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client TLS context that trusts this server's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- internals ---------------------------------------------------------

    @staticmethod
    def _ensure_folder(client: imaplib.IMAP4, folder: str) -> None:
        if folder.upper() == "INBOX":
            return
        if folder.startswith("Public/") and client.status(_quote(folder), "(MESSAGES)")[0] == "OK":
            return  # a public folder exists, and creating it again needs a right posters lack
        typ, data = client.create(_quote(folder))
        if typ != "OK" and b"ALREADYEXISTS" not in (data[0] or b""):
            raise DovecotError(f"CREATE {folder!r} failed: {data!r}")

    def _prepare_files(self) -> None:
        _require_traversable(self.base_dir)
        mail_user = pwd.getpwnam("mail")
        dovecot_gid = _group_id("dovecot")
        for directory in (self.base_dir / "run", self.base_dir / "state", self.base_dir / "tls"):
            directory.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        self.mail_root.mkdir(exist_ok=True)
        os.chown(self.mail_root, mail_user.pw_uid, mail_user.pw_gid)
        self.mail_root.chmod(0o770)
        if self.shared_folders:
            self.public_root.mkdir(exist_ok=True)
            os.chown(self.public_root, mail_user.pw_uid, mail_user.pw_gid)
            self.public_root.chmod(0o770)
        if not self._cert_file.exists():
            _write_certificates(ca_file=self.ca_file, cert_file=self._cert_file, key_file=self._key_file)
        self.passwd_dir.mkdir(exist_ok=True)
        os.chown(self.passwd_dir, 0, dovecot_gid)
        self.passwd_dir.chmod(0o750)
        for name in self._passwords:
            self._write_passwd_file(name)
        if self.oauth2_introspection_url:
            self.oauth2_config_file.write_text(
                f"introspection_mode = post\nintrospection_url = {self.oauth2_introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                "force_introspection = yes\n"
            )
        self.config_file.write_text(self._config_text(mail_uid=mail_user.pw_uid, mail_gid=mail_user.pw_gid))
        # The config process (root) reads the key; only the auth process (user dovecot) reads passwords.
        self._key_file.chmod(0o600)
        self.log_file.touch()
        self.stderr_file.unlink(missing_ok=True)

    def _write_passwd_file(self, name: str) -> None:
        path = self.passwd_dir / name
        # nodelay: a wrong password is answered at once (tests check wrong passwords on purpose).
        line = f"{name}:{{PLAIN}}{self._passwords[name]}::::::nodelay=yes\n"
        # Write-then-rename so the auth process never reads a half-written file.
        temporary = self.passwd_dir / f".{name}.tmp"
        temporary.write_text(line, encoding="utf-8")
        os.chown(temporary, 0, _group_id("dovecot"))
        temporary.chmod(0o640)
        if path.exists():
            # Dovecot notices a change by mtime (whole seconds) or size; make sure the mtime moves.
            newer = max(int(time.time()), int(path.stat().st_mtime) + 1)
            os.utime(temporary, (newer, newer))
        temporary.replace(path)

    def _config_text(self, *, mail_uid: int, mail_gid: int) -> str:
        plain_port = self.plain_port or 0  # port 0 disables the listener
        return f"""\
# Written by tests/support/dovecot.py for one test run; not the system configuration.
base_dir = {self.base_dir / "run"}
state_dir = {self.base_dir / "state"}
instance_name = apintake-test-{self.port}
listen = {HOST}
protocols = imap
log_path = {self.log_file}
info_log_path = {self.log_file}

default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}

ssl = yes
ssl_cert = <{self._cert_file}
ssl_key = <{self._key_file}
ssl_min_protocol = TLSv1.2
# Plain IMAP on the second port is there to test our client's refusal and STARTTLS.
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
# Tests check wrong passwords; the default 2 s penalty only slows them down.
auth_failure_delay = 0
auth_verbose = yes
{"auth_debug = yes" if os.environ.get("DOVECOT_TEST_DEBUG") == "1" else ""}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
{"  mechanisms = plain login" if self.oauth2_introspection_url else ""}
}}
{self._oauth2_passdb() if self.oauth2_introspection_url else ""}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={self.mail_root}/%u
}}
mail_location = maildir:~/Maildir
# Throw-away test mail: no fsync per message (appending thousands for benchmarks is 10x faster).
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
}}
{self._shared_config() if self.shared_folders else ""}
service anvil {{
  # No growing delay after failed logins from 127.0.0.1: tests fail logins on purpose.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.port}
    ssl = yes
  }}
}}
"""

    def _oauth2_passdb(self) -> str:
        return f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.oauth2_config_file}
}}"""

    def _shared_config(self) -> str:
        # Other users' folders (type shared: the "other users" part of NAMESPACE) and a public
        # namespace (the "shared" part), both governed by ACLs. Seen flags stay private per user.
        return f"""
mail_plugins = $mail_plugins acl
protocol imap {{
  mail_plugins = $mail_plugins imap_acl
}}
plugin {{
  acl = vfile
  acl_shared_dict = file:{self.mail_root}/shared-mailboxes.db
}}
namespace shared {{
  type = shared
  separator = /
  prefix = shared/%%u/
  location = maildir:{self.mail_root}/%%u/Maildir:INDEXPVT=~/Maildir/shared/%%u
  subscriptions = no
  list = children
}}
namespace public {{
  type = public
  separator = /
  prefix = Public/
  location = maildir:{self.public_root}:INDEXPVT=~/Maildir/public
  subscriptions = no
  list = children
}}
"""

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                message = self._startup_failure()
                self.stop()  # reaps the master and anything it forked before giving up
                raise DovecotError(message)
            if _answers_imap_greeting(self.host, self.port):
                return
            time.sleep(0.02)
        message = self._startup_failure()
        self.stop()
        raise DovecotError(
            f"Dovecot did not answer on port {self.port} within {_START_TIMEOUT_SECONDS:.0f} s. " + message
        )

    def _startup_failure(self) -> str:
        """What Dovecot said about why it could not start: doveconf's validation, stderr and the log."""
        check = subprocess.run(
            [DOVECONF_BINARY, "-n", "-c", str(self.config_file)], capture_output=True, text=True, check=False
        )
        parts = [f"Dovecot failed to start (config {self.config_file})."]
        if check.returncode != 0:
            parts.append(f"doveconf -n: {check.stderr.strip()}")
        for label, path in (("stderr", self.stderr_file), ("log", self.log_file)):
            if path.exists() and (text := path.read_text(errors="replace").strip()):
                parts.append(f"{label}: {text[-2000:]}")
        return "\n".join(parts)


def _answers_imap_greeting(host: str, port: int) -> bool:
    """True when a TLS connection to the port gets the IMAP `* OK` greeting."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only a readiness probe; no credentials are sent
    try:
        with socket.create_connection((host, port), timeout=1) as raw, context.wrap_socket(raw) as tls:
            return tls.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _wait_for_group(process: subprocess.Popen[bytes], group: int, seconds: float) -> bool:
    """Reap the master and wait until no process of its group is left; False on timeout."""
    deadline = time.monotonic() + seconds
    while True:
        process.poll()  # reaps the master once it exits, so it stops counting as a group member
        if not _process_group_alive(group):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def _process_group_alive(group: int) -> bool:
    """True while a process of the group is running. Zombies do not count: once the master is gone its
    exited children belong to init, which reaps them in its own time (seconds, in some containers)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def _require_traversable(directory: Path) -> None:
    """Dovecot's unprivileged users must reach base_dir: every parent needs the 'x' bit for others."""
    for parent in directory.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise DovecotError(
                f"{parent} is not traversable by other users (mode {oct(parent.stat().st_mode & 0o777)}); "
                "Dovecot's mail and login users could not reach "
                f"{directory}. Use a base_dir under a world-traversable directory (e.g. tempfile.mkdtemp())."
            )


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as missing:
        raise DovecotError(f"system group {name!r} is missing; is the dovecot-core package installed?") from missing


def _quote(folder: str) -> bytes:
    """A folder name as an IMAP quoted string in modified UTF-7 (RFC 3501), as servers expect."""
    encoded = utf7_encode(folder)
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _check(typ: str, data: list, what: str) -> None:
    if typ != "OK":
        raise DovecotError(f"{what} failed: {typ} {data!r}")


def _write_certificates(*, ca_file: Path, cert_file: Path, key_file: Path) -> None:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AP Intake test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def remove_server_files(server: DovecotServer) -> None:
    """Delete everything under the server's base_dir (call after stop())."""
    if server.running:
        raise DovecotError("stop the server before removing its files")
    shutil.rmtree(server.base_dir, ignore_errors=True)
