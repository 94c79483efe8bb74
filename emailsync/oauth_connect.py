"""Connect a Gmail or Microsoft 365 mailbox with OAuth: the authorization code flow with PKCE and state.

`oauth_start` records the attempt (state, PKCE verifier encrypted, who, where to
come back) and returns the provider's authorization URL. The provider sends the
browser back to the callback, and `oauth_finish` checks the state (known, not
used, not expired, same user), exchanges the code with the verifier
(requests-oauthlib), finds the account's address in the id token (else the
userinfo endpoint), and creates or reconnects the mailbox with the tokens stored
encrypted. Any refusal raises OAuthConnectError with a message a person can act
on, and nothing is stored.

The id token comes straight from the provider's token endpoint over TLS, in
answer to our own authenticated request, so its claims are read without
checking the signature (OpenID Connect Core 3.1.3.7); the audience must be our
client id.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import jwt
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from core.actors import Actor, require_permission
from core.audit import audit_record
from emailsync.models import Mailbox, OAuthAuthorization
from emailsync.oauth import provider_config

PROVIDERS = (Mailbox.OAuthProvider.GOOGLE, Mailbox.OAuthProvider.MICROSOFT)


class OAuthConnectError(Exception):
    """Connecting the account failed; the message says why and what to do."""


def oauth_start(
    *, actor: Actor, provider: str, redirect_uri: str, mailbox: Mailbox | None = None, source: str = "api"
) -> str:
    """Begin connecting a `provider` account (or reconnecting `mailbox`); returns the URL to send the user to."""
    require_permission(actor.user, "emailsync.change_mailbox" if mailbox else "emailsync.add_mailbox")
    if provider not in PROVIDERS:
        raise OAuthConnectError(f"Unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}.")
    config = provider_config(provider)
    if config is None:
        name = provider.upper()
        raise OAuthConnectError(
            f"{provider.title()} is not configured: set OAUTH_{name}_CLIENT_ID and OAUTH_{name}_CLIENT_SECRET."
        )
    if mailbox is not None and mailbox.oauth_provider and mailbox.oauth_provider != provider:
        raise OAuthConnectError(f"Mailbox {mailbox} is a {mailbox.get_oauth_provider_display()} account.")
    session = OAuth2Session(client_id=config["client_id"], redirect_uri=redirect_uri, scope=config["scope"].split())
    verifier = session._client.create_code_verifier(64)
    challenge = session._client.create_code_challenge(verifier, "S256")
    state = secrets.token_urlsafe(32)
    url, _state = session.authorization_url(
        config["authorize_url"],
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256",
        **config.get("authorize_params", {}),
    )
    # Attempts nobody finished are of no use after a day (a later callback is "unknown" either way).
    OAuthAuthorization.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)).delete()
    attempt = OAuthAuthorization(
        state=state, provider=provider, redirect_uri=redirect_uri, user=actor.user, mailbox=mailbox, source=source
    )
    attempt.set_code_verifier(verifier)
    attempt.save()
    return url


def oauth_finish(
    *, actor: Actor, state: str, code: str = "", error: str = "", error_description: str = ""
) -> tuple[Mailbox, bool]:
    """Finish a connect from the provider's redirect; returns (mailbox, created)."""
    if not state:
        raise OAuthConnectError("The provider's answer has no state: start connecting the account again.")
    with transaction.atomic():
        # Claimed under a row lock and marked used at once: a second callback with the same state
        # (a reload, a replay) is refused even while the first is still exchanging the code.
        attempt = OAuthAuthorization.objects.select_for_update().filter(state=state).first()
        if attempt is None or attempt.used_at is not None:
            raise OAuthConnectError(
                "This sign-in link is unknown or was already used: start connecting the account again."
            )
        if attempt.user_id != getattr(actor.user, "pk", None):
            raise OAuthConnectError("This sign-in was started by another user: start connecting the account again.")
        attempt.used_at = timezone.now()
        attempt.save(update_fields=["used_at"])
    if attempt.created_at < timezone.now() - timedelta(seconds=settings.OAUTH_STATE_TTL_SECONDS):
        raise OAuthConnectError("The sign-in took too long and expired: start connecting the account again.")
    if error:
        detail = f" ({error_description})" if error_description else ""
        raise OAuthConnectError(f"The provider did not grant access: {error}{detail}. Nothing was stored.")
    if not code:
        raise OAuthConnectError("The provider's answer has no authorization code. Nothing was stored.")
    config = provider_config(attempt.provider)
    if config is None:
        raise OAuthConnectError(f"{attempt.provider.title()} is not configured any more.")
    token = _exchange(attempt, config, code)
    username = _account_address(config, token)
    return _store(actor, attempt, config, token, username)


