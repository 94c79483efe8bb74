"""OAuth2 token refresh (against a local token endpoint) and `sync_mailbox --sync --json`."""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone

from emailsync.errors import MailboxAuthError
from emailsync.models import Mailbox
from emailsync.oauth import access_token_for
from tests.emailsync.messages import UBL, file_attachment, invoice_mail

pytestmark = [pytest.mark.django_db]


class TokenEndpoint(BaseHTTPRequestHandler):
    """Answers like Microsoft's token endpoint: a new access token and a rotated refresh token."""

    requests: list[dict] = []
    status = 200

    def do_POST(self):
        body = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        TokenEndpoint.requests.append({k: v[0] for k, v in body.items()})
        if TokenEndpoint.status == 200:
            payload = {
                "access_token": f"access-{len(TokenEndpoint.requests)}",
                "expires_in": 3600,
                "refresh_token": f"rotated-{len(TokenEndpoint.requests)}",
            }
        else:
            payload = {"error": "invalid_grant", "error_description": "AADSTS70008: token expired"}
        data = json.dumps(payload).encode()
        self.send_response(TokenEndpoint.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def token_endpoint(settings, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the local endpoint speaks plain http
    server = HTTPServer(("127.0.0.1", 0), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    TokenEndpoint.requests, TokenEndpoint.status = [], 200
    settings.EMAILSYNC_OAUTH_PROVIDERS = {
        "microsoft": {
            "token_url": f"http://127.0.0.1:{server.server_port}/token",
            "client_id": "client-1",
            "client_secret": "client-secret",
            "scope": "imap offline_access",
        }
    }
    yield TokenEndpoint
    server.shutdown()


def oauth_mailbox() -> Mailbox:
    mailbox = Mailbox(
        name="o365", host="outlook.office365.com", username="ap@example.com", auth="xoauth2", oauth_provider="microsoft"
    )
    mailbox.set_secret("expired-access")
    mailbox.set_refresh_token("refresh-0")
    mailbox.access_token_expires_at = timezone.now() - timedelta(minutes=1)
    mailbox.save()
    return mailbox


def test_expired_access_token_is_refreshed_and_the_rotated_refresh_token_saved(token_endpoint):
    mailbox = oauth_mailbox()

    token = access_token_for(mailbox)

    assert token == "access-1"
    [sent] = token_endpoint.requests
    assert sent["grant_type"] == "refresh_token" and sent["refresh_token"] == "refresh-0"
    assert sent["client_id"] == "client-1" and sent["scope"] == "imap offline_access"
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.get_secret() == "access-1" and stored.get_refresh_token() == "rotated-1"
    assert stored.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    assert access_token_for(stored) == "access-1"  # still fresh: no second request
    assert len(token_endpoint.requests) == 1


def test_refused_refresh_is_an_auth_error_a_person_must_fix(token_endpoint):
    token_endpoint.status = 400
    with pytest.raises(MailboxAuthError, match="AADSTS70008"):
        access_token_for(oauth_mailbox())


@pytest.mark.imap
def test_sync_mailbox_command_sync_json(settings, imap_user):
    settings.EMAILSYNC_CA_FILE = str(imap_user.server.ca_file)
    imap_user.server.append(imap_user.name, "INBOX", invoice_mail("UBL", [file_attachment(UBL)]))
    mailbox = Mailbox(
        name="cmd", host=imap_user.server.host, port=imap_user.server.port, username=imap_user.name, folders=["INBOX"]
    )
    mailbox.set_secret(imap_user.password)
    mailbox.save()
    out = io.StringIO()

    call_command("sync_mailbox", "cmd", "--sync", "--json", stdout=out, stderr=io.StringIO())

    summary = json.loads(out.getvalue())
    assert summary == {
        "mailbox": "cmd",
        "job_id": None,
        "status": "succeeded",
        "folders": 1,
        "messages_seen": 1,
        "messages_new": 1,
        "attachments": 1,
        "invoices_created": 1,
        "skipped": 0,
        "errors": 0,
    }
