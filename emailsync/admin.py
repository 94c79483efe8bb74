"""Admin for mailboxes, their messages and syncs. Actions call the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from core.admin import REFUSALS, admin_actor
from emailsync.api import oauth_redirect_uri
from emailsync.models import Mailbox, MailMessage, MailRule, SyncRun
from emailsync.oauth_connect import OAuthConnectError, oauth_start
from emailsync.rules import RuleInvalid, rule_validate
from emailsync.selectors import mailboxes_visible_to
from emailsync.services import (
    MAILBOX_FIELDS,
    RULE_FIELDS,
    MailboxInvalid,
    mail_rule_delete,
    mail_rule_save,
    mailbox_cancel_sync,
    mailbox_delete,
    mailbox_rules_test,
    mailbox_save,
    mailbox_sync_enqueue,
    mailbox_test_connection,
    mailbox_validate_settings,
)


class MailboxForm(forms.ModelForm):
    # Write-only: the stored secret is never rendered back into the page.
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Password, app password or OAuth2 access token. Leave empty to keep the stored one.",
    )
    refresh_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="OAuth2 refresh token (XOAUTH2 only). Leave empty to keep it.",
    )

    class Meta:
        model = Mailbox
        fields = [*MAILBOX_FIELDS, "owner"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("secret"):
            self.add_error("secret", "A new mailbox needs its password or token.")
        if cleaned.get("host") and cleaned.get("security"):
            try:
                mailbox_validate_settings(host=cleaned["host"], security=cleaned["security"], port=cleaned.get("port"))
            except MailboxInvalid as exc:
                for field, errors in (exc.field_errors or {None: [exc.message]}).items():
                    self.add_error(field, errors)
        return cleaned


class MailRuleForm(forms.ModelForm):
    class Meta:
        model = MailRule
        fields = list(RULE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        probe = MailRule(
            **{
                name: cleaned.get(name) if cleaned.get(name) is not None else getattr(MailRule(), name)
                for name in RULE_FIELDS
                if name not in ("vendor", "invoice_owner")
            }
        )
        try:
            rule_validate(probe)  # an invalid glob or regular expression is refused here, not at sync time
        except RuleInvalid as exc:
            for name, message in exc.errors.items():
                self.add_error(name if name in self.fields else None, message)
        return cleaned


class MailRuleInline(admin.StackedInline):
    model = MailRule
    form = MailRuleForm
    extra = 0
    ordering = ["position", "pk"]
    autocomplete_fields = []
    raw_id_fields = ["vendor", "invoice_owner"]
    fieldsets = [
        (None, {"fields": [("position", "name", "enabled")]}),
        (
            "When (every condition filled in must hold)",
            {
                "fields": [
                    ("sender", "recipient"),
                    ("subject", "body"),
                    ("attachment_filename", "attachment_content_type"),
                    "folder",
                ]
            },
        ),
        ("Then", {"fields": ["action", ("vendor", "invoice_owner"), ("after_processing", "move_to_folder")]}),
    ]

    # Rules are part of the mailbox's settings: the mailbox permissions govern them.
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("emailsync.view_mailbox")

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("emailsync.change_mailbox")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("emailsync.change_mailbox")

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("emailsync.change_mailbox")


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    inlines = [MailRuleInline]
    change_form_template = "admin/emailsync/mailbox/change_form.html"
    change_list_template = "admin/emailsync/mailbox/change_list.html"

    def get_queryset(self, request):
        # The one visibility rule (emailsync.selectors), as in the API and the commands.
        return mailboxes_visible_to(request.user)

    list_display = ["name", "username", "host", "port", "security", "enabled", "attention", "last_sync_at", "owner"]
    list_filter = ["enabled", "needs_attention", "security", "auth"]
    search_fields = ["name", "username", "host"]
    readonly_fields = [
        "has_secret",
        "needs_attention",
        "reconnect_required",
        "last_error",
        "last_sync_at",
        "created_at",
        "updated_at",
    ]
    actions = ["test_connection", "sync_now", "sync_groups", "cancel_sync"]

    @admin.display(description="needs attention", boolean=False)
    def attention(self, mailbox: Mailbox) -> str:
        if not mailbox.needs_attention:
            return "—"
        return format_html('<span style="color:#dc3545" title="{}">yes</span>', mailbox.last_error)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in MAILBOX_FIELDS if name in form.changed_data}
        if not change:
            fields = {name: form.cleaned_data[name] for name in MAILBOX_FIELDS}
        # The form already checked the host policy (MailboxForm.clean).
        saved = mailbox_save(
            actor=admin_actor(request),
            mailbox=obj if change else None,
            secret=form.cleaned_data.get("secret") or None,
            refresh_token=form.cleaned_data.get("refresh_token") or None,
            owner=form.cleaned_data.get("owner"),
            **fields,
        )
        if form.cleaned_data.get("owner") != saved.owner:
            Mailbox.objects.filter(pk=saved.pk).update(owner=form.cleaned_data.get("owner"))
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        mailbox_delete(mailbox=obj, actor=admin_actor(request))

    def save_formset(self, request, form, formset, change):
        if formset.model is not MailRule:
            return super().save_formset(request, form, formset, change)
        # Through the service, so every rule change is checked and audited like the mailbox itself.
        actor = admin_actor(request)
        formset.save(commit=False)  # sorts the forms into new, changed and deleted; saves nothing
        for rule in formset.deleted_objects:
            mail_rule_delete(rule=rule, actor=actor)
        for rule_form in formset.forms:
            if rule_form in formset.deleted_forms or not rule_form.has_changed():
                continue
            fields = {name: rule_form.cleaned_data.get(name) for name in RULE_FIELDS}
            fields = {
                name: ("" if value is None and name not in ("vendor", "invoice_owner", "position") else value)
                for name, value in fields.items()
                if not (name == "position" and value is None)
            }
            existing = rule_form.instance if rule_form.instance.pk else None
            mail_rule_save(actor=actor, mailbox=form.instance, rule=existing, **fields)
        return None

    def get_urls(self):
        return [
            path(
                "<int:mailbox_id>/test-rules/",
                self.admin_site.admin_view(self.test_rules_view),
                name="emailsync_mailbox_test_rules",
            ),
            path(
                "<int:mailbox_id>/sync-groups/",
                self.admin_site.admin_view(self.sync_groups_view),
                name="emailsync_mailbox_sync_groups",
            ),
            path(
                "oauth/<str:provider>/connect/",
                self.admin_site.admin_view(self.oauth_connect_view),
                name="emailsync_mailbox_oauth_connect",
            ),
            *super().get_urls(),
        ]

    def test_rules_view(self, request, mailbox_id: int):
        """Dry run of the rules on the last N recorded messages; nothing is ingested or changed."""
        mailbox = get_object_or_404(self.get_queryset(request), pk=mailbox_id)
        if not self.has_view_permission(request, mailbox):
            raise PermissionDenied
        try:
            limit = int(request.GET.get("limit", 20))
        except ValueError:
            limit = 20
        result = mailbox_rules_test(mailbox=mailbox, actor=admin_actor(request), limit=limit)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": mailbox,
            "title": f"Test the rules of {mailbox}",
            "result": result,
            "limit": limit,
        }
        return TemplateResponse(request, "admin/emailsync/mailbox/test_rules.html", context)

    @admin.action(description="Test the connection")
    def test_connection(self, request, queryset):
        for mailbox in queryset:
            result = mailbox_test_connection(mailbox=mailbox)
            if result["ok"]:
                folders = ", ".join(f"{name} ({count})" for name, count in result["folders"].items())
                self.message_user(request, f"{mailbox}: connected; folders {folders}.", messages.SUCCESS)
            else:
                self.message_user(request, f"{mailbox}: {result['error']}", messages.ERROR)

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        for mailbox in queryset:
            try:
                job = mailbox_sync_enqueue(mailbox=mailbox, actor=admin_actor(request))
            except REFUSALS as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            note = "already running" if job.deduplicated else "queued"
            self.message_user(request, f"{mailbox}: sync {note} (job {job.pk}).", messages.SUCCESS)

    @admin.action(description="Sync group / shared folders")
    def sync_groups(self, request, queryset):
        for mailbox in queryset:
            try:
                job = mailbox_sync_enqueue(mailbox=mailbox, actor=admin_actor(request), groups=True)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            note = "a sync is already running" if job.deduplicated else "shared folders scan queued"
            self.message_user(request, f"{mailbox}: {note} (job {job.pk}).", messages.SUCCESS)

    def oauth_connect_view(self, request, provider: str):
        """ "Connect Google account" / "Connect Microsoft account" (and "Reconnect"): off to the provider."""
        mailbox = None
        if request.GET.get("mailbox", "").isdigit():
            mailbox = get_object_or_404(self.get_queryset(request), pk=int(request.GET["mailbox"]))
        try:
            url = oauth_start(
                actor=admin_actor(request),
                provider=provider,
                redirect_uri=oauth_redirect_uri(request),
                mailbox=mailbox,
                source="admin",
            )
        except (OAuthConnectError, PermissionDenied) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return (
                redirect("admin:emailsync_mailbox_change", mailbox.pk)
                if mailbox
                else redirect("admin:emailsync_mailbox_changelist")
            )
        return redirect(url)

    def sync_groups_view(self, request, mailbox_id: int):
        """The "Sync group folders" button on the mailbox page (POST)."""
        mailbox = get_object_or_404(self.get_queryset(request), pk=mailbox_id)
        if request.method != "POST":
            return redirect("admin:emailsync_mailbox_change", mailbox.pk)
        self.sync_groups(request, Mailbox.objects.filter(pk=mailbox.pk))
        return redirect("admin:emailsync_mailbox_change", mailbox.pk)

    @admin.action(description="Cancel the running sync")
    def cancel_sync(self, request, queryset):
        for mailbox in queryset:
            try:
                mailbox_cancel_sync(mailbox=mailbox, actor=admin_actor(request))
                self.message_user(request, f"{mailbox}: cancel requested.", messages.SUCCESS)
            except REFUSALS as exc:
                self.message_user(request, f"{mailbox}: {exc}", messages.WARNING)


@admin.register(MailMessage)
class MailMessageAdmin(admin.ModelAdmin):
    list_display = [
        "first_seen_at",
        "mailbox",
        "folder",
        "subject",
        "sender",
        "status",
        "decided_by",
        "attachments",
        "invoices_created",
        "attempts",
    ]
    list_filter = ["status", "mailbox"]
    readonly_fields = ["decided_by"]
    search_fields = ["subject", "sender", "=message_id"]
    list_select_related = ["mailbox"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="decided by")
    def decided_by(self, message: MailMessage) -> str:
        if message.rule_name:
            return f"rule {message.rule_name}"
        if (
            message.status in (MailMessage.Status.PENDING, MailMessage.Status.NO_CANDIDATES)
            and not message.processed_at
        ):
            return "—"
        return "default (no rule matched)"


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "mailbox", "status", *SyncRun.COUNT_FIELDS, "finished_at"]
    list_filter = ["status", "mailbox"]
    list_select_related = ["mailbox"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
