"""What monitoring keeps: heartbeats, health and worker history, metric totals,
alert rules and alerts, compliance policy rules, scans and violations, reports."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from monitoring.webhook_urls import alert_webhook_url_problem


class Heartbeat(models.Model):
    """The last time a periodic signal arrived (e.g. "beat": the heartbeat task beat sends)."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class HealthSnapshot(models.Model):
    """The health checks' verdicts at one moment, kept as history for the dashboard chart."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    healthy = models.BooleanField()
    checks = models.JSONField(default=list, help_text="[{name, ok, error, duration_ms}]")
    duration_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{'healthy' if self.healthy else 'unhealthy'} at {self.created_at:%Y-%m-%d %H:%M}"


class WorkerSnapshot(models.Model):
    """One worker's state at one moment (every 30 minutes): for performance over time."""

    created_at = models.DateTimeField(auto_now_add=True)
    hostname = models.CharField(max_length=200)
    online = models.BooleanField(default=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    queues = models.JSONField(default=list, blank=True)
    active = models.PositiveIntegerField(default=0)
    processed = models.PositiveBigIntegerField(default=0, help_text="Tasks since the worker started.")
    processed_since_last = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tasks since this worker's previous snapshot."
    )

    class Meta:
        ordering = ["-created_at", "hostname"]
        indexes = [models.Index(fields=["hostname", "-created_at"], name="workersnap_host")]

    def __str__(self) -> str:
        return f"{self.hostname} at {self.created_at:%Y-%m-%d %H:%M}"


class MetricsCursor(models.Model):
    """How far finished jobs have been added into the JobCounter totals."""

    name = models.CharField(max_length=50, unique=True)
    position = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.position}"


class JobCounter(models.Model):
    """Running totals of finished jobs per kind and status, for Prometheus counters.

    Totals only grow (retention deleting old Job rows does not lower them), as
    Prometheus expects of a counter. `runtime_buckets` holds cumulative counts
    per upper bound of monitoring.prometheus.RUNTIME_BUCKETS, "+Inf" last.
    """

    kind = models.CharField(max_length=100)
    status = models.CharField(max_length=10)
    finished = models.PositiveBigIntegerField(default=0)
    runtime_count = models.PositiveBigIntegerField(default=0)
    runtime_sum = models.FloatField(default=0)
    runtime_buckets = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "status"], name="jobcounter_kind_status")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}: {self.finished}"


class RuntimeBudget(models.Model):
    """How long one job kind may run before it counts as slow (and alerts, if a rule says so)."""

    kind = models.CharField(max_length=100, unique=True)
    max_seconds = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return f"{self.kind} ≤ {self.max_seconds} s"


class Severity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertRuleKind(models.TextChoices):
    QUEUE_BACKLOG = "queue_backlog", "Queue backlog over N messages"
    OLDEST_WAITING = "oldest_waiting", "Oldest waiting job older than N seconds"
    FAILURE_RATE = "failure_rate", "Failure rate over N % in the window"
    DEAD_LETTERS_GROWING = "dead_letters_growing", "More than N new dead letters in the window"
    WORKERS_BELOW = "workers_below", "Fewer than N workers answering"
    BEAT_STALE = "beat_stale", "Beat heartbeat stale"
    JOB_OVER_BUDGET = "job_over_budget", "A job running past its time budget"
    HEALTH_CHECK_FAILING = "health_check_failing", "A health check failing"
    MAILBOX_ATTENTION = "mailbox_attention", "A mailbox needs a person (reconnect OAuth, bad credentials)"


class AlertRule(models.Model):
    """A condition evaluated every minute; see docs/monitoring.md for each kind's threshold."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=24, choices=AlertRuleKind.choices)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Messages, seconds, percent, count or workers, by kind. Empty: the kind's default "
        "(beat: two heartbeat intervals; job budget: the kind's RuntimeBudget, else its soft time limit).",
    )
    window_minutes = models.PositiveIntegerField(default=60, help_text="For failure rate and dead letters.")
    min_jobs = models.PositiveIntegerField(default=5, help_text="Failure rate: ignore kinds with fewer finished jobs.")
    queue = models.CharField(max_length=50, blank=True, default="", help_text="Only this queue (empty: every queue).")
    job_kind = models.CharField(max_length=100, blank=True, default="", help_text="Only this job kind (empty: all).")
    check_name = models.CharField(
        max_length=50, blank=True, default="", help_text="Only this health check (empty: any)."
    )
    email_to = models.TextField(
        blank=True, default="", help_text="Comma-separated addresses; empty: ADMIN_EMAILS. 'none' sends no email."
    )
    webhook_url = models.URLField(blank=True, default="", help_text="POSTed a signed JSON body on fire and resolve.")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        if self.webhook_url:
            problem = alert_webhook_url_problem(self.webhook_url, require_resolvable=False)
            if problem:
                raise ValidationError({"webhook_url": problem})


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """One firing of a rule for one subject (a queue, a job kind, a job, a check) until it resolves."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    key = models.CharField(max_length=200, blank=True, default="", help_text="The subject: queue, kind, job id...")
    status = models.CharField(max_length=8, choices=AlertStatus.choices, default=AlertStatus.FIRING)
    message = models.TextField()
    value = models.FloatField(null=True, blank=True)
    fired_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            # Deduplication: at most one firing alert per rule and subject.
            models.UniqueConstraint(fields=["rule", "key"], condition=Q(status="firing"), name="alert_one_firing"),
        ]
        indexes = [models.Index(fields=["status", "-fired_at"], name="alert_status")]

    def __str__(self) -> str:
        return f"{self.rule.name} [{self.key}] {self.status}"


