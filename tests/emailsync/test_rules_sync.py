"""Mail rules during a real sync against Dovecot, the dry run, body-only invoices, and the rules API and admin."""

from __future__ import annotations

import io
import re
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.storage import default_storage
from pypdf import PdfReader

from core.actors import Actor
from core.models import AuditEntry
from emailsync.models import Mailbox, MailMessage, MailRule
from emailsync.services import mail_rule_save, mailbox_rules_test, mailbox_sync
from invoices.models import Invoice, Vendor
from invoices.services import invoice_process
from jobs.models import Job
from tests.emailsync.mailboxes import imap_mailbox, no_progress
from tests.emailsync.messages import CII, PLAIN_PDF, UBL, file_attachment, invoice_mail

pytestmark = [pytest.mark.imap, pytest.mark.django_db]


@pytest.fixture
def imap_settings(settings, dovecot):
    settings.EMAILSYNC_CA_FILE = str(dovecot.ca_file)
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = True
    return settings


def html_invoice(subject: str, html: str, *, sender: str = "billing@hosting.example") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "ap@buyer.example", subject
    message.set_content("Your invoice is below (HTML).")
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def flags_and_subjects(server, user: str, folder: str) -> dict[str, str]:
    with server.session(user) as client:
        client.select(f'"{folder}"', readonly=True)
        _typ, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = {}
    for item in data:
        if isinstance(item, tuple):
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
            subject = item[1].decode().split(":", 1)[1].strip()
            found[subject] = flags
    return found


class CountingHandler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        CountingHandler.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def tracker():
    """A web server that records every request made to it (it must get none)."""
    CountingHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rules_decide_each_message_of_a_real_sync(imap_settings, imap_user, make_user, tracker):
    server, name = imap_user.server, imap_user.name
    owner, payables = make_user("ap-owner"), make_user("payables")
    vendor = Vendor.objects.create(name="Supplier Ltd")
    mailbox = imap_mailbox(imap_user, owner=owner)
    actor = Actor(user=None, source="command")
    ignore = mail_rule_save(
        actor=actor,
        mailbox=mailbox,
        name="Newsletters",
        sender="news.example",
        action=MailRule.Action.IGNORE,
        after_processing="move",
        move_to_folder="Newsletters",
    )
    xml_only = mail_rule_save(
        actor=actor,
        mailbox=mailbox,
        name="Supplier: XML only",
        sender="supplier.example",
        action=MailRule.Action.MATCHING_ATTACHMENTS,
        attachment_filename="*.xml",
        vendor=vendor,
        invoice_owner=payables,
        after_processing="flag",
    )
    body = mail_rule_save(
        actor=actor,
        mailbox=mailbox,
        name="Hosting bills are the body",
        sender="hosting.example",
        action=MailRule.Action.BODY,
        after_processing="seen",
    )
    server.create_folder(name, "Newsletters")
    server.append_many(
        name,
        "INBOX",
        [
            invoice_mail("Our newsletter", [file_attachment(PLAIN_PDF)], sender="letters@news.example"),
            invoice_mail(
                "Invoice 7 and statement",
                [file_attachment(UBL), ("statement.pdf", PLAIN_PDF.read_bytes(), "application/pdf")],
            ),
            html_invoice(
                "Hosting invoice 2024-11",
                f"<h1>Invoice HX-2024-11</h1><p>Total due: EUR 49.00</p>"
                f'<img src="{tracker}/pixel.png"><link rel="stylesheet" '
                f'href="file:///etc/passwd"><img src="file:///etc/passwd">',
            ),
            invoice_mail("Hello from a friend", [], sender="friend@elsewhere.example"),
            invoice_mail("CII from someone else", [file_attachment(CII)], sender="ar@other.example"),
        ],
    )

    result = mailbox_sync(mailbox=mailbox, progress=no_progress)

    messages = {m.subject: m for m in MailMessage.objects.filter(mailbox=mailbox)}
    assert result["messages_new"] == 5
    # Ignored: recorded with its rule, nothing ingested, moved as the rule says.
    newsletter = messages["Our newsletter"]
    assert (newsletter.status, newsletter.rule, newsletter.rule_name) == ("ignored", ignore, "Newsletters")
    assert not Invoice.objects.filter(source_ref__startswith=f"email:{mailbox.pk}:{newsletter.pk}:").exists()
    assert "Our newsletter" in flags_and_subjects(server, name, "Newsletters")
    inbox = flags_and_subjects(server, name, "INBOX")
    assert "Our newsletter" not in inbox
    # Only the matching attachment, with the rule's vendor and owner; the message flagged.
    supplier = messages["Invoice 7 and statement"]
    assert supplier.rule == xml_only and supplier.invoices_created == 1
    assert "statement.pdf" in [part["filename"] for part in supplier.skipped_parts]
    taken = Invoice.objects.get(source_ref__startswith=f"email:{mailbox.pk}:{supplier.pk}:")
    assert taken.original_filename == UBL.name and taken.owner == payables and taken.vendor == vendor
    assert "\\Flagged" in inbox["Invoice 7 and statement"]
    # Queued in one batch with the others, its processing job still belongs to the invoice's owner.
    processing = Job.objects.filter(kind="invoices.process_invoice")
    assert processing.get(params__invoice_id=taken.pk).owner == payables
    assert processing.count() == 3 and set(processing.values_list("owner", flat=True)) == {owner.pk, payables.pk}
    # Validation keeps the vendor the rule assigned instead of matching the seller.
    assert invoice_process(invoice=taken).vendor == vendor
    # The body became a PDF invoice linked to its message; nothing was fetched while rendering it.
    hosting = messages["Hosting invoice 2024-11"]
    assert hosting.rule == body and hosting.status == "processed" and hosting.invoices_created == 1
    pdf_invoice = Invoice.objects.get(source_ref=f"email:{mailbox.pk}:{hosting.pk}:body")
    assert pdf_invoice.owner == owner and pdf_invoice.original_filename == "Hosting invoice 2024-11.pdf"
    with default_storage.open(pdf_invoice.original.name, "rb") as handle:
        content = handle.read()
    assert content.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert "Invoice HX-2024-11" in text and "EUR 49.00" in text and "billing@hosting.example" in text
    assert "root:" not in text
    assert CountingHandler.requests == []
    assert "\\Seen" in inbox["Hosting invoice 2024-11"]
    # No rule matched: the default takes attachments; a message without any is skipped, and left alone.
    friend, other = messages["Hello from a friend"], messages["CII from someone else"]
    assert (friend.status, friend.rule, friend.rule_name) == ("skipped", None, "")
    assert other.rule is None and other.invoices_created == 1
    assert inbox["Hello from a friend"] == "" and "\\Flagged" not in inbox["CII from someone else"]


