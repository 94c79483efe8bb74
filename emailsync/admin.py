"""Admin for mailboxes, their messages and syncs. Actions call the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from emailsync.models import Mailbox, MailMessage, SyncRun
from emailsync.services import (
    MAILBOX_FIELDS,
    MailboxInvalid,
    mailbox_cancel_sync,
    mailbox_delete,
    mailbox_save,
    mailbox_sync_enqueue,
    mailbox_test_connection,
    mailbox_validate_settings,
)
from jobs.admin import admin_actor
from jobs.errors import JobNotAllowed


class MailboxForm(forms.ModelForm):
    # Write-only: the stored secret is never rendered back into the page.
    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                             help_text="Password, app password or OAuth2 access token. Leave empty to keep the "
                                       "stored one.")
    refresh_token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                    help_text="OAuth2 refresh token (XOAUTH2 only). Leave empty to keep it.")

    class Meta:
        model = Mailbox
        fields = [*MAILBOX_FIELDS, "owner"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("secret"):
            self.add_error("secret", "A new mailbox needs its password or token.")
        if cleaned.get("host") and cleaned.get("security"):
            try:
                mailbox_validate_settings(host=cleaned["host"], security=cleaned["security"])
            except MailboxInvalid as exc:
                self.add_error("host", str(exc))
        return cleaned


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = ["name", "username", "host", "port", "security", "enabled", "attention", "last_sync_at", "owner"]
    list_filter = ["enabled", "needs_attention", "security", "auth"]
    search_fields = ["name", "username", "host"]
    readonly_fields = ["has_secret", "needs_attention", "last_error", "last_sync_at", "created_at", "updated_at"]
    actions = ["test_connection", "sync_now", "cancel_sync"]

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
        saved = mailbox_save(actor=admin_actor(request), mailbox=obj if change else None,
                             secret=form.cleaned_data.get("secret") or None,
                             refresh_token=form.cleaned_data.get("refresh_token") or None,
                             owner=form.cleaned_data.get("owner"), **fields)
        if form.cleaned_data.get("owner") != saved.owner:
            Mailbox.objects.filter(pk=saved.pk).update(owner=form.cleaned_data.get("owner"))
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        mailbox_delete(mailbox=obj, actor=admin_actor(request))

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
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            note = "already running" if job.deduplicated else "queued"
            self.message_user(request, f"{mailbox}: sync {note} (job {job.pk}).", messages.SUCCESS)

    @admin.action(description="Cancel the running sync")
    def cancel_sync(self, request, queryset):
        for mailbox in queryset:
            try:
                mailbox_cancel_sync(mailbox=mailbox, actor=admin_actor(request))
                self.message_user(request, f"{mailbox}: cancel requested.", messages.SUCCESS)
            except (JobNotAllowed, PermissionDenied) as exc:
                self.message_user(request, f"{mailbox}: {exc}", messages.WARNING)


@admin.register(MailMessage)
class MailMessageAdmin(admin.ModelAdmin):
    list_display = ["first_seen_at", "mailbox", "folder", "subject", "sender", "status", "attachments",
                    "invoices_created", "attempts"]
    list_filter = ["status", "mailbox"]
    search_fields = ["subject", "sender", "=message_id"]
    list_select_related = ["mailbox"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "mailbox", "status", *SyncRun.COUNT_FIELDS, "finished_at"]
    list_filter = ["status", "mailbox"]
    list_select_related = ["mailbox"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
