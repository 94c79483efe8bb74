"""OAuth2 access tokens for XOAUTH2 mailboxes (Gmail, Microsoft 365).

When a provider's client id and secret are configured and the mailbox holds a
refresh token, an access token about to expire is refreshed before login. A
provider may rotate the refresh token (Microsoft does): the new one is saved,
or the next refresh would fail (paperless-ngx #11341).
"""

from __future__ import annotations

from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone

from emailsync.errors import MailboxAuthError, MailboxTimeout
from emailsync.models import Mailbox

REFRESH_MARGIN = timedelta(seconds=120)


def provider_config(provider: str) -> dict | None:
    """Token URL and client credentials of a provider, or None if not configured."""
    config = settings.EMAILSYNC_OAUTH_PROVIDERS.get(provider)
    if not config or not config.get("client_id") or not config.get("client_secret"):
        return None
    return config


def access_token_for(mailbox: Mailbox) -> str:
    """The secret to log in with: the password, or a fresh OAuth2 access token."""
    if mailbox.auth != Mailbox.Auth.XOAUTH2:
        return mailbox.get_secret()
    config = provider_config(mailbox.oauth_provider)
    expires = mailbox.access_token_expires_at
    fresh_enough = mailbox.has_secret and expires is not None and expires > timezone.now() + REFRESH_MARGIN
    if fresh_enough or config is None or not mailbox.refresh_token_ciphertext:
        return mailbox.get_secret()
    return refresh_access_token(mailbox, config)


def refresh_access_token(mailbox: Mailbox, config: dict) -> str:
    """Ask the provider for a new access token and store it (and a rotated refresh token)."""
    data = {"client_id": config["client_id"], "client_secret": config["client_secret"],
            "refresh_token": mailbox.get_refresh_token(), "grant_type": "refresh_token"}
    if config.get("scope"):
        data["scope"] = config["scope"]
    try:
        response = requests.post(config["token_url"], data=data, timeout=settings.EMAILSYNC_TIMEOUT)
    except requests.Timeout as exc:
        raise MailboxTimeout(f"The {mailbox.oauth_provider} token endpoint did not answer in time.") from exc
    except requests.RequestException as exc:
        raise MailboxTimeout(f"The {mailbox.oauth_provider} token endpoint cannot be reached: {exc}") from exc
    if response.status_code != 200:
        reason = _error_of(response)
        raise MailboxAuthError(f"Refreshing the OAuth2 token failed ({response.status_code} {reason}). "
                               "Authorise the mailbox again and store the new refresh token.")
    payload = response.json()
    mailbox.set_secret(payload["access_token"])
    mailbox.access_token_expires_at = timezone.now() + timedelta(seconds=int(payload.get("expires_in", 3600)))
    if payload.get("refresh_token"):
        mailbox.set_refresh_token(payload["refresh_token"])
    mailbox.save(update_fields=["secret_ciphertext", "refresh_token_ciphertext", "access_token_expires_at",
                                "updated_at"])
    return payload["access_token"]


def _error_of(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    return str(body.get("error_description") or body.get("error") or response.reason)
