"""Mail rules: which rule decides a message, and what that rule takes from it.

A mailbox's enabled rules are tried by position; the first whose conditions
all hold decides. Without a matching rule the invoice attachments are taken
(what a mailbox without rules does). Conditions read the message's sender,
recipients, subject, body text, attachments and folder; actions say what is
ingested and what happens to the message on the server afterwards.

Patterns are user input run against hostile mail: regular expressions run
through the `regex` package with a time limit, so a pathological pattern fails
the rule's match (it is counted as "does not match" and logged) instead of
stopping a worker.
"""

from __future__ import annotations

import email
import fnmatch
import html
import logging
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

import regex

from core.errors import Invalid
from emailsync.attachments import Attachment, ParsedMessage
from emailsync.mime import decode_text
from emailsync.models import Mailbox, MailRule

logger = logging.getLogger(__name__)

REGEX_TIMEOUT_SECONDS = 1.0
# The body searched by a rule, and rendered for a body-only invoice, is cut here.
MAX_BODY_CHARS = 200_000
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To")


class RuleInvalid(Invalid, ValueError):
    """A rule's pattern or setting is not acceptable; `errors` maps field names to messages (400)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(
            "; ".join(f"{name}: {message}" for name, message in errors.items()),
            field_errors={name: [message] for name, message in errors.items()},
        )
        self.errors = errors


@dataclass(frozen=True)
class AttachmentFact:
    filename: str
    content_type: str


@dataclass
class MessageFacts:
    """What rules look at, read once per message."""

    folder: str
    sender: str  # the From address, lower case
    recipients: list[str]  # lower case addresses
    subject: str
    body_text: str
    body_html: str
    attachments: list[AttachmentFact] = field(default_factory=list)


@dataclass
class Decision:
    """What the deciding rule (or the default) does with one message."""

    rule: MailRule | None
    action: str
    take: list[Attachment]
    take_body: bool
    vendor: object | None
    invoice_owner: object | None
    after_processing: str  # a Mailbox.AfterProcessing value
    move_to_folder: str
    facts: MessageFacts | None = None

    @property
    def rule_name(self) -> str:
        return self.rule.name if self.rule is not None else ""

    def describe(self) -> str:
        """One line a person reads: which rule decided and what it takes."""
        who = f"rule {self.rule.name!r}" if self.rule is not None else "no rule matched (default)"
        if self.action == MailRule.Action.IGNORE:
            what = "ignore the message"
        elif self.take:
            what = "take " + ", ".join(a.filename or "attachment" for a in self.take)
        elif self.take_body:
            what = "take the message body as the invoice"
        else:
            what = "nothing to take"
        return f"{who}: {what}"


# -- validation -------------------------------------------------------------------------------------------


def rule_validate(rule: MailRule) -> None:
    """Refuse a rule whose patterns cannot work (bad regex, unclosed glob bracket, move without folder)."""
    errors: dict[str, str] = {}
    for name in ("subject", "body"):
        pattern = getattr(rule, name).strip()
        if pattern:
            try:
                regex.compile(pattern, regex.IGNORECASE)
            except regex.error as exc:
                errors[name] = f"Not a valid regular expression: {exc}."
    for name in ("attachment_filename", "attachment_content_type", "folder"):
        problem = _glob_problem(getattr(rule, name).strip())
        if problem:
            errors[name] = problem
    content_type = rule.attachment_content_type.strip()
    if content_type and "/" not in content_type:
        errors["attachment_content_type"] = "A content type looks like application/pdf or application/*."
    for name in ("sender", "recipient"):
        bad = [entry for entry in _address_entries(getattr(rule, name)) if not _plausible_address(entry)]
        if bad:
            errors[name] = f"Not an address or domain: {', '.join(bad)}."
    if rule.after_processing == MailRule.AfterProcessing.MOVE and not rule.move_to_folder.strip():
        errors["move_to_folder"] = "Name the folder to move the messages to."
    if rule.action == MailRule.Action.MATCHING_ATTACHMENTS and not (
        rule.attachment_filename.strip() or rule.attachment_content_type.strip()
    ):
        errors["action"] = "Taking only matching attachments needs an attachment file name or content type."
    if errors:
        raise RuleInvalid(errors)


def _glob_problem(pattern: str) -> str | None:
    if not pattern:
        return None
    position = 0
    while (start := pattern.find("[", position)) != -1:
        end = pattern.find("]", start + 2 if pattern[start + 1 : start + 2] in ("!", "]") else start + 1)
        if end == -1:
            return f"Not a valid glob: the '[' at position {start + 1} is never closed."
        position = end + 1
    return None


def _address_entries(value: str) -> list[str]:
    return [entry.strip().lower() for entry in value.replace(";", ",").replace(" ", ",").split(",") if entry.strip()]


def _plausible_address(entry: str) -> bool:
    local, at, domain = entry.rpartition("@")
    domain = domain.strip(".")
    return (bool(domain) and "." in domain) or (bool(at) and bool(local) and bool(domain))


# -- facts --------------------------------------------------------------------------------------------------


def message_facts(raw: bytes, parsed: ParsedMessage, *, folder: str) -> MessageFacts:
    """The facts rules look at: headers and body from the raw message, attachments from `parsed`."""
    message = email.message_from_bytes(raw, policy=policy.compat32)
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    recipients = [
        address.lower()
        for _, address in getaddresses(
            [str(value) for name in _RECIPIENT_HEADERS for value in message.get_all(name, [])]
        )
        if address
    ]
    text, markup = _bodies(message)
    if not text and markup:
        text = html_to_text(markup)
    attachments = [AttachmentFact(a.filename or "", a.content_type) for a in parsed.candidates]
    attachments += [AttachmentFact(s.filename or "", s.content_type) for s in parsed.skipped]
    return MessageFacts(
        folder=folder,
        sender=sender,
        recipients=recipients,
        subject=parsed.subject,
        body_text=text[:MAX_BODY_CHARS],
        body_html=markup[:MAX_BODY_CHARS],
        attachments=attachments,
    )


def _bodies(message: Message) -> tuple[str, str]:
    """The first inline text/plain and text/html parts (not attachments, not forwarded messages)."""
    text = markup = ""
    stack = [message]
    while stack:
        part = stack.pop(0)
        if part.is_multipart():
            if part.get_content_type() in ("message/rfc822", "message/global"):
                continue
            stack.extend(part.get_payload() or [])
            continue
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if disposition == "attachment" or part.get_filename():
            continue
        content_type = part.get_content_type()
        if content_type not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True) or b""
        decoded = decode_text(payload, part.get_content_charset())
        if content_type == "text/plain" and not text:
            text = decoded
        elif content_type == "text/html" and not markup:
            markup = decoded
    return text, markup


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "head", "title"}
    _BREAKS = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The visible text of an HTML body, for conditions on the body."""
    parser = _TextExtractor()
    try:
        parser.feed(markup[:MAX_BODY_CHARS])
        parser.close()
    except Exception:  # broken markup: fall back to the escaped source
        return html.unescape(markup)
    return "".join(parser.parts)


