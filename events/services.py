"""Business events: publish to subscriptions, deliver webhooks (as jobs), replay, the review digest.

Publishing writes one EventDelivery row per matching subscription and enqueues an
`events.deliver_webhook` job for it when the caller's transaction commits; the
request or the pipeline step that caused the event never waits for a receiver.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.actors import Actor, require_permission
from core.audit import audit_record
from core.models import model_label
from core.saves import audited_save
from events import webhooks
from events.models import Event, EventDelivery, EventSubscription, ReviewDigest
from jobs.services import job_enqueue

logger = logging.getLogger(__name__)

# --- subscriptions ------------------------------------------------------------------------------------


def subscription_clean(*, url: str, events: list) -> list[str]:
    """Check a subscription's URL (SSRF host check) and events; ValidationError by field."""
    errors = {}
    try:
        webhooks.check_webhook_url(url)
    except webhooks.WebhookUrlNotAllowed as exc:
        errors["url"] = [str(exc)]
    if not isinstance(events, list) or not events or not all(isinstance(name, str) for name in events):
        errors["events"] = ["Choose at least one event."]
    else:
        unknown = [name for name in events if name not in Event.values]
        if unknown:
            errors["events"] = [f"Unknown events {', '.join(unknown)}; known: {', '.join(Event.values)}."]
    if errors:
        raise ValidationError(errors)
    return sorted(set(events))


def subscription_save(
    *, subscription: EventSubscription, actor: Actor, secret: str | None = None, reason: str = ""
) -> tuple[EventSubscription, str]:
    """Create or update a webhook subscription (checked, audited).

    `secret`: a new signing secret; None keeps the current one, and a new subscription
    without one gets a generated secret. Returns the subscription and the secret that
    was set now ("" when unchanged) so it can be shown once.
    """
    require_permission(
        actor.user, "events.change_eventsubscription" if subscription.pk else "events.add_eventsubscription"
    )
    subscription.events = subscription_clean(url=subscription.url, events=subscription.events)
    subscription.full_clean()  # the model's own rules (name, URL form), as the admin form checks them
    new_secret = ""
    if secret:
        new_secret = secret
    elif not subscription.secret_ciphertext:
        new_secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        created = subscription.pk is None
        if new_secret:
            subscription.set_secret(new_secret)
        if created and getattr(actor.user, "pk", None):
            subscription.created_by = actor.user
        subscription.save()
        audit_record(
            actor=actor,
            action="events.subscription_create" if created else "events.subscription_update",
            target=subscription,
            reason=reason,
            details={
                "url": subscription.url,
                "events": subscription.events,
                "slack_compatible": subscription.slack_compatible,
                "enabled": subscription.enabled,
                "secret_changed": bool(new_secret),
            },
        )
    return subscription, new_secret


REVIEW_DIGEST_FIELDS = ("name", "group", "enabled")


def review_digest_save(*, actor: Actor, digest: ReviewDigest | None = None, reason: str = "", **fields) -> ReviewDigest:
    """Create or change a review digest (checked by the model), audited as
    events.digest_create / events.digest_update."""
    require_permission(actor.user, "events.change_reviewdigest" if digest else "events.add_reviewdigest")
    return audited_save(
        digest or ReviewDigest(),
        actor=actor,
        action="events.digest_update" if digest else "events.digest_create",
        fields=fields,
        allowed=REVIEW_DIGEST_FIELDS,
        reason=reason,
    )


# --- publishing and delivery --------------------------------------------------------------------------


def event_wanted(event: str) -> bool:
    """Whether any enabled subscription wants this event (to skip building payloads nobody reads)."""
    return any(
        event in (events or [])
        for events in EventSubscription.objects.filter(enabled=True).values_list("events", flat=True)
    )


def event_publish(*, event: str, subject, payload: dict) -> list[EventDelivery]:
    """Record a delivery of `event` for every enabled subscription that wants it, and queue each
    as a job on commit. Cheap when nobody subscribes (one query)."""
    if event not in Event.values:
        raise ValueError(f"unknown event {event}")
    wanted = [sub for sub in EventSubscription.objects.filter(enabled=True) if event in (sub.events or [])]
    if not wanted:
        return []
    body = {"event": event, "occurred_at": timezone.now().isoformat(), **payload}
    if settings.EVENTS_SITE_URL and subject is not None:
        body["url"] = f"{settings.EVENTS_SITE_URL.rstrip('/')}/admin/invoices/invoice/{subject.pk}/change/"
    deliveries = []
    with transaction.atomic():
        for subscription in wanted:
            delivery = EventDelivery.objects.create(
                subscription=subscription,
                event=event,
                payload=body,
                subject_type=model_label(subject) if subject is not None else "",
                subject_id=str(subject.pk) if subject is not None else "",
            )
            _enqueue(delivery)
            deliveries.append(delivery)
    return deliveries


