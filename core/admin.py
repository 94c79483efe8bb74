"""The audit trail in the admin, and the helpers every app's admin actions use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest

from core.actors import Actor
from core.errors import ApplicationError
from core.models import AuditEntry, TriggerSource

# What a service raises when it refuses: shown to the operator as it is, the
# same message the API answers with.
REFUSALS: tuple[type[Exception], ...] = (ApplicationError, PermissionDenied)

# A URL typed without a scheme means https (Django 6's default; webhooks must not go out in clear).
HTTPS_URL_FIELDS: dict[type, dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


def admin_actor(request: HttpRequest) -> Actor:
    """The acting user of an admin request."""
    return Actor(user=request.user, source=TriggerSource.ADMIN)


def apply_to_each(
    model_admin, request, objects, operation, *, verb: str, noun: str, refusals: tuple[type[Exception], ...] = REFUSALS
) -> None:
    """Run one service call per selected object (`operation(obj, actor)`); say how many
    worked and why the others were refused."""
    actor = admin_actor(request)
    done, refused = 0, []
    for obj in objects:
        try:
            operation(obj, actor)
            done += 1
        except refusals as exc:
            refused.append(f"{obj}: {exc}")
    model_admin.message_user(request, f"{verb} {done} {noun}.", messages.SUCCESS if done else messages.WARNING)
    if refused:
        model_admin.message_user(request, "Skipped " + "; ".join(refused[:10]), messages.WARNING)


class SavedByService:
    """A ModelAdmin mixin: the admin form's save goes through the app's save service
    (`save_service(actor=..., <save_target>=existing or None, **fields)`), so a row saved
    here is checked and audited exactly like one saved by the API or a configuration restore.

    Only the fields the form changed are passed on a change (all of them on a create),
    which also covers the change list's editable columns.
    """

    save_service: ClassVar[Callable[..., Any]]
    save_target: ClassVar[str]

    def save_model(self, request, obj, form, change):
        names = {model_field.name for model_field in obj._meta.concrete_fields}
        fields = {
            name: value
            for name, value in form.cleaned_data.items()
            if name in names and (not change or name in form.changed_data)
        }
        saved = type(self).save_service(
            actor=admin_actor(request), **{self.save_target: obj if change else None}, **fields
        )
        obj.pk = saved.pk


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "source", "target_label", "job", "reason"]
    list_filter = ["action", "source", "created_at"]
    search_fields = ["actor_label", "action", "target_label", "reason"]
    list_select_related = ["job"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
