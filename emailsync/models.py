"""Mailboxes, the messages seen in them, and the history of their syncs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.encryption import decrypt, encrypt


class Mailbox(models.Model):
    """An IMAP account we scan for invoices. Its secret is stored encrypted."""

    class Security(models.TextChoices):
        SSL = "ssl", "SSL/TLS"
        STARTTLS = "starttls", "STARTTLS"
        PLAIN = "plain", "Plain (unencrypted)"

    class Auth(models.TextChoices):
        PASSWORD = "password", "Password or app password"
        XOAUTH2 = "xoauth2", "OAuth2 access token (XOAUTH2)"

    class OAuthProvider(models.TextChoices):
        NONE = "", "None"
        GOOGLE = "google", "Google (Gmail)"
        MICROSOFT = "microsoft", "Microsoft (Outlook / Office 365)"

    class AfterProcessing(models.TextChoices):
        NOTHING = "nothing", "Leave as is"
        MARK_SEEN = "seen", "Mark as read"
        FLAG = "flag", "Flag"
        MOVE = "move", "Move to a folder"

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=255)
    auth = models.CharField(max_length=8, choices=Auth.choices, default=Auth.PASSWORD)
    secret_ciphertext = models.TextField(blank=True, default="", editable=False)
    oauth_provider = models.CharField(max_length=10, choices=OAuthProvider.choices, blank=True, default="")
    refresh_token_ciphertext = models.TextField(blank=True, default="", editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    folders = models.JSONField(default=list, blank=True, help_text='Folders (or labels) to scan, e.g. ["INBOX"].')
    lookback_months = models.PositiveSmallIntegerField(default=3)
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="mailboxes"
    )
    after_processing = models.CharField(max_length=8, choices=AfterProcessing.choices, default=AfterProcessing.NOTHING)
    move_to_folder = models.CharField(max_length=200, blank=True, default="")
    needs_attention = models.BooleanField(
        default=False, help_text="Set when the last sync failed in a way a person must fix (e.g. bad credentials)."
    )
    last_error = models.TextField(blank=True, default="")
    # OAuth: the provider refused the token or its refresh (expired, revoked, consent withdrawn).
    # Syncing stops until someone connects the account again.
    reconnect_required = models.BooleanField(default=False)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"
        permissions = [("sync_mailbox", "Can sync, test and cancel mailbox syncs")]

    def __str__(self) -> str:
        return self.name

    @property
    def folder_list(self) -> list[str]:
        return [folder for folder in (self.folders or []) if folder] or ["INBOX"]

    def set_secret(self, secret: str) -> None:
        self.secret_ciphertext = encrypt(secret) if secret else ""

    def get_secret(self) -> str:
        return decrypt(self.secret_ciphertext)

    def set_refresh_token(self, token: str) -> None:
        self.refresh_token_ciphertext = encrypt(token) if token else ""

    def get_refresh_token(self) -> str:
        return decrypt(self.refresh_token_ciphertext)

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)


class MailMessage(models.Model):
    """A message seen in a mailbox, recorded once, before any work is queued for it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (attachments not processed yet)"
        PROCESSED = "processed", "Processed"
        NO_CANDIDATES = "skipped", "Skipped (no invoice attachment)"
        FAILED = "failed", "Failed (will be retried)"
        GAVE_UP = "gave_up", "Failed (retries exhausted)"
        IGNORED = "ignored", "Ignored by a mail rule"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=500, blank=True, default="")
    folder = models.CharField(max_length=200)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    subject = models.CharField(max_length=500, blank=True, default="")
    sender = models.CharField(max_length=300, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=9, choices=Status.choices)
    attachments = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    skipped_parts = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The mail rule that decided what was taken (none: no rule matched, the default applied). The name is
    # kept too, so the decision still reads right after the rule is renamed or deleted.
    rule = models.ForeignKey("MailRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    rule_name = models.CharField(max_length=200, blank=True, default="")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "message_id"], condition=~Q(message_id=""), name="mailmessage_once_per_message_id"
            ),
            models.UniqueConstraint(
                fields=["mailbox", "folder", "uidvalidity", "uid"], name="mailmessage_once_per_uid"
            ),
        ]
        indexes = [
            models.Index(fields=["mailbox", "status"], name="mailmessage_status"),
            models.Index(fields=["mailbox", "-first_seen_at"], name="mailmessage_seen"),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"{self.folder}/{self.uid}"


class MailLocation(models.Model):
    """Every (folder, UIDVALIDITY, UID) where a message was seen, so a re-sync
    can subtract what it knows without fetching a single header."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="locations")
    message = models.ForeignKey(MailMessage, on_delete=models.CASCADE, related_name="locations")
    folder = models.CharField(max_length=200)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "folder", "uidvalidity", "uid"], name="maillocation_once")
        ]

    def __str__(self) -> str:
        return f"{self.folder}/{self.uidvalidity}/{self.uid}"


class SyncRun(models.Model):
    """One sync of one mailbox, with its counts (updated as it goes)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="sync_runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    folders = models.PositiveIntegerField(default=0)
    messages_seen = models.PositiveIntegerField(default=0)
    messages_new = models.PositiveIntegerField(default=0)
    attachments = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    COUNT_FIELDS = ("folders", "messages_seen", "messages_new", "attachments", "invoices_created", "skipped", "errors")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["mailbox", "-started_at"], name="syncrun_mailbox")]

    def __str__(self) -> str:
        return f"{self.mailbox} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNT_FIELDS}


