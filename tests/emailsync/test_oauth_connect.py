"""Connect Gmail / Microsoft 365 with OAuth, for real: a local provider (authorize, token, userinfo,
introspection) and a Dovecot that checks every XOAUTH2 login against that provider's introspection.

connect -> sync -> the access token expires -> refresh -> sync again; a revoked grant fails the sync
once, flags the mailbox for reconnecting and raises the alert; bad callbacks store nothing.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from core.models import AuditEntry
from emailsync.errors import MailboxAuthError
from emailsync.models import Mailbox, OAuthAuthorization
from emailsync.services import mailbox_sync, mailboxes_sync_all
from invoices.models import Invoice
from monitoring.alerts import alerts_evaluate
from monitoring.models import Alert, AlertStatus
from tests.emailsync.mailboxes import no_progress
from tests.emailsync.messages import CII, UBL, file_attachment, invoice_mail

pytestmark = [pytest.mark.imap, pytest.mark.django_db]

CALLBACK = "/api/v1/mailboxes/oauth/callback/"


@pytest.fixture
def provider(oauth_provider, dovecot_oauth, settings, monkeypatch):
    """Both providers point at the local one; their IMAP host at the OAuth-checking Dovecot."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the local provider speaks plain http
    oauth_provider.deny_with = None
    settings.EMAILSYNC_CA_FILE = str(dovecot_oauth.ca_file)
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = True
    config = {
        "client_id": oauth_provider.client_id,
        "client_secret": oauth_provider.client_secret,
        "authorize_url": f"{oauth_provider.url}/authorize",
        "token_url": f"{oauth_provider.url}/token",
        "userinfo_url": f"{oauth_provider.url}/userinfo",
        "scope": "openid email https://mail.google.com/",
        "imap_host": dovecot_oauth.host,
        "imap_port": dovecot_oauth.port,
        "authorize_params": {},
    }
    settings.EMAILSYNC_OAUTH_PROVIDERS = {
        "google": config,
        "microsoft": {
            **config,
            "scope": "openid email https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        },
    }
    return oauth_provider


@pytest.fixture
def account(provider, dovecot_oauth):
    """A mail account on the OAuth Dovecot, signed in at the provider."""
    address = f"ap-{secrets.token_hex(4)}@corp.example"
    dovecot_oauth.add_user(address, "append-only-password")  # the test's own appends log in with it
    provider.login_as = address
    return address


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def authorize(provider, authorization_url: str) -> str:
    """The browser's trip to the provider: returns the callback path and query it is sent back to."""
    answer = requests.get(authorization_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = urllib.parse.urlsplit(answer.headers["Location"])
    return f"{location.path}?{location.query}"


def connect(client, provider, **start) -> tuple[dict, str]:
    started = client.post("/api/v1/mailboxes/oauth/start/", {"provider": "google", **start}, format="json")
    assert started.status_code == 200, started.content
    callback = authorize(provider, started.json()["authorization_url"])
    return client.get(callback).json(), callback


def test_connect_sync_expire_refresh_sync_revoke_alert_reconnect(provider, account, dovecot_oauth, clerk, client_for):
    client = client_for(clerk)
    started = client.post("/api/v1/mailboxes/oauth/start/", {"provider": "google"}, format="json").json()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started["authorization_url"]).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == f"http://testserver{CALLBACK}" and len(query["state"]) > 30
    assert "https://mail.google.com/" in query["scope"]

    connected = client.get(authorize(provider, started["authorization_url"]))

    assert connected.status_code == 200, connected.content
    body = connected.json()
    assert body["created"] is True and body["mailbox"]["username"] == account
    mailbox = Mailbox.objects.get(pk=body["mailbox"]["id"])
    assert (mailbox.auth, mailbox.oauth_provider, mailbox.owner) == ("xoauth2", "google", clerk)
    assert mailbox.host == dovecot_oauth.host and mailbox.port == dovecot_oauth.port
    issued = list(provider.access_tokens)
    assert mailbox.get_secret() == issued[-1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_ciphertext, refresh_token_ciphertext FROM emailsync_mailbox WHERE id = %s", [mailbox.pk]
        )
        stored = cursor.fetchone()
    assert all(value.startswith("fernet:") for value in stored) and issued[-1] not in stored[0]
    assert issued[-1] not in json.dumps(body)
    assert AuditEntry.objects.filter(action="mailbox.oauth_connect", actor_label="clerk").exists()

    # Sync over real XOAUTH2: Dovecot asks the provider whether the token is active.
    dovecot_oauth.append(account, "INBOX", invoice_mail("Invoice 1", [file_attachment(UBL)]))
    before = provider.introspections
    assert mailbox_sync(mailbox=mailbox, progress=no_progress)["invoices_created"] == 1
    assert provider.introspections > before

    # The access token expires: the next sync refreshes it first (the refresh token rotates) and goes on.
    provider.expire_access_tokens()
    Mailbox.objects.filter(pk=mailbox.pk).update(access_token_expires_at=timezone.now() - timedelta(seconds=1))
    old_refresh = Mailbox.objects.get(pk=mailbox.pk).get_refresh_token()
    dovecot_oauth.append(account, "INBOX", invoice_mail("Invoice 2", [file_attachment(CII)]))
    mailbox.refresh_from_db()
    assert mailbox_sync(mailbox=mailbox, progress=no_progress)["invoices_created"] == 1
    mailbox.refresh_from_db()
    assert mailbox.get_secret() != issued[-1] and mailbox.get_refresh_token() != old_refresh
    assert mailbox.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    assert Invoice.objects.filter(source="email").count() == 2

    # The grant is revoked: the sync fails once, the mailbox says "reconnect", the alert fires,
    # and the schedule stops trying.
    provider.revoke(account)
    with pytest.raises(MailboxAuthError):
        mailbox_sync(mailbox=mailbox, progress=no_progress)
    mailbox.refresh_from_db()
    assert mailbox.needs_attention and mailbox.reconnect_required
    assert "access token" in mailbox.last_error
    assert client.get(f"/api/v1/mailboxes/{mailbox.pk}/").json()["reconnect_required"] is True
    alerts_evaluate()
    alert = Alert.objects.get(key=f"mailbox:{mailbox.pk}", status=AlertStatus.FIRING)
    assert "reconnect its Google (Gmail) account" in alert.message
    assert mailboxes_sync_all() == {"queued": 0, "already_active": 0}

    # Reconnect: the same mailbox gets new tokens, syncs again, and the alert resolves.
    again, _ = connect(client, provider, mailbox=mailbox.pk)
    assert again["created"] is False and again["mailbox"]["id"] == mailbox.pk
    mailbox.refresh_from_db()
    assert not mailbox.reconnect_required and not mailbox.needs_attention
    assert mailbox_sync(mailbox=mailbox, progress=no_progress)["messages_new"] == 0
    alerts_evaluate()
    assert Alert.objects.get(key=f"mailbox:{mailbox.pk}").status == AlertStatus.RESOLVED


def test_a_refused_refresh_asks_for_a_reconnect(provider, account, clerk, client_for):
    body, _ = connect(client_for(clerk), provider)
    mailbox = Mailbox.objects.get(pk=body["mailbox"]["id"])
    provider.revoke(account)
    Mailbox.objects.filter(pk=mailbox.pk).update(access_token_expires_at=timezone.now() - timedelta(seconds=1))
    mailbox.refresh_from_db()

    with pytest.raises(MailboxAuthError, match=r"invalid_grant.*Reconnect the Google"):
        mailbox_sync(mailbox=mailbox, progress=no_progress)

    mailbox.refresh_from_db()
    assert mailbox.reconnect_required and "revoked" in mailbox.last_error
    # Storing new credentials by hand also clears the prompt.
    from core.actors import Actor
    from emailsync.services import mailbox_save

    mailbox_save(actor=Actor(user=None, source="command"), mailbox=mailbox, secret="pasted-access-token")
    mailbox.refresh_from_db()
    assert not mailbox.reconnect_required and not mailbox.needs_attention


def test_bad_callbacks_store_nothing(provider, account, clerk, make_user, client_for):
    client = client_for(clerk)

    wrong_state = client.get(f"{CALLBACK}?state=forged&code=whatever")
    assert wrong_state.status_code == 400 and "unknown or was already used" in wrong_state.json()["detail"]

    body, callback = connect(client, provider)  # a good one, to have a used code
    assert body["created"] is True
    replay = client.get(callback)
    assert replay.status_code == 400 and "already used" in replay.json()["detail"]
    # A fresh state with the code already used: the provider refuses it.
    started = client.post("/api/v1/mailboxes/oauth/start/", {"provider": "google"}, format="json").json()
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started["authorization_url"]).query))["state"]
    used_code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    reused = client.get(f"{CALLBACK}?state={state}&code={used_code}")
    assert reused.status_code == 400
    assert "invalid_grant: The authorization code was already used." in reused.json()["detail"]

    provider.deny_with = "access_denied"
    started = client.post("/api/v1/mailboxes/oauth/start/", {"provider": "microsoft"}, format="json").json()
    denied = client.get(authorize(provider, started["authorization_url"]))
    assert denied.status_code == 400
    assert "did not grant access: access_denied (The user declined.)" in denied.json()["detail"]
    provider.deny_with = None

    started = client.post("/api/v1/mailboxes/oauth/start/", {"provider": "google"}, format="json").json()
    someone_else = client_for(make_user("other", role="ap_clerk"))
    stolen = someone_else.get(authorize(provider, started["authorization_url"]))
    assert stolen.status_code == 400 and "another user" in stolen.json()["detail"]

    assert Mailbox.objects.count() == 1  # only the one good connect
    assert Mailbox.objects.get().username == account