def test_dry_run_shows_what_the_rules_would_do_and_changes_nothing(imap_settings, imap_user):
    server, name = imap_user.server, imap_user.name
    mailbox = imap_mailbox(imap_user)
    server.append_many(
        name,
        "INBOX",
        [
            invoice_mail(
                "Invoice 1", [file_attachment(UBL), ("statement.pdf", PLAIN_PDF.read_bytes(), "application/pdf")]
            ),
            invoice_mail("Payment reminder", [file_attachment(CII)]),
            invoice_mail("Just hello", []),
        ],
    )
    mailbox_sync(mailbox=mailbox, progress=no_progress)
    invoices_before = Invoice.objects.count()
    statuses_before = dict(MailMessage.objects.values_list("subject", "status"))
    actor = Actor(user=None, source="command")
    mail_rule_save(
        actor=actor,
        mailbox=mailbox,
        name="No reminders",
        subject="reminder",
        action=MailRule.Action.IGNORE,
        after_processing="move",
        move_to_folder="Trash",
    )
    mail_rule_save(
        actor=actor,
        mailbox=mailbox,
        name="Only PDFs",
        action=MailRule.Action.MATCHING_ATTACHMENTS,
        attachment_content_type="application/pdf",
        sender="supplier.example",
    )

    result = mailbox_rules_test(mailbox=mailbox, actor=actor, limit=2)

    assert result["ok"] and result["rules"] == 2
    assert len(result["messages"]) == 2  # the last two recorded
    rows = {row["subject"]: row for row in mailbox_rules_test(mailbox=mailbox, actor=actor, limit=10)["messages"]}
    assert rows["Payment reminder"]["rule"] == "No reminders" and rows["Payment reminder"]["action"] == "ignore"
    assert rows["Payment reminder"]["move_to_folder"] == "Trash"
    assert rows["Payment reminder"]["recorded_rule"] is None  # synced before the rule existed
    assert rows["Invoice 1"]["rule"] == "Only PDFs" and rows["Invoice 1"]["attachments"] == ["statement.pdf"]
    assert rows["Just hello"]["rule"] is None  # no PDF attached: the rule does not match
    assert rows["Just hello"]["outcome"] == "no rule matched (default): nothing to take"
    # Nothing ingested, nothing recorded differently, nothing moved on the server.
    assert Invoice.objects.count() == invoices_before
    assert dict(MailMessage.objects.values_list("subject", "status")) == statuses_before
    assert set(flags_and_subjects(server, name, "INBOX")) == {"Invoice 1", "Payment reminder", "Just hello"}


