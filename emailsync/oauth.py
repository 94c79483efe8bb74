"""OAuth2 access tokens for XOAUTH2 mailboxes (Gmail, Microsoft 365).

When a provider's client id and secret are configured and the mailbox holds a
refresh token, an access token about to expire is refreshed before login
(requests-oauthlib). A provider may rotate the refresh token (Microsoft does):
the new one is saved, or the next refresh would fail (paperless-ngx #11341).
A refused refresh (revoked, expired grant) marks the mailbox for reconnecting.
"""

from __future__ import annotations

from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from emailsync.errors import MailboxAuthError, MailboxTimeout
from emailsync.models import Mailbox

REFRESH_MARGIN = timedelta(seconds=120)


def provider_config(provider: str) -> dict | None:
    """Endpoints, scopes and client credentials of a provider, or None if not configured."""
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
    session = OAuth2Session(client_id=config["client_id"], scope=(config.get("scope") or "").split() or None)
    try:
        token = session.refresh_token(
            config["token_url"],
            refresh_token=mailbox.get_refresh_token(),
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            timeout=settings.EMAILSYNC_TIMEOUT,
        )
    except requests.Timeout as exc:
        raise MailboxTimeout(f"The {mailbox.oauth_provider} token endpoint did not answer in time.") from exc
    except requests.RequestException as exc:
        raise MailboxTimeout(f"The {mailbox.oauth_provider} token endpoint cannot be reached: {exc}") from exc
    except OAuth2Error as exc:
        reason = f"{exc.status_code or ''} {exc.error}: {exc.description or ''}".strip()
        raise MailboxAuthError(
            f"Refreshing the OAuth2 token failed ({reason}). Reconnect the "
            f"{mailbox.get_oauth_provider_display() or 'OAuth'} account."
        ) from exc
    except ValueError as exc:  # not a token response at all (an HTML error page)
        raise MailboxAuthError(f"Refreshing the OAuth2 token failed: the answer was not a token ({exc}).") from exc
    mailbox.set_secret(token["access_token"])
    mailbox.access_token_expires_at = timezone.now() + timedelta(seconds=int(token.get("expires_in") or 3600))
    if token.get("refresh_token"):
        mailbox.set_refresh_token(token["refresh_token"])
    mailbox.save(
        update_fields=["secret_ciphertext", "refresh_token_ciphertext", "access_token_expires_at", "updated_at"]
    )
    return token["access_token"]