def test_start_refuses_unknown_or_unconfigured_providers_and_viewers(provider, clerk, make_user, client_for, settings):
    client = client_for(clerk)
    assert client.post("/api/v1/mailboxes/oauth/start/", {"provider": "yahoo"}, format="json").status_code == 400
    settings.EMAILSYNC_OAUTH_PROVIDERS = {
        **settings.EMAILSYNC_OAUTH_PROVIDERS,
        "microsoft": {**settings.EMAILSYNC_OAUTH_PROVIDERS["microsoft"], "client_secret": ""},
    }
    unconfigured = client.post("/api/v1/mailboxes/oauth/start/", {"provider": "microsoft"}, format="json")
    assert unconfigured.status_code == 400 and "OAUTH_MICROSOFT_CLIENT_SECRET" in unconfigured.json()["detail"]
    viewer = client_for(make_user("viewer", role="viewer"))
    assert viewer.post("/api/v1/mailboxes/oauth/start/", {"provider": "google"}, format="json").status_code == 403
    assert OAuthAuthorization.objects.count() == 0
    assert client_for(clerk).__class__  # the anonymous door:
    from rest_framework.test import APIClient

    assert APIClient().post("/api/v1/mailboxes/oauth/start/", {"provider": "google"}, format="json").status_code in (
        401,
        403,
    )