class AlertNotification(models.Model):
    """One delivery attempt series of an alert event to one channel."""

    class Event(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=8, choices=Event.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=500)
    status = models.CharField(max_length=6, choices=Status.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} via {self.channel} to {self.target}: {self.status}"


class PolicyRuleKind(models.TextChoices):
    OVER_APPROVAL_LIMIT = "over_approval_limit", "Gross amount over the vendor's approval limit, not approved"
    BLOCKED_VENDOR = "blocked_vendor", "Invoice from a blocked vendor"
    MISSING_PO = "missing_po", "No purchase order reference above an amount"
    VENDOR_REQUIRES_PO = "vendor_requires_po", "No purchase order reference for a vendor that requires one"
    SUSPECTED_DUPLICATE = "suspected_duplicate", "Same seller VAT id and invoice number as an earlier invoice"
    OVERDUE_NOT_EXPORTED = "overdue_not_exported", "Overdue by more than N days and not exported"
    IBAN_MISMATCH = "iban_mismatch", "Payment IBAN differs from the vendor master"
    UNKNOWN_VENDOR = "unknown_vendor", "No vendor in the master data above an amount"


class PolicyRule(models.Model):
    """A compliance policy checked against stored invoices (continuous monitoring)."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=24, choices=PolicyRuleKind.choices)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    amount = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Gross amount threshold (missing PO, unknown vendor; approval limit for vendors without one).",
    )
    days = models.PositiveIntegerField(null=True, blank=True, help_text="Grace days (overdue).")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScanRun(models.Model):
    """One compliance scan: what it looked at and what it found."""

    class Mode(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    job_id = models.UUIDField(null=True, blank=True, help_text="The tracked job that ran it, if any.")
    mode = models.CharField(max_length=11, choices=Mode.choices)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Changes up to this moment are covered; the next incremental scan starts here.
    watermark = models.DateTimeField()
    records_scanned = models.PositiveIntegerField(default=0)
    violations_found = models.PositiveIntegerField(default=0)
    violations_opened = models.PositiveIntegerField(default=0)
    violations_resolved = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["-started_at"], name="scanrun_started"),
            models.Index(fields=["status", "-started_at"], name="scanrun_status"),
        ]
        permissions = [("run_scan", "Can run compliance scans")]

    def __str__(self) -> str:
        return f"{self.mode} scan {self.started_at:%Y-%m-%d %H:%M} [{self.status}]"


class ViolationStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Violation(models.Model):
    """A policy rule an invoice breaks; resolved when the data or the rule changes."""

    rule = models.ForeignKey(PolicyRule, on_delete=models.CASCADE, related_name="violations")
    invoice = models.ForeignKey("invoices.Invoice", on_delete=models.CASCADE, related_name="violations")
    status = models.CharField(max_length=8, choices=ViolationStatus.choices, default=ViolationStatus.OPEN)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    first_scan = models.ForeignKey(ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_scan = models.ForeignKey(ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "invoice"], condition=Q(status="open"), name="violation_one_open"),
        ]
        indexes = [
            models.Index(fields=["status", "rule"], name="violation_status_rule"),
            models.Index(fields=["invoice", "status"], name="violation_invoice"),
        ]

    def __str__(self) -> str:
        return f"{self.rule.name}: invoice {self.invoice_id} [{self.status}]"


class SystemReport(models.Model):
    """The twice-daily summary of jobs, queues, workers, health, alerts and compliance."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    period_hours = models.PositiveIntegerField()
    data = models.JSONField(default=dict)
    text = models.TextField()
    emailed_to = models.JSONField(default=list, blank=True)
    email_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"System report {self.created_at:%Y-%m-%d %H:%M}"
