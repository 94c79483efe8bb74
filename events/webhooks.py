"""Sending one webhook request: the URL check, the signature, the Slack form, no redirects.

Every request carries

    X-APIntake-Event: invoice.approved
    X-APIntake-Delivery: <delivery id>
    X-APIntake-Timestamp: <unix seconds>
    X-APIntake-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the subscription secret>

A receiver recomputes the HMAC over the timestamp and the bytes it got, compares in
constant time, and refuses timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from core.hostcheck import HostNotAllowed, HostUnresolvable, UrlNotAllowed, check_url_allowed

SIGNATURE_HEADER = "X-APIntake-Signature"
TIMESTAMP_HEADER = "X-APIntake-Timestamp"
EVENT_HEADER = "X-APIntake-Event"
DELIVERY_HEADER = "X-APIntake-Delivery"


class WebhookUrlNotAllowed(ValueError):
    """The URL is not an http(s) URL on a public host."""


class WebhookRetryable(Exception):
    """The receiver is down, slow or overloaded (connection error, timeout, 429, 5xx): try again later."""

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class WebhookRefused(Exception):
    """The receiver refused the request (another 4xx, a redirect) or the URL is not allowed: no retry."""

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


def check_webhook_url(url: str) -> None:
    """Refuse anything but http(s) to a public host on a valid port (SSRF): the one check every
    outbound connection uses (core.hostcheck). EVENTS_ALLOW_PRIVATE_HOSTS=1 allows private and
    loopback addresses."""
    try:
        check_url_allowed(
            url, allow_private=settings.EVENTS_ALLOW_PRIVATE_HOSTS, what="webhook", setting="EVENTS_ALLOW_PRIVATE_HOSTS"
        )
    except (UrlNotAllowed, HostNotAllowed, HostUnresolvable) as exc:
        raise WebhookUrlNotAllowed(str(exc)) from None


def signature(body: bytes, secret: str, timestamp: int) -> str:
    """The signature header's value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def slack_payload(payload: dict) -> dict:
    """A Slack incoming-webhook message for an event."""
    invoice = payload.get("invoice") or {}
    verbs = {
        "invoice.needs_review": "needs review",
        "invoice.approved": "was approved",
        "invoice.rejected": "was rejected",
        "invoice.exported": "was exported",
        "invoice.failed": "could not be read",
    }
    what = " ".join(filter(None, [invoice.get("seller_name"), invoice.get("invoice_number")])) or invoice.get("file")
    amount = (
        f" ({invoice['total_gross']} {invoice.get('currency') or ''})".replace(" )", ")")
        if invoice.get("total_gross")
        else ""
    )
    text = f"Invoice {invoice.get('invoice_id')} {what}{amount} {verbs.get(payload.get('event'), payload.get('event'))}"
    issues = invoice.get("issues") or []
    if payload.get("event") == "invoice.needs_review" and issues:
        text += ": " + "; ".join(f"{issue['code']}" for issue in issues[:5])
    if payload.get("event") == "invoice.failed" and invoice.get("error"):
        text += f": {invoice['error'][:200]}"
    if payload.get("url"):
        text += f" <{payload['url']}|open>"
    return {"text": text}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to an internal address the URL check never saw: refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise WebhookRefused(
            f"The receiver answered with a redirect (HTTP {code}) to {newurl[:200]}; redirects are not followed.",
            status=code,
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Sent:
    status: int
    body: str


def post(*, url: str, payload: dict, secret: str, event: str, delivery_id: int, slack: bool) -> Sent:
    """POST one signed request. Raises WebhookRetryable or WebhookRefused."""
    try:
        check_webhook_url(url)  # again at send time: DNS may have changed since the subscription was saved
    except WebhookUrlNotAllowed as exc:
        raise WebhookRefused(str(exc)) from None
    body = json.dumps(slack_payload(payload) if slack else payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "AP-Intake-events",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret, timestamp)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked above
    try:
        with _OPENER.open(request, timeout=settings.EVENTS_WEBHOOK_TIMEOUT) as response:
            return Sent(response.status, _read(response))
    except urllib.error.HTTPError as exc:
        answer = _read(exc)
        if exc.code == 429 or exc.code >= 500:
            raise WebhookRetryable(f"HTTP {exc.code} {exc.reason}", status=exc.code, body=answer) from None
        raise WebhookRefused(
            f"The receiver refused the webhook: HTTP {exc.code} {exc.reason}", status=exc.code, body=answer
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookRetryable(f"{type(reason).__name__}: {reason}") from None


def _read(response) -> str:
    try:
        return response.read(500).decode("utf-8", "replace")
    except Exception:  # the answer's body is only for the log
        return ""
