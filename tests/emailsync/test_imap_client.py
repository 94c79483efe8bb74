"""The IMAP client against a real Dovecot server: connecting, failures people see, reading and changing mail."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import socket
import tempfile
import threading
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest

from emailsync.errors import (
    MailboxAuthError,
    MailboxConnectionLost,
    MailboxConnectionRefused,
    MailboxDNSError,
    MailboxFolderMissing,
    MailboxInsecureRefused,
    MailboxTimeout,
    MailboxTLSError,
)
from emailsync.imap import ImapConnection, MessageSummary, xoauth2_sasl_string
from tests.support.dovecot import DovecotError, DovecotServer, free_port, remove_server_files

pytestmark = pytest.mark.imap

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "emails"  # shared/ beside the checkout
PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
XML_BYTES = b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl"/>\n'
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def make_message(
    subject: str,
    *,
    attachment: tuple[str, str, bytes] | None = None,
    inline_image: bool = False,
    date: dt.datetime | None = None,
) -> bytes:
    """A small message built with the stdlib; `attachment` is (filename, mime type, bytes)."""
    message = EmailMessage()
    message["From"] = "Supplier Ltd <billing@supplier.example>"
    message["To"] = "ap@buyer.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="supplier.example")
    message["Date"] = format_datetime(date or dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC))
    message.set_content("Please find our invoice attached.\n")
    if inline_image:
        message.add_alternative("<p>Hello <img src='cid:logo'></p>", subtype="html")
        html = message.get_payload()[1]
        html.add_related(PNG_BYTES, maintype="image", subtype="png", cid="<logo>")
    if attachment is not None:
        filename, mime_type, content = attachment
        maintype, subtype = mime_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def forwarded(inner: bytes) -> bytes:
    """A message forwarding `inner` as an attached message/rfc822 part."""
    outer = EmailMessage()
    outer["From"] = "colleague@buyer.example"
    outer["Subject"] = "Fwd: invoice"
    outer.set_content("See the forwarded mail.\n")
    outer.add_attachment(message_from_bytes(inner, policy=policy.default))
    return bytes(outer)


def smime_signed(subject: str) -> bytes:
    """A text message with an S/MIME signature part named smime.p7s (the signature bytes are not checked)."""
    return (
        f"From: Supplier <billing@supplier.example>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="s"\r\n'
        "\r\n--s\r\nContent-Type: text/plain\r\n\r\nSigned hello.\r\n"
        '--s\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
        'Content-Disposition: attachment; filename="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIB\r\n"
        "--s--\r\n"
    ).encode()


def as_served(raw: bytes) -> bytes:
    """What Dovecot serves for appended bytes: CRLF line ends whatever was appended, and NUL bytes
    (illegal in RFC 5322 text; malformed_3.eml has two) replaced with 0x80."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\x00", b"\x80")


# -- connecting -------------------------------------------------------------------


def test_connects_over_tls_trusting_the_extra_ca_file(imap_user):
    with ImapConnection(imap_user.settings()) as connection:
        state = connection.select_folder("INBOX")
        assert state.exists == 0
        assert state.uidvalidity > 0
        assert state.uidnext == 1
        assert "INBOX" in connection.list_folders()