def test_admin_connect_buttons_round_trip_and_reconnect_prompt(provider, account, make_user, client):
    admin_user = make_user("boss", superuser=True)
    client.force_login(admin_user)
    listing = client.get("/admin/emailsync/mailbox/").content.decode()
    assert "Connect Google account" in listing and "Connect Microsoft account" in listing

    to_provider = client.get("/admin/emailsync/mailbox/oauth/microsoft/connect/")
    assert to_provider.status_code == 302 and to_provider["Location"].startswith(provider.url)
    back = client.get(authorize(provider, to_provider["Location"]))
    mailbox = Mailbox.objects.get(username=account)
    assert back.status_code == 302 and back["Location"].endswith(f"/admin/emailsync/mailbox/{mailbox.pk}/change/")
    assert mailbox.oauth_provider == "microsoft"

    Mailbox.objects.filter(pk=mailbox.pk).update(
        needs_attention=True, reconnect_required=True, last_error="rejected the access token"
    )
    page = client.get(f"/admin/emailsync/mailbox/{mailbox.pk}/change/").content.decode()
    assert 'id="reconnect-prompt"' in page and f"/oauth/microsoft/connect/?mailbox={mailbox.pk}" in page

    provider.deny_with = "access_denied"
    refused = client.get(
        authorize(
            provider, client.get(f"/admin/emailsync/mailbox/oauth/microsoft/connect/?mailbox={mailbox.pk}")["Location"]
        )
    )
    provider.deny_with = None
    assert refused.status_code == 302
    assert "access_denied" in client.get(refused["Location"]).content.decode()
