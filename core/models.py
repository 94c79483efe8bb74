"""The audit trail and the vocabulary every app shares (who acted, through which door)."""

from django.conf import settings
from django.db import models


def model_label(instance) -> str:
    """ "app_label.modelname" of a model instance: how jobs and audit rows name what they are about."""
    return instance._meta.label_lower


class TriggerSource(models.TextChoices):
    """The door an action came through."""

    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    COMMAND = "command", "Command"
    SYSTEM = "system", "System"


class AuditEntry(models.Model):
    """Who did what to which object, when, from where and why."""

    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=60)
    source = models.CharField(max_length=10, choices=TriggerSource.choices)
    # The job an action concerns, so a job's page lists its history. A lazy
    # reference: core imports nothing from jobs.
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    target_type = models.CharField(max_length=100, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_label = models.CharField(max_length=200, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["-created_at"], name="audit_created"),
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.target_label}"