# -- matching -----------------------------------------------------------------------------------------------


def enabled_rules(mailbox: Mailbox) -> list[MailRule]:
    """The mailbox's enabled rules in the order they are tried."""
    return list(mailbox.rules.filter(enabled=True).select_related("vendor", "invoice_owner").order_by("position", "pk"))


def rule_matches(rule: MailRule, facts: MessageFacts) -> bool:
    """True when every condition the rule fills in holds for the message."""
    if rule.sender.strip() and not _address_matches(rule.sender, [facts.sender]):
        return False
    if rule.recipient.strip() and not _address_matches(rule.recipient, facts.recipients):
        return False
    if rule.folder.strip() and not fnmatch.fnmatchcase(facts.folder.lower(), rule.folder.strip().lower()):
        return False
    if rule.subject.strip() and not _search(rule, "subject", facts.subject):
        return False
    if rule.body.strip() and not _search(rule, "body", facts.body_text):
        return False
    if not _has_attachment_condition(rule):
        return True
    return any(attachment_matches(rule, a.filename, a.content_type) for a in facts.attachments)


def attachment_matches(rule: MailRule, filename: str, content_type: str) -> bool:
    """True when an attachment meets the rule's file name and content type globs (those filled in)."""
    name_glob = rule.attachment_filename.strip().lower()
    type_glob = rule.attachment_content_type.strip().lower()
    if name_glob and not fnmatch.fnmatchcase((filename or "").lower(), name_glob):
        return False
    return not (type_glob and not fnmatch.fnmatchcase((content_type or "").lower(), type_glob))