def _exchange(attempt: OAuthAuthorization, config: dict, code: str) -> dict:
    session = OAuth2Session(client_id=config["client_id"], redirect_uri=attempt.redirect_uri, state=attempt.state)
    try:
        token = session.fetch_token(
            config["token_url"],
            code=code,
            client_secret=config["client_secret"],
            code_verifier=attempt.get_code_verifier(),
            include_client_id=True,
            timeout=settings.EMAILSYNC_TIMEOUT,
        )
    except OAuth2Error as exc:
        raise OAuthConnectError(
            f"The provider refused the sign-in ({exc.error}: {exc.description or 'no detail'}). "
            "Nothing was stored; start connecting the account again."
        ) from exc
    except requests.RequestException as exc:
        raise OAuthConnectError(f"The provider's token endpoint cannot be reached: {exc}. Nothing was stored.") from exc
    except ValueError as exc:
        raise OAuthConnectError(f"The provider's answer is not a token: {exc}. Nothing was stored.") from exc
    if not token.get("refresh_token"):
        raise OAuthConnectError(
            "The provider gave no refresh token, so the mailbox could not stay connected. "
            "Remove the app's access in the account's security settings and connect again."
        )
    return token


def _account_address(config: dict, token: dict) -> str:
    """The account's e-mail address: from the id token (audience checked), else the userinfo endpoint."""
    if token.get("id_token"):
        try:
            claims = jwt.decode(
                token["id_token"],
                options={"verify_signature": False, "verify_aud": True, "verify_exp": True},
                audience=config["client_id"],
                algorithms=["RS256", "HS256", "ES256"],
            )
        except jwt.PyJWTError as exc:
            raise OAuthConnectError(f"The provider's id token cannot be used: {exc}. Nothing was stored.") from exc
        address = claims.get("email") or claims.get("preferred_username") or claims.get("upn")
        if address:
            return str(address)
    if config.get("userinfo_url"):
        try:
            response = requests.get(
                config["userinfo_url"],
                timeout=settings.EMAILSYNC_TIMEOUT,
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            response.raise_for_status()
            address = response.json().get("email")
        except (requests.RequestException, ValueError) as exc:
            raise OAuthConnectError(f"The provider's userinfo endpoint failed: {exc}. Nothing was stored.") from exc
        if address:
            return str(address)
    raise OAuthConnectError(
        "The provider did not say which e-mail address was connected (ask for the 'openid "
        "email' scopes). Nothing was stored."
    )


def _store(actor: Actor, attempt: OAuthAuthorization, config: dict, token: dict, username: str) -> tuple[Mailbox, bool]:
    mailbox = attempt.mailbox
    if mailbox is None:  # connecting an account again that is already here reconnects it
        mailbox = Mailbox.objects.filter(
            oauth_provider=attempt.provider, username__iexact=username, owner=attempt.user
        ).first()
    if mailbox is not None and mailbox.username.lower() != username.lower():
        raise OAuthConnectError(
            f"You signed in as {username}, but mailbox {mailbox} is {mailbox.username}. "
            "Sign in with that account. Nothing was stored."
        )
    created = mailbox is None
    expires_at = timezone.now() + timedelta(seconds=int(token.get("expires_in") or 3600))
    with transaction.atomic():
        if created:
            mailbox = Mailbox(
                name=_free_name(f"{attempt.get_provider_display().split(' ')[0]}: {username}"),
                host=config["imap_host"],
                port=config["imap_port"],
                security=Mailbox.Security.SSL,
                username=username,
                folders=["INBOX"],
                owner=attempt.user,
            )
        mailbox.auth, mailbox.oauth_provider = Mailbox.Auth.XOAUTH2, attempt.provider
        mailbox.set_secret(token["access_token"])
        mailbox.set_refresh_token(token["refresh_token"])
        mailbox.access_token_expires_at = expires_at
        mailbox.needs_attention, mailbox.reconnect_required, mailbox.last_error = False, False, ""
        mailbox.save()
        audit_record(
            actor=actor,
            action="mailbox.oauth_connect" if created else "mailbox.oauth_reconnect",
            target=mailbox,
            details={"provider": attempt.provider, "username": username},
        )
    return mailbox, created


def _free_name(name: str) -> str:
    candidate, number = name[:100], 2
    while Mailbox.objects.filter(name=candidate).exists():
        candidate = f"{name[:94]} ({number})"
        number += 1
    return candidate
