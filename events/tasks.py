"""Event job kinds. Thin: load ids, call a service."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from events.models import EventDelivery
from events.services import review_digests_send_due, webhook_deliver
from events.webhooks import WebhookRetryable
from jobs.registry import job_kind


class DeliveryParams(serializers.Serializer):
    delivery_id = serializers.IntegerField(min_value=1)


def _delivery(params: dict) -> EventDelivery | None:
    return EventDelivery.objects.filter(pk=params.get("delivery_id")).first()


@job_kind(
    "events.deliver_webhook",
    label="Deliver a webhook event",
    queue="default",
    priority=4,
    params=DeliveryParams,
    user_triggerable=False,
    subject=_delivery,
    unique_key="event-delivery:{delivery_id}",
    max_attempts=max(1, settings.EVENTS_WEBHOOK_MAX_ATTEMPTS),
    retry_on=(WebhookRetryable,),
    backoff_base=settings.EVENTS_WEBHOOK_BACKOFF,
    backoff_max=max(settings.EVENTS_WEBHOOK_BACKOFF, 3600.0),
    soft_time_limit=int(settings.EVENTS_WEBHOOK_TIMEOUT) + 30,
    time_limit=int(settings.EVENTS_WEBHOOK_TIMEOUT) + 60,
)
def deliver_webhook(job, *, delivery_id: int) -> dict:
    final = job.job.attempts >= job.job.max_attempts
    return webhook_deliver(
        delivery=EventDelivery.objects.select_related("subscription").get(pk=delivery_id), final_attempt=final
    )


@job_kind(
    "events.send_review_digests",
    label="Email the review digests",
    queue="maintenance",
    priority=7,
    staff_only=True,
    unique_key="events.send_review_digests",
    soft_time_limit=300,
    time_limit=360,
)
def send_review_digests(job) -> dict:
    return review_digests_send_due()