def test_dry_run_reports_a_message_gone_from_the_server(imap_settings, imap_user):
    server, name = imap_user.server, imap_user.name
    mailbox = imap_mailbox(imap_user)
    server.append(name, "INBOX", invoice_mail("Invoice 1", [file_attachment(UBL)]))
    mailbox_sync(mailbox=mailbox, progress=no_progress)
    with server.session(name) as client:
        client.select("INBOX")
        client.store("1:*", "+FLAGS", "(\\Deleted)")
        client.expunge()
    row = mailbox_rules_test(mailbox=mailbox, actor=Actor(user=None, source="command"))["messages"][0]
    assert row["outcome"] == "The message is not on the server any more." and row["rule"] is None


def test_body_rule_on_a_plain_text_message(imap_settings, imap_user):
    mailbox = imap_mailbox(imap_user)
    mail_rule_save(actor=Actor(user=None, source="command"), mailbox=mailbox, name="body", action=MailRule.Action.BODY)
    message = EmailMessage()
    message["From"], message["Subject"] = "billing@utility.example", "Electricity bill 11/2024"
    message.set_content("Invoice number: E-2024-11\nAmount due: 120.50 EUR\n<script>not markup</script>\n")
    imap_user.server.append(imap_user.name, "INBOX", message.as_bytes())

    assert mailbox_sync(mailbox=mailbox, progress=no_progress)["invoices_created"] == 1
    invoice = Invoice.objects.get(source_ref__endswith=":body")
    with default_storage.open(invoice.original.name, "rb") as handle:
        text = "".join(page.extract_text() for page in PdfReader(handle).pages)
    assert "E-2024-11" in text and "<script>not markup</script>" in text  # escaped, shown as text


# -- API and admin -----------------------------------------------------------------------------------------


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


@pytest.mark.services
def test_rules_api_create_order_validate_and_scope(clerk, make_user, client_for):
    client = client_for(clerk)
    mine = Mailbox.objects.create(name="mine", host="imap.example.com", username="a", owner=clerk)
    theirs = Mailbox.objects.create(
        name="theirs", host="imap.example.com", username="b", owner=make_user("other", role="ap_clerk")
    )

    first = client.post(
        "/api/v1/mail-rules/",
        {"mailbox": mine.pk, "name": "reminders", "subject": "reminder", "action": "ignore"},
        format="json",
    )
    second = client.post(
        "/api/v1/mail-rules/",
        {"mailbox": mine.pk, "name": "xml", "position": 5, "attachment_filename": "*.xml", "action": "matching"},
        format="json",
    )
    assert first.status_code == 201 and second.status_code == 201, (first.content, second.content)
    listed = client.get(f"/api/v1/mail-rules/?mailbox={mine.pk}").json()
    names = [r["name"] for r in (listed["results"] if isinstance(listed, dict) else listed)]
    assert names == ["xml", "reminders"]  # by position: 5 before the default 10
    bad = client.post(
        "/api/v1/mail-rules/",
        {"mailbox": mine.pk, "name": "bad", "subject": "(unclosed", "attachment_filename": "inv-[0-9.pdf"},
        format="json",
    )
    assert bad.status_code == 400
    assert "regular expression" in bad.json()["subject"][0] and "never closed" in bad.json()["attachment_filename"][0]
    assert MailRule.objects.filter(name="bad").count() == 0
    foreign = client.post("/api/v1/mail-rules/", {"mailbox": theirs.pk, "name": "x"}, format="json")
    assert foreign.status_code == 400 and MailRule.objects.filter(mailbox=theirs).count() == 0
    hand_over = client.patch(f"/api/v1/mail-rules/{first.json()['id']}/", {"invoice_owner": "other"}, format="json")
    assert hand_over.status_code == 400 and "staff" in hand_over.json()["invoice_owner"][0]
    assert (
        client_for(make_user("third", role="ap_clerk")).get(f"/api/v1/mail-rules/{first.json()['id']}/").status_code
        == 404
    )
    assert client.delete(f"/api/v1/mail-rules/{second.json()['id']}/").status_code == 204
    assert list(
        AuditEntry.objects.filter(action__startswith="mailbox.rule").values_list("action", flat=True).order_by("pk")
    ) == ["mailbox.rule_create", "mailbox.rule_create", "mailbox.rule_delete"]
    viewer = client_for(make_user("viewer", role="viewer"))
    assert viewer.post("/api/v1/mail-rules/", {"mailbox": mine.pk, "name": "v"}, format="json").status_code == 403