def test_wrong_password_is_an_auth_error_that_does_not_show_the_password(imap_user, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-password-" + imap_user.password
    with pytest.raises(MailboxAuthError) as raised:
        ImapConnection(imap_user.settings(secret=wrong)).connect()
    assert imap_user.name in str(raised.value)
    assert not raised.value.transient
    assert wrong not in str(raised.value)
    assert wrong not in caplog.text
    assert wrong not in repr(imap_user.settings(secret=wrong))


def test_nothing_listening_is_connection_refused(imap_user):
    with pytest.raises(MailboxConnectionRefused, match="refused"):
        ImapConnection(imap_user.settings(port=free_port())).connect()


def test_certificate_from_an_unknown_ca_is_a_tls_error(imap_user):
    with pytest.raises(MailboxTLSError, match="not trusted") as raised:
        ImapConnection(imap_user.settings(ca_file=None)).connect()
    assert "EMAILSYNC_CA_FILE" in str(raised.value)


def test_tls_against_the_plain_port_is_a_tls_error(imap_user, dovecot):
    with pytest.raises(MailboxTLSError, match="TLS"):
        ImapConnection(imap_user.settings(port=dovecot.plain_port)).connect()


def test_unknown_host_is_a_dns_error(imap_user):
    with pytest.raises(MailboxDNSError, match=r"no-such-host\.invalid"):
        ImapConnection(imap_user.settings(host="no-such-host.invalid")).connect()


def test_plain_imap_is_refused_unless_allowed(imap_user, dovecot):
    plain = imap_user.settings(port=dovecot.plain_port, security="plain")
    with pytest.raises(MailboxInsecureRefused, match="EMAILSYNC_ALLOW_INSECURE"):
        ImapConnection(plain).connect()

    with ImapConnection(replace(plain, allow_insecure=True)) as connection:
        assert connection.select_folder("INBOX").exists == 0


def test_starttls_verifies_the_certificate(imap_user, dovecot):
    starttls = imap_user.settings(port=dovecot.plain_port, security="starttls")
    with ImapConnection(starttls) as connection:
        assert connection.select_folder("INBOX").exists == 0
    with pytest.raises(MailboxTLSError, match="not trusted"):
        ImapConnection(imap_user.settings(port=dovecot.plain_port, security="starttls", ca_file=None)).connect()


def test_non_ascii_password_logs_in(dovecot):
    dovecot.add_user("umlaut-user", "pässwörd-€-ok")
    settings = _settings_for(dovecot, "umlaut-user", "pässwörd-€-ok")
    dovecot.append("umlaut-user", "INBOX", make_message("Grüße"))
    with ImapConnection(settings) as connection:
        connection.select_folder("INBOX")
        assert [s.subject for s in connection.fetch_summaries(connection.search_since(dt.date(2000, 1, 1)))] == [
            "Grüße"
        ]


def test_server_that_never_answers_is_a_timeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # the kernel accepts connections; nobody ever writes a greeting
    try:
        for security in ("ssl", "starttls"):
            settings = _settings_for_port(silent.getsockname()[1], security=security, timeout=0.5)
            with pytest.raises(MailboxTimeout) as raised:
                ImapConnection(settings).connect()
            assert raised.value.transient
    finally:
        silent.close()


def test_missing_folder(imap_user):
    with ImapConnection(imap_user.settings()) as connection, pytest.raises(MailboxFolderMissing, match="Nope"):
        connection.select_folder("Nope")


def test_folder_names_and_passwords_cannot_smuggle_commands(imap_user):
    with ImapConnection(imap_user.settings()) as connection:
        with pytest.raises(MailboxFolderMissing, match="line breaks"):
            connection.select_folder('INBOX"\r\nA1 DELETE "INBOX')
        assert connection.select_folder("INBOX").exists == 0  # the session is still usable
    with pytest.raises(MailboxAuthError, match="line breaks"):
        ImapConnection(imap_user.settings(secret=imap_user.password + "\r\nA1 LOGOUT")).connect()


# -- XOAUTH2 ----------------------------------------------------------------------


def test_xoauth2_sasl_string_matches_the_documented_example():
    # Google's XOAUTH2 protocol page gives this user, token and base64 result.
    sasl = xoauth2_sasl_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert base64.b64encode(sasl) == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


def test_xoauth2_login_against_dovecot(dovecot):
    # Dovecot's XOAUTH2 mechanism hands the bearer token to the passdb like a password, so a
    # passwd-file user whose password is the token exercises the real SASL exchange.
    token = "ya29.test-token-" + "x" * 20
    dovecot.add_user("oauth-user", token)
    settings = _settings_for(dovecot, "oauth-user", token, auth="xoauth2")
    with ImapConnection(settings) as connection:
        assert connection.select_folder("INBOX").exists == 0

    with pytest.raises(MailboxAuthError, match="access token"):
        ImapConnection(_settings_for(dovecot, "oauth-user", token + "-expired", auth="xoauth2")).connect()


# -- reading ----------------------------------------------------------------------


def test_search_and_summaries_over_several_folders(imap_user, dovecot):
    user = imap_user.name
    old = dt.datetime(2023, 6, 1, 12, 0, tzinfo=dt.UTC)
    recent = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    inbox = {
        "pdf": make_message("Invoice 1001", attachment=("INV-1001.pdf", "application/pdf", PDF_BYTES)),
        "plain": make_message("Lunch on Friday?"),
        "newsletter": make_message("Newsletter", inline_image=True),
        "old": make_message("Invoice from 2023", attachment=("old.pdf", "application/pdf", PDF_BYTES)),
    }
    uids = {name: dovecot.append(user, "INBOX", raw, date=recent) for name, raw in inbox.items() if name != "old"}
    uids["old"] = dovecot.append(user, "INBOX", inbox["old"], date=old)
    folder = "Rechnungen/Größe"
    archive = {
        "xml": make_message("Rechnung für März", attachment=("rechnung.xml", "application/xml", XML_BYTES)),
        "sample-test_7": (SAMPLES / "test_7.eml").read_bytes(),  # a PDF among images and .htm parts
        "sample-test_8": (SAMPLES / "test_8.eml").read_bytes(),  # text and HTML only
        "sample-test_6": (SAMPLES / "test_6.eml").read_bytes(),  # HTML with nameless inline images
    }
    archive_uids = {
        name: dovecot.append(user, folder, raw, flags=("\\Seen",), date=recent) for name, raw in archive.items()
    }

    with ImapConnection(imap_user.settings()) as connection:
        assert set(connection.list_folders()) >= {"INBOX", folder}

        connection.select_folder("INBOX")
        found = connection.search_since(dt.date(2024, 1, 1))
        assert found == sorted(uids[name] for name in ("pdf", "plain", "newsletter"))
        summaries = {s.uid: s for s in connection.fetch_summaries([*found, uids["old"]], batch_size=2)}
        assert summaries[uids["pdf"]].has_candidate_attachment is True
        assert summaries[uids["plain"]].has_candidate_attachment is False
        assert summaries[uids["newsletter"]].has_candidate_attachment is False
        assert summaries[uids["old"]].has_candidate_attachment is True
        pdf = summaries[uids["pdf"]]
        assert pdf.subject == "Invoice 1001"
        assert pdf.sender == "Supplier Ltd <billing@supplier.example>"
        assert pdf.date == dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
        assert pdf.size == len(as_served(inbox["pdf"]))
        assert pdf.message_id and pdf.message_id.startswith("<") and pdf.message_id.endswith("@supplier.example>")
        assert "\\Seen" not in pdf.flags

        connection.select_folder(folder)
        found = connection.search_since(dt.date(2024, 1, 1))
        assert found == sorted(archive_uids.values())
        summaries = {s.uid: s for s in connection.fetch_summaries(found)}
        by_name = {name: summaries[uid] for name, uid in archive_uids.items()}
        assert by_name["xml"].subject == "Rechnung für März"
        assert by_name["xml"].has_candidate_attachment is True
        assert by_name["sample-test_7"].has_candidate_attachment is True
        assert by_name["sample-test_7"].subject == "I: Ordine"
        assert by_name["sample-test_7"].message_id == "<ed264cf8.1d2e138.18e5b8f.29@voidstudicom.it>"
        assert by_name["sample-test_8"].has_candidate_attachment is False
        assert by_name["sample-test_6"].has_candidate_attachment is False
        assert by_name["sample-test_6"].subject == "Быстрее вкладывайте в золото!"
        assert all("\\Seen" in summary.flags for summary in by_name.values())


def test_forwarded_and_signed_messages(imap_user, dovecot):
    pdf_mail = make_message("Invoice 7", attachment=("INV-7.pdf", "application/pdf", PDF_BYTES))
    uids = dovecot.append_many(
        imap_user.name,
        "INBOX",
        [forwarded(pdf_mail), forwarded(make_message("just text")), smime_signed("Signed note")],
    )
    with ImapConnection(imap_user.settings()) as connection:
        connection.select_folder("INBOX")
        hints = [s.has_candidate_attachment for s in connection.fetch_summaries(uids)]
    # The PDF inside a forwarded mail counts; a forwarded mail without files and a signature do not.
    assert hints == [True, False, False]


def test_summaries_of_every_sample_email(imap_user, dovecot):
    """Each sample file's has-attachment hint matches what a person sees in it."""
    sees_attachments = {
        "malformed_1.eml": True,  # 20160523_916527.jpg_.zip (after a reused boundary)
        "malformed_2.eml": True,  # DSN57BAC498.txt
        "malformed_3.eml": False,  # broken boundary: one unreadable body
        "test_1.eml": True,  # ФНС_РФ558.zip  # noqa: RUF003
        "test_2.eml": True,  # Bollettino.pdf and two inline images
        "test_3.eml": True,  # message.txt
        "test_4.eml": True,  # Payment Invoice.zip
        "test_5.eml": True,  # named inline images
        "test_6.eml": False,  # nameless inline images only
        "test_7.eml": True,  # a PDF, images, .htm parts
        "test_8.eml": False,
        "test_9.eml": False,
    }
    uids = {name: dovecot.append(imap_user.name, "INBOX", (SAMPLES / name).read_bytes()) for name in sees_attachments}
    with ImapConnection(imap_user.settings()) as connection:
        connection.select_folder("INBOX")
        summaries = {s.uid: s for s in connection.fetch_summaries(uids.values())}
    assert {name: summaries[uid].has_candidate_attachment for name, uid in uids.items()} == sees_attachments
    assert summaries[uids["test_1.eml"]].subject == "письмо уведом-е"  # noqa: RUF001
    assert summaries[uids["test_1.eml"]].message_id is None  # the file has no Message-ID
    assert summaries[uids["test_9.eml"]].subject.startswith("我把镜头拉近些")
    assert summaries[uids["test_5.eml"]].subject == "Je prépare mon été zéro complexe !"


def test_fetch_raw_returns_the_appended_bytes_without_marking_seen(imap_user, dovecot):
    originals = [
        make_message("with pdf", attachment=("a.pdf", "application/pdf", PDF_BYTES)),
        (SAMPLES / "test_2.eml").read_bytes(),  # LF line ends, 1.5 MB
        (SAMPLES / "malformed_3.eml").read_bytes(),
    ]
    uids = dovecot.append_many(imap_user.name, "INBOX", originals)
    with ImapConnection(imap_user.settings()) as connection:
        connection.select_folder("INBOX")
        fetched = dict(connection.fetch_raw(uids, batch_size=2))
        assert [fetched[uid] for uid in uids] == [as_served(raw) for raw in originals]
        assert all("\\Seen" not in s.flags for s in connection.fetch_summaries(uids))


def test_uids_that_no_longer_exist_are_left_out(imap_user, dovecot):
    uids = dovecot.append_many(imap_user.name, "INBOX", [make_message("one"), make_message("two")])
    with dovecot.session(imap_user.name) as admin:  # another client deletes the first message
        admin.select("INBOX")
        admin.uid("STORE", str(uids[0]), "+FLAGS", "(\\Deleted)")
        admin.expunge()
    with ImapConnection(imap_user.settings()) as connection:
        connection.select_folder("INBOX")
        assert [s.uid for s in connection.fetch_summaries([*uids, 999])] == [uids[1]]
        assert [uid for uid, _ in connection.fetch_raw([uids[0], 999])] == []


# -- changing ---------------------------------------------------------------------


def test_mark_seen_add_flag_and_move(imap_user, dovecot):
    uids = dovecot.append_many(imap_user.name, "INBOX", [make_message(f"m{n}") for n in range(4)])
    dovecot.create_folder(imap_user.name, "Processed")
    with ImapConnection(imap_user.settings()) as connection:
        connection.select_folder("INBOX")
        connection.mark_seen(uids[:2])
        connection.add_flag([uids[1]], "$Invoiced")
        flags = {s.uid: s.flags for s in connection.fetch_summaries(uids)}
        assert "\\Seen" in flags[uids[0]] and "\\Seen" in flags[uids[1]] and "\\Seen" not in flags[uids[2]]
        assert "$Invoiced" in flags[uids[1]] and "$Invoiced" not in flags[uids[0]]

        assert "MOVE" in connection.capabilities
        connection.move(uids[:2], "Processed")
        assert connection.search_since(dt.date(2000, 1, 1)) == uids[2:]

        # A server without MOVE: the client falls back to COPY + \Deleted + UID EXPUNGE.
        connection._capabilities = connection.capabilities - {"MOVE"}
        connection.move([uids[2]], "Processed")
        assert connection.search_since(dt.date(2000, 1, 1)) == [uids[3]]

        with pytest.raises(MailboxFolderMissing):
            connection.move([uids[3]], "Does-Not-Exist")

        state = connection.select_folder("Processed")
        assert state.exists == 3
        subjects = sorted(s.subject for s in connection.fetch_summaries(connection.search_since(dt.date(2000, 1, 1))))
        assert subjects == ["m0", "m1", "m2"]


def test_uidvalidity_changes_when_a_folder_is_recreated(imap_user, dovecot):
    dovecot.append(imap_user.name, "Invoices", make_message("first"))
    with ImapConnection(imap_user.settings()) as connection:
        before = connection.select_folder("Invoices")
    assert before.uidvalidity == dovecot.uidvalidity(imap_user.name, "Invoices")

    dovecot.delete_folder(imap_user.name, "Invoices")
    dovecot.append(imap_user.name, "Invoices", make_message("second"))
    with ImapConnection(imap_user.settings()) as connection:
        after = connection.select_folder("Invoices")
        uids = connection.search_since(dt.date(2000, 1, 1))
    assert after.uidvalidity != before.uidvalidity
    assert after.uidvalidity == dovecot.uidvalidity(imap_user.name, "Invoices")
    assert uids == [1]  # the same UID as the deleted message: only UIDVALIDITY tells them apart


def test_server_stopping_mid_session_is_connection_lost():
    server = DovecotServer(Path(tempfile.mkdtemp(prefix="apintake-dovecot-")), with_plain_port=False)
    server.start()
    try:
        server.add_user("mid", "pw-mid")
        uids = server.append_many("mid", "INBOX", [make_message(f"m{n}") for n in range(3)])
        with ImapConnection(_settings_for(server, "mid", "pw-mid")) as connection:
            connection.select_folder("INBOX")
            first: list[MessageSummary] = list(connection.fetch_summaries(uids[:1]))
            assert len(first) == 1
            server.stop()
            with pytest.raises(MailboxConnectionLost) as raised:
                list(connection.fetch_summaries(uids))
            assert raised.value.transient
            with pytest.raises(MailboxConnectionLost, match="Not connected"):
                connection.select_folder("INBOX")
        # Back up on the same port with the same users and mail.
        server.start()
        with ImapConnection(_settings_for(server, "mid", "pw-mid")) as connection:
            assert connection.select_folder("INBOX").exists == 3
            assert connection.search_since(dt.date(2000, 1, 1)) == uids
        server.restart()
        assert server.uidvalidity("mid", "INBOX") > 0
    finally:
        server.stop()
        remove_server_files(server)


@pytest.mark.parametrize(("behaviour", "error"), [("hang up", MailboxConnectionLost), ("go silent", MailboxTimeout)])
def test_server_failing_after_login(behaviour, error):
    """A fake server that greets and accepts the login, then hangs up or stops answering at SELECT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK fake server ready\r\n")
            for line in lines:
                tag, command = line.split()[:2]
                if command.upper() == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                elif command.upper() == b"LOGIN":
                    conn.sendall(tag + b" OK logged in\r\n")
                else:  # SELECT
                    if behaviour == "go silent":
                        done.wait(timeout=10)
                    return

    done = threading.Event()
    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        connection = ImapConnection(_settings_for_port(listener.getsockname()[1], security="plain", timeout=0.5))
        connection.connect()
        with pytest.raises(error) as raised:
            connection.select_folder("INBOX")
        assert raised.value.transient
        assert "INBOX" in str(raised.value)
    finally:
        done.set()
        listener.close()
        thread.join(timeout=5)


# -- odd server answers (no server needed) ---------------------------------------------


@pytest.mark.parametrize(
    ("bodystructure", "expected"),
    [
        # A bare text message and one with a named PDF: the ordinary cases.
        ([b"text", b"plain", [b"charset", b"utf-8"], None, None, b"7bit", b"12", b"1"], False),
        (
            [
                [b"text", b"plain", None, None, None, b"7bit", b"5", b"1"],
                [b"application", b"pdf", [b"name", b"a.pdf"], None, None, b"base64", b"100"],
                b"mixed",
            ],
            True,
        ),
        # Disposition found even when a server leaves out the MD5 slot.
        ([b"image", b"png", None, None, None, b"base64", b"10", [b"attachment", None]], True),
        # Nothing usable: say True so the message is downloaded and looked at.
        (None, True),
        ([], True),
        (b"garbage", True),
        ([b"text"], True),
        ([[]], True),
        ([[b"text", b"plain"], [b"message", b"rfc822", None, None, None, b"7bit", b"9"]], True),
    ],
)
def test_attachment_hint_from_odd_bodystructures(bodystructure, expected):
    from emailsync.mime import bodystructure_has_candidate

    assert bodystructure_has_candidate(bodystructure) is expected


def test_fetch_response_with_literals_quotes_and_nil():
    from emailsync.imap_response import parse_fetch_response

    data = [
        (b"7 (UID 42 FLAGS (\\Seen $Invoice) BODY[HEADER.FIELDS (SUBJECT)] {20}", b'Subject: a (b) "c"\r\n'),
        b' BODYSTRUCTURE ("application" "pdf" ("name" "x \\"q\\".pdf") NIL NIL "base64" 10 NIL NIL NIL NIL))',
    ]
    [items] = parse_fetch_response(data)
    assert items["UID"] == b"42"
    assert items["FLAGS"] == [b"\\Seen", b"$Invoice"]
    assert items["BODY[HEADER.FIELDS (SUBJECT)]"] == b'Subject: a (b) "c"\r\n'
    assert items["BODYSTRUCTURE"][2] == [b"name", b'x "q".pdf']
    assert items["BODYSTRUCTURE"][3] is None


@pytest.mark.parametrize(
    "data",
    [[b"1 (UID 1 FLAGS (\\Seen)"], [b"1 (UID 1))"], [(b"1 (UID 1 BODY[] {99}", b"short")], [b"1 (UID [1])"]],
)
def test_malformed_fetch_responses_are_rejected(data):
    from emailsync.imap_response import ImapResponseError, parse_fetch_response

    with pytest.raises(ImapResponseError):
        parse_fetch_response(data)


# -- the test server itself ----------------------------------------------------------


def test_dovecot_start_failure_explains_itself():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    server = DovecotServer(Path(tempfile.mkdtemp(prefix="apintake-dovecot-")), port=busy.getsockname()[1])
    try:
        with pytest.raises(DovecotError, match="Address already in use"):
            server.start()
        assert not server.running
    finally:
        busy.close()
        remove_server_files(server)


# -- helpers ----------------------------------------------------------------------


def _settings_for(server: DovecotServer, user: str, secret: str, **changes):
    from emailsync.imap import ImapSettings

    values = {
        "host": server.host,
        "port": server.port,
        "username": user,
        "secret": secret,
        "ca_file": server.ca_file,
        "timeout": 10,
        "allow_private": True,
    }
    return ImapSettings(**{**values, **changes})


def _settings_for_port(port: int, *, security: str, timeout: float):
    from emailsync.imap import ImapSettings

    return ImapSettings(
        host="127.0.0.1",
        port=port,
        username="nobody",
        secret="irrelevant",
        security=security,
        timeout=timeout,
        allow_private=True,
        allow_insecure=True,
    )