def _enqueue(delivery: EventDelivery) -> None:
    job = job_enqueue("events.deliver_webhook", {"delivery_id": delivery.pk}, subject=delivery)
    EventDelivery.objects.filter(pk=delivery.pk).update(job_id=str(job.pk))
    delivery.job_id = str(job.pk)


def webhook_deliver(*, delivery: EventDelivery, final_attempt: bool) -> dict:
    """Send one delivery once and log the attempt on its row.

    Raises webhooks.WebhookRetryable when the receiver should be tried again (the
    job retries it with backoff; on the final attempt the delivery is marked failed
    first) and webhooks.WebhookRefused when trying again would not help.
    """
    subscription = delivery.subscription
    if delivery.status == EventDelivery.Status.DELIVERED:  # a second run of the same job
        return {"delivery_id": delivery.pk, "status": delivery.status, "attempts": delivery.attempts}
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    if not subscription.enabled:
        delivery.status, delivery.error = EventDelivery.Status.FAILED, "The subscription is disabled."
        delivery.save()
        raise webhooks.WebhookRefused(delivery.error)
    try:
        sent = webhooks.post(
            url=subscription.url,
            payload=delivery.payload,
            secret=subscription.secret,
            event=delivery.event,
            delivery_id=delivery.pk,
            slack=subscription.slack_compatible,
        )
    except webhooks.WebhookRetryable as exc:
        delivery.status = EventDelivery.Status.FAILED if final_attempt else EventDelivery.Status.RETRYING
        delivery.response_status, delivery.response_body, delivery.error = exc.status, exc.body[:500], str(exc)[:2000]
        delivery.save()
        raise
    except webhooks.WebhookRefused as exc:
        delivery.status = EventDelivery.Status.FAILED
        delivery.response_status, delivery.response_body, delivery.error = exc.status, exc.body[:500], str(exc)[:2000]
        delivery.save()
        raise
    delivery.status, delivery.delivered_at = EventDelivery.Status.DELIVERED, timezone.now()
    delivery.response_status, delivery.response_body, delivery.error = sent.status, sent.body[:500], ""
    delivery.save()
    return {
        "delivery_id": delivery.pk,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_status": sent.status,
    }


def delivery_replay(*, delivery: EventDelivery, actor: Actor, reason: str = "") -> EventDelivery:
    """Send a delivery's event again (same body, a new delivery row), audited."""
    require_permission(actor.user, "events.replay_eventdelivery")
    with transaction.atomic():
        again = EventDelivery.objects.create(
            subscription=delivery.subscription,
            event=delivery.event,
            payload=delivery.payload,
            subject_type=delivery.subject_type,
            subject_id=delivery.subject_id,
            replay_of=delivery,
        )
        _enqueue(again)
        audit_record(
            actor=actor,
            action="events.delivery_replay",
            target=again,
            reason=reason,
            details={"replay_of": delivery.pk},
        )
    return again


# --- the review digest ---------------------------------------------------------------------------------

# What waits in a person's review queue is the invoices app's to say, and invoices sits above
# events (it publishes them): it hands its reader over at start-up (InvoicesConfig.ready) so
# that events never imports it.
DigestMessage = tuple[str, str]  # subject, body
_review_digest_message: Callable[[Any], DigestMessage | None] | None = None


def review_digest_source_set(message: Callable[[Any], DigestMessage | None]) -> None:
    """Name the function that writes one member's digest (subject and body), or None when
    nothing waits for them."""
    global _review_digest_message
    _review_digest_message = message


def review_digest_send(*, digest: ReviewDigest, today: date | None = None, force: bool = False) -> dict:
    """Email each active member of the digest's group what waits in their review queue (once a day).

    Each member gets the queue as they may see it; members with an empty queue or
    without an email address get nothing. Returns counts for the job's result.
    """
    if _review_digest_message is None:
        raise ImproperlyConfigured("No review queue is registered for the digest (the invoices app is not loaded).")
    today = today or timezone.localdate()
    if digest.last_sent_on == today and not force:
        return {"digest": digest.name, "sent": 0, "skipped": "already sent today"}
    members = get_user_model().objects.filter(groups=digest.group, is_active=True).exclude(email="")
    sent = 0
    for user in members.order_by("pk"):
        message = _review_digest_message(user)
        if message is None:
            continue
        subject, body = message
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
        sent += 1
    ReviewDigest.objects.filter(pk=digest.pk).update(last_sent_on=today)
    digest.last_sent_on = today
    return {"digest": digest.name, "sent": sent}


def review_digests_send_due(*, today: date | None = None) -> dict:
    """Send every enabled digest not sent today (the daily schedule's job)."""
    results = [review_digest_send(digest=digest, today=today) for digest in ReviewDigest.objects.filter(enabled=True)]
    return {"digests": len(results), "emails": sum(result["sent"] for result in results)}