class MailRule(models.Model):
    """What to take from a mailbox's messages. Rules are tried by `position`; the first
    whose conditions all hold decides. A rule without conditions matches every message.
    Without any matching rule the attachments are taken as invoices (the default)."""

    class Action(models.TextChoices):
        TAKE_ATTACHMENTS = "attachments", "Take the invoice attachments"
        MATCHING_ATTACHMENTS = "matching", "Take only the attachments that match the rule"
        BODY = "body", "Take the attachments; without any, the message body as the invoice"
        IGNORE = "ignore", "Ignore the message"

    class AfterProcessing(models.TextChoices):
        MAILBOX_DEFAULT = "", "As the mailbox says"
        NOTHING = "nothing", "Leave as is"
        MARK_SEEN = "seen", "Mark as read"
        FLAG = "flag", "Flag"
        MOVE = "move", "Move to a folder"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried from the lowest position up.")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    # Conditions: every one that is filled in must hold.
    sender = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Addresses or domains, separated by commas: billing@acme.example, "
        "acme.example (a domain includes its subdomains).",
    )
    recipient = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Addresses or domains in To, Cc or Delivered-To, separated by commas.",
    )
    subject = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="A regular expression searched in the subject (case-insensitive).",
    )
    body = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="A regular expression searched in the body text (case-insensitive).",
    )
    attachment_filename = models.CharField(
        max_length=200, blank=True, default="", help_text="A glob such as *.pdf or invoice-*.xml (case-insensitive)."
    )
    attachment_content_type = models.CharField(
        max_length=200, blank=True, default="", help_text="A glob such as application/pdf or application/*."
    )
    folder = models.CharField(
        max_length=200, blank=True, default="", help_text="A glob on the folder name, such as INBOX or Suppliers/*."
    )
    # What to do.
    action = models.CharField(max_length=11, choices=Action.choices, default=Action.TAKE_ATTACHMENTS)
    vendor = models.ForeignKey(
        "invoices.Vendor",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Assign this vendor to the invoices taken.",
    )
    invoice_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Owner of the invoices taken (default: the mailbox's owner).",
    )
    after_processing = models.CharField(max_length=8, choices=AfterProcessing.choices, blank=True, default="")
    move_to_folder = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    CONDITION_FIELDS = (
        "sender",
        "recipient",
        "subject",
        "body",
        "attachment_filename",
        "attachment_content_type",
        "folder",
    )

    class Meta:
        ordering = ["mailbox", "position", "pk"]
        indexes = [models.Index(fields=["mailbox", "position"], name="mailrule_order")]

    def __str__(self) -> str:
        return self.name


class OAuthAuthorization(models.Model):
    """One "connect the account" attempt: the `state` sent to the provider and the PKCE verifier
    (encrypted) to finish it. Single use; it expires after OAUTH_STATE_TTL_SECONDS."""

    state = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=10, choices=Mailbox.OAuthProvider.choices)
    code_verifier_ciphertext = models.TextField(editable=False)
    redirect_uri = models.CharField(max_length=500)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(
        Mailbox,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Set when reconnecting an existing mailbox.",
    )
    source = models.CharField(max_length=10, default="api")
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.provider} {self.created_at:%Y-%m-%d %H:%M}"

    def set_code_verifier(self, verifier: str) -> None:
        self.code_verifier_ciphertext = encrypt(verifier)

    def get_code_verifier(self) -> str:
        return decrypt(self.code_verifier_ciphertext)
