"""Admin of monitoring: alert and policy rules and runtime budgets are edited here (saved
through monitoring.services, checked and audited); alerts, scans, violations, snapshots
and reports are read here. Actions call monitoring.services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from core.admin import HTTPS_URL_FIELDS, REFUSALS, SavedByService, admin_actor
from monitoring.models import (
    Alert,
    AlertNotification,
    AlertRule,
    HealthSnapshot,
    Heartbeat,
    PolicyRule,
    RuntimeBudget,
    ScanRun,
    SystemReport,
    Violation,
    WorkerSnapshot,
)
from monitoring.services import alert_rule_save, policy_rule_save, runtime_budget_save, scan_trigger


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by monitoring itself: viewable, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(SavedByService, admin.ModelAdmin):
    save_service, save_target = alert_rule_save, "rule"
    formfield_overrides = HTTPS_URL_FIELDS
    list_display = (
        "name",
        "kind",
        "enabled",
        "severity",
        "threshold",
        "window_minutes",
        "queue",
        "job_kind",
        "check_name",
        "firing",
    )
    list_filter = ("enabled", "kind", "severity")
    list_editable = ("enabled", "threshold")
    search_fields = ("name", "description")
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "severity", "description")}),
        ("Condition", {"fields": ("threshold", "window_minutes", "min_jobs", "queue", "job_kind", "check_name")}),
        (
            "Notifications",
            {
                "fields": ("email_to", "webhook_url"),
                "description": "Sent only when an alert fires and when it resolves. Webhook bodies are "
                "signed with MONITORING_WEBHOOK_SECRET (HMAC-SHA256).",
            },
        ),
    )

    @admin.display(description="firing")
    def firing(self, rule: AlertRule) -> int:
        return rule.alerts.filter(status="firing").count()


class AlertNotificationInline(admin.TabularInline):
    model = AlertNotification
    extra = 0
    can_delete = False
    fields = ("created_at", "event", "channel", "target", "status", "attempts", "response_status", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("rule", "key", "status_badge", "message", "fired_at", "resolved_at")
    list_filter = ("status", "rule__kind", "rule__severity", "rule")
    list_select_related = ("rule",)
    search_fields = ("key", "message", "rule__name")
    date_hierarchy = "fired_at"
    inlines = [AlertNotificationInline]

    @admin.display(description="status", ordering="status")
    def status_badge(self, alert: Alert) -> str:
        colour = "#dc3545" if alert.status == "firing" else "#198754"
        return format_html('<b style="color:{}">{}</b>', colour, alert.get_status_display())


@admin.register(PolicyRule)
class PolicyRuleAdmin(SavedByService, admin.ModelAdmin):
    save_service, save_target = policy_rule_save, "rule"
    list_display = ("name", "kind", "enabled", "severity", "amount", "days", "open_violations", "updated_at")
    list_filter = ("enabled", "kind", "severity")
    list_editable = ("enabled",)
    search_fields = ("name", "description")
    actions = ["scan_all"]

    @admin.display(description="open violations")
    def open_violations(self, rule: PolicyRule) -> str:
        count = rule.violations.filter(status="open").count()
        url = reverse("admin:monitoring_violation_changelist") + f"?rule__id__exact={rule.pk}&status__exact=open"
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.action(description="Run a full compliance scan now")
    def scan_all(self, request, queryset):
        _start_scan(request, ScanRun.Mode.FULL)


def _start_scan(request: HttpRequest, mode: str) -> None:
    try:
        job = scan_trigger(actor=admin_actor(request), mode=mode, reason="from the admin")
    except REFUSALS as exc:
        messages.error(request, str(exc))
        return
    url = reverse("admin:jobs_job_change", args=[job.pk])
    if job.deduplicated:
        messages.warning(
            request, format_html('A scan is already queued or running: <a href="{}">job {}</a>.', url, str(job.pk)[:8])
        )
    else:
        messages.success(
            request, format_html('{} scan started: <a href="{}">job {}</a>.', mode.capitalize(), url, str(job.pk)[:8])
        )


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "mode",
        "status",
        "records_scanned",
        "violations_found",
        "violations_opened",
        "violations_resolved",
        "duration_seconds",
        "job_link",
    )
    list_filter = ("status", "mode")
    date_hierarchy = "started_at"
    change_list_template = "admin/monitoring/scanrun/change_list.html"

    def get_urls(self):
        return [
            path("scan/", self.admin_site.admin_view(require_POST(self.scan_view)), name="monitoring_scanrun_scan"),
            *super().get_urls(),
        ]

    def scan_view(self, request):
        mode = ScanRun.Mode.INCREMENTAL if request.POST.get("mode") == "incremental" else ScanRun.Mode.FULL
        _start_scan(request, mode)
        return HttpResponseRedirect(reverse("admin:monitoring_scanrun_changelist"))

    @admin.display(description="job")
    def job_link(self, scan: ScanRun) -> str:
        if not scan.job_id:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:jobs_job_change", args=[scan.job_id]), str(scan.job_id)[:8]
        )


@admin.register(Violation)
class ViolationAdmin(ReadOnlyAdmin):
    list_display = ("rule", "invoice_link", "amount", "status", "first_seen_at", "last_seen_at", "resolved_at")
    list_filter = ("status", "rule__severity", "rule")
    list_select_related = ("rule", "invoice")
    search_fields = ("invoice__invoice_number", "invoice__seller_name", "invoice__seller_vat_id")
    date_hierarchy = "first_seen_at"
    raw_id_fields = ("invoice",)

    @admin.display(description="invoice")
    def invoice_link(self, violation: Violation) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:invoices_invoice_change", args=[violation.invoice_id]),
            str(violation.invoice),
        )

    @admin.display(description="gross")
    def amount(self, violation: Violation) -> str:
        invoice = violation.invoice
        return f"{invoice.total_gross} {invoice.currency}" if invoice.total_gross is not None else "-"


@admin.register(RuntimeBudget)
class RuntimeBudgetAdmin(SavedByService, admin.ModelAdmin):
    save_service, save_target = runtime_budget_save, "budget"
    list_display = ("kind", "max_seconds", "note")
    search_fields = ("kind",)


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "healthy", "failing", "duration_ms")
    list_filter = ("healthy",)
    date_hierarchy = "created_at"

    @admin.display(description="failing checks")
    def failing(self, snapshot: HealthSnapshot) -> str:
        return ", ".join(check["name"] for check in snapshot.checks if not check["ok"]) or "-"


@admin.register(WorkerSnapshot)
class WorkerSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "hostname",
        "online",
        "pid",
        "concurrency",
        "active",
        "processed",
        "processed_since_last",
    )
    list_filter = ("online", "hostname")
    date_hierarchy = "created_at"


@admin.register(SystemReport)
class SystemReportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "period_hours", "emailed", "page")
    readonly_fields = ("created_at", "period_hours", "text", "emailed_to", "email_error")
    exclude = ("data",)

    @admin.display(description="emailed to")
    def emailed(self, report: SystemReport) -> str:
        return ", ".join(report.emailed_to) or report.email_error or "-"

    @admin.display(description="report")
    def page(self, report: SystemReport) -> str:
        return format_html('<a href="{}">view</a>', reverse("monitoring-report", args=[report.pk]))


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "beat_at")
