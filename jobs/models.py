"""The job ledger: one row per tracked unit of work, from enqueue to the end."""

import uuid
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import TriggerSource


def model_instance(label: str, pk: str):
    """The instance a model label and primary key point to, or None."""
    if not label or not pk:
        return None
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    return model._default_manager.filter(pk=pk).first()


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """A tracked background job. Its id is the Celery task id."""

    # Not a column: job_enqueue sets it, True when the active job holding the same
    # unique key was returned instead of a new one.
    deduplicated: bool = False

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100)
    queue = models.CharField(max_length=50)
    priority = models.PositiveSmallIntegerField(default=5, help_text="0 runs first, 9 last.")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=TriggerSource.choices, default=TriggerSource.SYSTEM)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # What the job is about (invoice 12, mailbox "ap@..."): a loose generic link
    # so that deleting the subject never deletes its history.
    subject_type = models.CharField(
        max_length=100, blank=True, default="", help_text='Model label, e.g. "invoices.invoice".'
    )
    subject_id = models.CharField(max_length=64, blank=True, default="")
    subject_label = models.CharField(max_length=200, blank=True, default="")
    unique_key = models.CharField(max_length=200, null=True, blank=True)
    schedule_name = models.CharField(max_length=200, blank=True, default="")

    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_message = models.CharField(max_length=300, blank=True, default="")

    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    # Runs whose worker died under them (SIGKILL, OOM, host lost). They do not use
    # up max_attempts; JOB_MAX_LOST_RUNS stops a job that keeps killing its worker.
    lost_runs = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Do not start before this time.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Do not start after this time.")
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    worker = models.CharField(max_length=200, blank=True, default="")
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    # Set when a worker claims the job; every later write by that worker is
    # conditional on it, so a worker that lost the job cannot overwrite it.
    claim_token = models.UUIDField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    is_dead_letter = models.BooleanField(default=False)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(unique_key__isnull=False) & Q(status__in=ACTIVE_STATUSES),
                name="job_one_active_per_unique_key",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="job_created"),
            models.Index(fields=["status", "-created_at"], name="job_status_created"),
            models.Index(fields=["kind", "-created_at"], name="job_kind_created"),
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
            models.Index(fields=["queue", "status", "created_at"], name="job_queue_status"),
            models.Index(fields=["source", "-created_at"], name="job_source_created"),
            models.Index(fields=["subject_type", "subject_id", "-created_at"], name="job_subject"),
            models.Index(fields=["kind", "status", "-finished_at"], name="job_kind_finished"),
            models.Index(fields=["finished_at"], name="job_finished"),
            models.Index(fields=["-created_at"], condition=Q(is_dead_letter=True), name="job_dead_letter"),
            models.Index(
                fields=["status", "heartbeat_at"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="job_active",
            ),
        ]
        permissions = [
            ("trigger_job", "Can trigger jobs"),
            ("cancel_job", "Can cancel jobs"),
            ("retry_job", "Can retry jobs"),
            ("terminate_job", "Can terminate running jobs"),
        ]

    def __str__(self) -> str:
        label = f" {self.subject_label}" if self.subject_label else ""
        return f"{self.kind}{label} [{self.status}]"

    def subject_object(self):
        """The model instance the job is about, if it still exists."""
        return model_instance(self.subject_type, self.subject_id)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def wait_time(self):
        """Time from enqueue (or the requested start) to the first start."""
        if not self.started_at:
            return None
        queued_from = max(filter(None, [self.created_at, self.not_before]))
        return max(self.started_at - queued_from, timedelta(0))

    @property
    def run_time(self):
        """Time from the (last) start to the end."""
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def progress_percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, round(100 * self.progress_done / self.progress_total))


class JobExecution(models.Model):
    """One run of a job's body on a worker: the record that proves no overlap."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        RETRY = "retry", "Will retry"
        CANCELLED = "cancelled", "Cancelled"
        WORKER_LOST = "worker_lost", "Worker lost"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="executions")
    attempt = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=200, blank=True, default="")
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["job", "attempt", "started_at"]
        indexes = [models.Index(fields=["job", "started_at"], name="jobexec_job")]

    def __str__(self) -> str:
        return f"{self.job_id} attempt {self.attempt}: {self.outcome}"