def test_test_rules_api_and_admin_page(imap_settings, imap_user, clerk, client_for, client):
    mailbox = imap_mailbox(imap_user, owner=clerk)
    imap_user.server.append(imap_user.name, "INBOX", invoice_mail("Payment reminder", [file_attachment(UBL)]))
    mailbox_sync(mailbox=mailbox, progress=no_progress)
    MailRule.objects.create(mailbox=mailbox, name="No reminders", subject="reminder", action="ignore")

    response = client_for(clerk).post(f"/api/v1/mailboxes/{mailbox.pk}/test-rules/", {"limit": 5}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["messages"][0]["rule"] == "No reminders"
    assert (
        client_for(clerk).post(f"/api/v1/mailboxes/{mailbox.pk}/test-rules/", {"limit": 0}, format="json").status_code
        == 400
    )

    clerk.is_staff = True
    clerk.save()
    client.force_login(clerk)
    page = client.get(f"/admin/emailsync/mailbox/{mailbox.pk}/test-rules/?limit=5")
    assert page.status_code == 200
    assert "No reminders" in page.content.decode() and "Payment reminder" in page.content.decode()
    assert Invoice.objects.filter(source_ref__contains=":body").count() == 0


def test_admin_inline_refuses_a_bad_glob_and_audits_a_good_rule(clerk, client, settings):
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = True
    clerk.is_staff = True
    clerk.save()
    client.force_login(clerk)
    mailbox = Mailbox.objects.create(name="inline", host="127.0.0.1", username="a", owner=clerk)
    mailbox.set_secret("x")
    mailbox.save()
    url = f"/admin/emailsync/mailbox/{mailbox.pk}/change/"
    form = {
        "name": "inline",
        "host": "127.0.0.1",
        "port": 993,
        "security": "ssl",
        "username": "a",
        "auth": "password",
        "oauth_provider": "",
        "folders": '["INBOX"]',
        "lookback_months": 3,
        "enabled": "on",
        "after_processing": "nothing",
        "move_to_folder": "",
        "owner": clerk.pk,
        "rules-TOTAL_FORMS": 1,
        "rules-INITIAL_FORMS": 0,
        "rules-MIN_NUM_FORMS": 0,
        "rules-MAX_NUM_FORMS": 1000,
        "rules-0-position": 10,
        "rules-0-name": "pdfs",
        "rules-0-enabled": "on",
        "rules-0-attachment_filename": "invoice-[0-9.pdf",
        "rules-0-action": "matching",
        "rules-0-after_processing": "",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200 and "never closed" in refused.content.decode()
    assert not MailRule.objects.exists()

    form["rules-0-attachment_filename"] = "invoice-[0-9]*.pdf"
    saved = client.post(url, form)
    assert saved.status_code == 302, re.findall(r"errorlist[^>]*>.*?</ul>", saved.content.decode(), re.S)
    rule = MailRule.objects.get(mailbox=mailbox)
    assert rule.attachment_filename == "invoice-[0-9]*.pdf"
    assert AuditEntry.objects.filter(action="mailbox.rule_create", actor_label="clerk").exists()
