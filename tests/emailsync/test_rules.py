"""Mail rules decide per message: each condition, each action, the order, and refused patterns."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from emailsync.attachments import candidate_attachments
from emailsync.models import Mailbox, MailRule
from emailsync.rules import RuleInvalid, message_facts, rule_validate, rules_decide
from invoices.models import Vendor
from tests.emailsync.messages import CII, PLAIN_PDF, UBL, file_attachment, invoice_mail

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox.objects.create(
        name="ap",
        host="imap.example.com",
        username="ap@buyer.example",
        after_processing=Mailbox.AfterProcessing.MARK_SEEN,
    )


def decide(mailbox, rules, raw: bytes, folder: str = "INBOX"):
    parsed = candidate_attachments(raw)
    return rules_decide(rules, message_facts(raw, parsed, folder=folder), parsed, mailbox=mailbox)


def rule(mailbox, **fields) -> MailRule:
    return MailRule.objects.create(mailbox=mailbox, name=fields.pop("name", "r"), **fields)


def html_mail(
    subject: str,
    html: str,
    *,
    sender: str = "billing@acme.example",
    to: str = "ap@buyer.example",
    text: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = "<html-1@acme.example>"
    message.set_content(text or "See the HTML part.")
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


TWO_FILES = invoice_mail(
    "Invoice 7 and statement", [file_attachment(UBL), ("statement.pdf", PLAIN_PDF.read_bytes(), "application/pdf")]
)


def test_without_rules_the_attachments_are_taken_and_the_mailbox_setting_applies(mailbox):
    decision = decide(mailbox, [], TWO_FILES)
    assert decision.rule is None
    assert [a.filename for a in decision.take] == [UBL.name, "statement.pdf"]
    assert decision.after_processing == Mailbox.AfterProcessing.MARK_SEEN
    assert "no rule matched" in decision.describe()


@pytest.mark.parametrize(
    ("sender_condition", "matches"),
    [
        ("billing@supplier.example", True),
        ("BILLING@Supplier.example", True),
        ("other@supplier.example", False),
        ("supplier.example", True),
        ("@supplier.example", True),
        ("acme.example", False),
        ("pplier.example", False),
        ("acme.example, supplier.example", True),
    ],
)
def test_sender_by_address_or_domain(mailbox, sender_condition, matches):
    ignore = MailRule(mailbox=mailbox, name="s", sender=sender_condition, action=MailRule.Action.IGNORE)
    decision = decide(mailbox, [ignore], TWO_FILES)
    assert (decision.rule is ignore) is matches


def test_sender_domain_includes_subdomains(mailbox):
    raw = invoice_mail("x", [file_attachment(UBL)], sender="Billing <noreply@eu.mail.supplier.example>")
    assert decide(mailbox, [MailRule(mailbox=mailbox, name="d", sender="supplier.example")], raw).rule is not None


def test_recipient_looks_at_to_cc_and_delivered_to(mailbox):
    message = EmailMessage()
    message["From"], message["To"] = "a@acme.example", "someone@buyer.example"
    message["Cc"] = "Invoices <invoices+acme@buyer.example>"
    message["Subject"] = "Invoice"
    message.set_content("x")
    raw = message.as_bytes()
    by_cc = MailRule(mailbox=mailbox, name="cc", recipient="invoices+acme@buyer.example")
    other = MailRule(mailbox=mailbox, name="no", recipient="payables@buyer.example")
    assert decide(mailbox, [other, by_cc], raw).rule is by_cc
    delivered = b"Delivered-To: payables@buyer.example\r\n" + raw
    assert decide(mailbox, [other, by_cc], delivered).rule is other


def test_subject_is_a_case_insensitive_regex(mailbox):
    reminder = MailRule(
        mailbox=mailbox, name="reminders", subject=r"^(payment )?reminder\b", action=MailRule.Action.IGNORE
    )
    assert decide(mailbox, [reminder], invoice_mail("Payment Reminder: invoice 7", [])).rule is reminder
    assert decide(mailbox, [reminder], invoice_mail("Invoice 7 (no reminder)", [])).rule is None


def test_body_condition_reads_the_text_or_the_html_without_markup(mailbox):
    statement = MailRule(
        mailbox=mailbox, name="statements", body=r"statement of account", action=MailRule.Action.IGNORE
    )
    assert (
        decide(
            mailbox,
            [statement],
            html_mail("Monthly", "<p>Your <b>statement of account</b></p>", text="Your statement of account"),
        ).rule
        is statement
    )
    html_only = EmailMessage()
    html_only["From"], html_only["Subject"] = "a@acme.example", "Monthly"
    html_only.set_content(
        "<html><body><p>Your statement <i>of</i> account</p><script>invoice</script></body></html>", subtype="html"
    )
    raw = html_only.as_bytes()
    assert decide(mailbox, [statement], raw).rule is statement  # the markup between the words is gone
    scripted = MailRule(mailbox=mailbox, name="script", body="invoice")
    assert decide(mailbox, [scripted], raw).rule is None  # script text is not body text


def test_attachment_filename_glob_and_content_type(mailbox):
    xml = MailRule(mailbox=mailbox, name="xml", attachment_filename="*.XML")
    assert decide(mailbox, [xml], TWO_FILES).rule is xml
    assert decide(mailbox, [xml], invoice_mail("pdf only", [file_attachment(PLAIN_PDF)])).rule is None
    pdf_type = MailRule(mailbox=mailbox, name="pdf", attachment_content_type="application/*")
    assert decide(mailbox, [pdf_type], invoice_mail("pdf only", [file_attachment(PLAIN_PDF)])).rule is pdf_type
    assert decide(mailbox, [pdf_type], invoice_mail("nothing", [])).rule is None


def test_folder_glob(mailbox):
    suppliers = MailRule(mailbox=mailbox, name="f", folder="Suppliers/*", action=MailRule.Action.IGNORE)
    assert decide(mailbox, [suppliers], TWO_FILES, folder="Suppliers/Acme").rule is suppliers
    assert decide(mailbox, [suppliers], TWO_FILES, folder="INBOX").rule is None


def test_all_conditions_of_a_rule_must_hold(mailbox):
    both = MailRule(mailbox=mailbox, name="both", sender="supplier.example", subject="credit note")
    assert decide(mailbox, [both], TWO_FILES).rule is None
    both.subject = "invoice"
    assert decide(mailbox, [both], TWO_FILES).rule is both


def test_first_matching_rule_wins_by_position(mailbox):
    take = rule(mailbox, name="take acme", position=20, sender="supplier.example")
    ignore = rule(mailbox, name="ignore statements", position=10, subject="statement", action=MailRule.Action.IGNORE)
    rule(mailbox, name="disabled", position=1, enabled=False, action=MailRule.Action.IGNORE)
    from emailsync.rules import enabled_rules

    rules = enabled_rules(mailbox)
    assert [r.name for r in rules] == ["ignore statements", "take acme"]
    assert decide(mailbox, rules, TWO_FILES).rule == ignore
    ignore.position = 30
    ignore.save()
    assert decide(mailbox, enabled_rules(mailbox), TWO_FILES).rule == take


def test_ignore_takes_nothing_and_leaves_the_message_unless_told(mailbox):
    ignore = MailRule(mailbox=mailbox, name="ignore", action=MailRule.Action.IGNORE)
    decision = decide(mailbox, [ignore], TWO_FILES)
    assert decision.take == [] and not decision.take_body
    assert decision.after_processing == Mailbox.AfterProcessing.NOTHING  # not the mailbox's "mark seen"
    ignore.after_processing, ignore.move_to_folder = MailRule.AfterProcessing.MOVE, "Newsletters"
    decision = decide(mailbox, [ignore], TWO_FILES)
    assert (decision.after_processing, decision.move_to_folder) == ("move", "Newsletters")


def test_take_only_matching_attachments(mailbox):
    only_xml = MailRule(
        mailbox=mailbox, name="xml only", action=MailRule.Action.MATCHING_ATTACHMENTS, attachment_filename="*.xml"
    )
    decision = decide(mailbox, [only_xml], TWO_FILES)
    assert [a.filename for a in decision.take] == [UBL.name]


def test_take_attachments_with_vendor_owner_and_flag(mailbox, make_user):
    vendor = Vendor.objects.create(name="Supplier Ltd")
    owner = make_user("payables")
    assign = rule(
        mailbox,
        name="supplier",
        sender="supplier.example",
        vendor=vendor,
        invoice_owner=owner,
        after_processing=MailRule.AfterProcessing.FLAG,
    )
    decision = decide(mailbox, [assign], TWO_FILES)
    assert len(decision.take) == 2
    assert decision.vendor == vendor and decision.invoice_owner == owner
    assert decision.after_processing == "flag"


def test_body_action_takes_the_body_only_when_there_is_no_invoice_attachment(mailbox):
    body = MailRule(mailbox=mailbox, name="body", action=MailRule.Action.BODY)
    assert decide(mailbox, [body], html_mail("Invoice 9", "<h1>Invoice 9</h1>")).take_body is True
    with_file = decide(mailbox, [body], invoice_mail("Invoice", [file_attachment(CII)]))
    assert with_file.take_body is False and [a.filename for a in with_file.take] == [CII.name]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subject", "invoice (unclosed", "regular expression"),
        ("body", "*invoice", "regular expression"),
        ("attachment_filename", "invoice-[0-9.pdf", "never closed"),
        ("folder", "Suppliers/[", "never closed"),
        ("attachment_content_type", "pdf", "application/pdf"),
        ("sender", "not-an-address", "Not an address or domain"),
    ],
)
def test_invalid_patterns_are_refused(mailbox, field, value, message):
    with pytest.raises(RuleInvalid) as refused:
        rule_validate(MailRule(mailbox=mailbox, name="bad", **{field: value}))
    assert field in refused.value.errors and message in refused.value.errors[field]


def test_move_needs_a_folder_and_matching_needs_an_attachment_condition(mailbox):
    with pytest.raises(RuleInvalid) as refused:
        rule_validate(MailRule(mailbox=mailbox, name="m", after_processing="move"))
    assert "move_to_folder" in refused.value.errors
    with pytest.raises(RuleInvalid) as refused:
        rule_validate(MailRule(mailbox=mailbox, name="m", action=MailRule.Action.MATCHING_ATTACHMENTS))
    assert "action" in refused.value.errors


def test_a_pathological_regex_times_out_as_no_match(mailbox, monkeypatch):
    from emailsync import rules as rules_module

    monkeypatch.setattr(rules_module, "REGEX_TIMEOUT_SECONDS", 0.05)
    evil = MailRule(mailbox=mailbox, name="evil", body=r"(a+)+$", action=MailRule.Action.IGNORE)
    raw = html_mail("x", "<p>x</p>", text="a" * 5000 + "!")
    assert decide(mailbox, [evil], raw).rule is None
