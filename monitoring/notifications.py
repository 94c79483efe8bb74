"""Alert notifications: email, and a webhook whose JSON body is signed.

Webhook requests carry `X-APIntake-Signature: sha256=<hex HMAC-SHA256 of the
raw body with MONITORING_WEBHOOK_SECRET>`; a receiver recomputes it over the
bytes it got and compares in constant time. The body holds `sent_at`, so a
receiver can also refuse old replays. Delivery is retried on connection
errors, timeouts, 429 and 5xx answers, with exponential backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from monitoring.models import Alert, AlertNotification
from monitoring.webhook_urls import alert_webhook_url_problem

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-APIntake-Signature"
EVENT_HEADER = "X-APIntake-Event"
DELIVERY_HEADER = "X-APIntake-Delivery"


class WebhookNotSigned(Exception):
    """MONITORING_WEBHOOK_SECRET is not set, so webhooks are not sent (never unsigned)."""


def webhook_signature(body: bytes, secret: str) -> str:
    """The value of the signature header for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alert_payload(alert: Alert, event: str) -> dict:
    """What a webhook receives (and what the email says)."""
    return {
        "event": f"alert.{event}",
        "alert_id": alert.pk,
        "rule": alert.rule.name,
        "rule_kind": alert.rule.kind,
        "severity": alert.rule.severity,
        "key": alert.key,
        "status": alert.status,
        "message": alert.message,
        "value": alert.value,
        "fired_at": alert.fired_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "sent_at": timezone.now().isoformat(),
    }


def alert_notify(*, alert: Alert, event: str) -> list[AlertNotification]:
    """Send the alert's fire or resolve event to its rule's email recipients and webhook."""
    sent = []
    recipients = _email_recipients(alert.rule.email_to)
    if recipients:
        sent.append(_send_email(alert, event, recipients))
    if alert.rule.webhook_url:
        sent.append(_send_webhook(alert, event, alert.rule.webhook_url))
    return sent


def _email_recipients(email_to: str) -> list[str]:
    if email_to.strip().lower() == "none":
        return []
    listed = [address.strip() for address in email_to.replace(";", ",").split(",") if address.strip()]
    return listed or [address for _, address in settings.ADMINS]


def _send_email(alert: Alert, event: str, recipients: list[str]) -> AlertNotification:
    payload = alert_payload(alert, event)
    verb = "FIRING" if event == AlertNotification.Event.FIRED else "RESOLVED"
    subject = f"[AP Intake] {verb}: {alert.rule.name}" + (f" ({alert.key})" if alert.key else "")
    lines = [
        alert.message,
        "",
        f"Rule: {alert.rule.name} ({alert.rule.get_kind_display()})",
        f"Severity: {alert.rule.severity}",
        f"Fired at: {payload['fired_at']}",
    ]
    if alert.resolved_at:
        lines.append(f"Resolved at: {payload['resolved_at']}")
    record = AlertNotification(
        alert=alert,
        event=event,
        channel=AlertNotification.Channel.EMAIL,
        target=", ".join(recipients)[:500],
        attempts=1,
    )
    try:
        send_mail(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
        record.status = AlertNotification.Status.SENT
    except Exception as exc:  # SMTP down, refused, ...: recorded, the alert itself stands
        logger.warning("Alert email for %s failed: %s", alert, exc)
        record.status = AlertNotification.Status.FAILED
        record.error = f"{type(exc).__name__}: {exc}"[:2000]
    record.save()
    return record


def _send_webhook(alert: Alert, event: str, url: str) -> AlertNotification:
    record = AlertNotification(alert=alert, event=event, channel=AlertNotification.Channel.WEBHOOK, target=url[:500])
    try:
        status, attempts = webhook_post(url=url, payload=alert_payload(alert, event), event=f"alert.{event}")
        record.status, record.response_status, record.attempts = AlertNotification.Status.SENT, status, attempts
    except WebhookFailed as exc:
        record.status = AlertNotification.Status.FAILED
        record.response_status, record.attempts = exc.status, exc.attempts
        record.error = str(exc)[:2000]
    except WebhookNotSigned as exc:
        record.status, record.error = AlertNotification.Status.FAILED, str(exc)
    if record.status == AlertNotification.Status.FAILED:
        logger.warning("Alert webhook for %s failed: %s", alert, record.error)
    record.save()
    return record


class WebhookFailed(Exception):
    """Every attempt to deliver a webhook failed; says why the last one did."""

    def __init__(self, message: str, *, status: int | None, attempts: int):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to an internal address the URL check never saw: refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise WebhookFailed(
            f"The receiver answered with a redirect (HTTP {code}); redirects are not followed.", status=code, attempts=1
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


def webhook_post(*, url: str, payload: dict, event: str) -> tuple[int, int]:
    """POST a signed JSON body; returns (HTTP status, attempts). Raises WebhookFailed."""
    secret = settings.MONITORING_WEBHOOK_SECRET
    if not secret:
        raise WebhookNotSigned("MONITORING_WEBHOOK_SECRET is not set: webhooks are only sent signed.")
    problem = alert_webhook_url_problem(url)  # again at send time: a row may predate the check, DNS may change
    if problem:
        raise WebhookFailed(f"The webhook was not sent: {problem}", status=None, attempts=0)
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "AP-Intake-monitoring",
        SIGNATURE_HEADER: webhook_signature(body, secret),
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(uuid.uuid4()),
    }
    attempts_allowed = max(1, settings.MONITORING_WEBHOOK_RETRIES + 1)
    last_error, last_status = "", None
    for attempt in range(1, attempts_allowed + 1):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked above
        try:
            with _OPENER.open(request, timeout=settings.MONITORING_WEBHOOK_TIMEOUT) as response:
                return response.status, attempt
        except urllib.error.HTTPError as exc:
            last_status, last_error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                raise WebhookFailed(
                    f"The receiver refused the webhook: {last_error}", status=exc.code, attempts=attempt
                ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last_status, last_error = None, f"{type(reason).__name__}: {reason}"
        if attempt < attempts_allowed:
            time.sleep(settings.MONITORING_WEBHOOK_BACKOFF * 2 ** (attempt - 1))
    raise WebhookFailed(
        f"Webhook not delivered after {attempts_allowed} attempts: {last_error}",
        status=last_status,
        attempts=attempts_allowed,
    )
