"""Admin for webhook subscriptions, the delivery log (with replay) and review digests.
Saves and actions call events.services (checked and audited)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from core.admin import SavedByService, admin_actor, apply_to_each
from events.models import Event, EventDelivery, EventSubscription, ReviewDigest
from events.services import (
    delivery_replay,
    review_digest_save,
    review_digest_send,
    subscription_clean,
    subscription_save,
)


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text=EventSubscription._meta.get_field("url").help_text
    )
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)
    new_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        strip=True,
        help_text="Signing secret (HMAC-SHA256). Leave empty to keep the current one; a new subscription without "
        "one gets a generated secret, shown once after saving.",
    )

    class Meta:
        model = EventSubscription
        fields = ["name", "url", "events", "slack_compatible", "enabled"]

    def clean(self):
        data = super().clean()
        if data.get("url") and data.get("events"):
            try:
                data["events"] = subscription_clean(url=data["url"], events=list(data["events"]))
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(EventSubscription)
class EventSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["name", "url", "event_list", "slack_compatible", "enabled", "updated_at"]
    list_filter = ["enabled", "slack_compatible"]
    search_fields = ["name", "url"]

    @admin.display(description="events")
    def event_list(self, subscription: EventSubscription) -> str:
        return ", ".join(subscription.events or [])

    def save_model(self, request, obj, form, change):
        subscription, secret = subscription_save(
            subscription=obj, actor=admin_actor(request), secret=form.cleaned_data.get("new_secret") or None
        )
        if secret and not form.cleaned_data.get("new_secret"):
            messages.warning(
                request, f"Signing secret of {subscription.name} (shown once; give it to the receiver): {secret}"
            )


@admin.register(EventDelivery)
class EventDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "subject_id",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "event", "subscription"]
    list_select_related = ["subscription"]
    search_fields = ["=subject_id", "=job_id"]
    readonly_fields = [
        "subscription",
        "event",
        "payload",
        "subject_type",
        "subject_id",
        "status",
        "attempts",
        "response_status",
        "response_body",
        "error",
        "job_id",
        "replay_of",
        "created_at",
        "last_attempt_at",
        "delivered_at",
    ]
    actions = ["replay_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Replay the selected deliveries", permissions=["replay"])
    def replay_selected(self, request, queryset):
        apply_to_each(
            self,
            request,
            queryset.select_related("subscription"),
            lambda delivery, actor: delivery_replay(delivery=delivery, actor=actor),
            verb="replayed",
            noun="delivery",
            refusals=(PermissionDenied,),
        )

    def has_replay_permission(self, request):
        return request.user.has_perm("events.replay_eventdelivery")


@admin.register(ReviewDigest)
class ReviewDigestAdmin(SavedByService, admin.ModelAdmin):
    save_service, save_target = review_digest_save, "digest"
    list_display = ["name", "group", "enabled", "last_sent_on"]
    actions = ["send_now"]

    @admin.action(description="Send the selected digests now")
    def send_now(self, request, queryset):
        sent = sum(review_digest_send(digest=digest, force=True)["sent"] for digest in queryset)
        self.message_user(request, f"{sent} digest emails sent.")
