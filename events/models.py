"""Business events (an invoice needs review, was approved, ...) and who is told:
webhook subscriptions with their delivery log, and the daily review digest."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from core.encryption import decrypt, encrypt


class Event(models.TextChoices):
    NEEDS_REVIEW = "invoice.needs_review", "An invoice needs review"
    APPROVED = "invoice.approved", "An invoice was approved"
    REJECTED = "invoice.rejected", "An invoice was rejected"
    EXPORTED = "invoice.exported", "An invoice was exported"
    FAILED = "invoice.failed", "An invoice could not be read"


class EventSubscription(models.Model):
    """A webhook: the events it wants, where they go, and the secret that signs them."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="http(s) URL on a public host; POSTed a JSON body per event.")
    events = models.JSONField(default=list, help_text='Event names, e.g. ["invoice.needs_review"].')
    slack_compatible = models.BooleanField(
        default=False, help_text='Send a Slack incoming-webhook payload ({"text": ...}) instead of the event JSON.'
    )
    secret_ciphertext = models.TextField(blank=True, default="", editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["enabled"], name="subscription_enabled")]

    def __str__(self) -> str:
        return self.name

    @property
    def secret(self) -> str:
        return decrypt(self.secret_ciphertext)

    def set_secret(self, secret: str) -> None:
        self.secret_ciphertext = encrypt(secret) if secret else ""


class EventDelivery(models.Model):
    """One event sent (or being sent) to one subscription: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    subscription = models.ForeignKey(EventSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=Event.choices)
    payload = models.JSONField(help_text="The event body as sent (before Slack formatting).")
    subject_type = models.CharField(max_length=100, blank=True, default="")
    subject_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    job_id = models.CharField(max_length=64, blank=True, default="")
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "event deliveries"
        indexes = [
            models.Index(fields=["subscription", "-created_at"], name="delivery_subscription"),
            models.Index(fields=["status", "-created_at"], name="delivery_status"),
            models.Index(fields=["subject_type", "subject_id"], name="delivery_subject"),
        ]
        permissions = [("replay_eventdelivery", "Can replay event deliveries")]

    def __str__(self) -> str:
        return f"{self.event} to {self.subscription}: {self.status}"


class ReviewDigest(models.Model):
    """A daily email to the members of a group: what waits for review (each sees what they may see)."""

    name = models.CharField(max_length=100)
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)
    last_sent_on = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