def _has_attachment_condition(rule: MailRule) -> bool:
    return bool(rule.attachment_filename.strip() or rule.attachment_content_type.strip())


def _address_matches(entries: str, addresses: list[str]) -> bool:
    for entry in _address_entries(entries):
        for address in addresses:
            if "@" in entry and not entry.startswith("@"):
                if address == entry:
                    return True
                continue
            domain = entry.lstrip("@")
            address_domain = address.rpartition("@")[2]
            if address_domain == domain or address_domain.endswith("." + domain):
                return True
    return False


def _search(rule: MailRule, name: str, text: str) -> bool:
    try:
        return (
            regex.search(getattr(rule, name).strip(), text, regex.IGNORECASE, timeout=REGEX_TIMEOUT_SECONDS) is not None
        )
    except TimeoutError:
        logger.warning(
            "Rule %s (%s): the %s pattern took over %ss; treated as not matching",
            rule.pk,
            rule.name,
            name,
            REGEX_TIMEOUT_SECONDS,
        )
        return False
    except regex.error:  # saved before validation existed
        return False


def default_decision(parsed: ParsedMessage, *, mailbox: Mailbox, facts: MessageFacts | None = None) -> Decision:
    """What no rule decides: take the attachments, then the mailbox's after-processing."""
    return Decision(
        rule=None,
        action=MailRule.Action.TAKE_ATTACHMENTS,
        take=list(parsed.candidates),
        take_body=False,
        vendor=None,
        invoice_owner=None,
        after_processing=mailbox.after_processing,
        move_to_folder=mailbox.move_to_folder,
        facts=facts,
    )


def rules_decide(rules: list[MailRule], facts: MessageFacts, parsed: ParsedMessage, *, mailbox: Mailbox) -> Decision:
    """The first matching rule's decision for a message, or the default (take the attachments)."""
    rule = next((candidate for candidate in rules if rule_matches(candidate, facts)), None)
    if rule is None:
        return default_decision(parsed, mailbox=mailbox, facts=facts)
    after, move_to = rule.after_processing, rule.move_to_folder
    if not after:
        # An ignored message is left alone unless its rule says otherwise.
        after = Mailbox.AfterProcessing.NOTHING if rule.action == MailRule.Action.IGNORE else mailbox.after_processing
        move_to = "" if rule.action == MailRule.Action.IGNORE else mailbox.move_to_folder
    if rule.action == MailRule.Action.IGNORE:
        take: list[Attachment] = []
    elif rule.action == MailRule.Action.MATCHING_ATTACHMENTS:
        take = [a for a in parsed.candidates if attachment_matches(rule, a.filename, a.content_type)]
    else:
        take = list(parsed.candidates)
    take_body = (
        rule.action == MailRule.Action.BODY and not take and bool(facts.body_text.strip() or facts.body_html.strip())
    )
    return Decision(
        rule=rule,
        action=rule.action,
        take=take,
        take_body=take_body,
        vendor=rule.vendor,
        invoice_owner=rule.invoice_owner,
        after_processing=after,
        move_to_folder=move_to,
        facts=facts,
    )
