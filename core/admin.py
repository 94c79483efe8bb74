"""The audit trail in the admin, and the helpers every app's admin actions use."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from core.actors import Actor
from core.errors import ApplicationError
from core.models import AuditEntry, TriggerSource

# What a service raises when it refuses: shown to the operator as it is, the
# same message the API answers with.
REFUSALS: tuple[type[Exception], ...] = (ApplicationError, PermissionDenied)


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
