"""/api/v1/mailboxes/: secrets are write-only and encrypted, users see their own,
syncs are one at a time per mailbox."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection

from core.models import AuditEntry
from emailsync.models import Mailbox
from jobs.models import Job
from jobs.services import job_enqueue

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def clerk(make_user):
    return make_user("clerk", role="ap_clerk")


def create(client, **overrides):
    body = {
        "name": "ap",
        "host": "127.0.0.1",
        "port": 993,
        "security": "ssl",
        "username": "ap@example.com",
        "secret": PASSWORD,
        "folders": ["INBOX", "Invoices"],
        "lookback_months": 6,
        **overrides,
    }
    return client.post("/api/v1/mailboxes/", body, format="json")


def test_secret_is_write_only_encrypted_and_audited(clerk, client_for):
    client = client_for(clerk)
    response = create(client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert "secret" not in body and body["has_secret"] is True
    assert PASSWORD not in json.dumps(client.get(f"/api/v1/mailboxes/{body['id']}/").json())
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_ciphertext FROM emailsync_mailbox WHERE id = %s", [body["id"]])
        stored = cursor.fetchone()[0]
    assert PASSWORD not in stored and stored.startswith("fernet:")
    assert Mailbox.objects.get(pk=body["id"]).get_secret() == PASSWORD
    entry = AuditEntry.objects.get(action="mailbox.create")
    assert entry.actor_label == "clerk" and PASSWORD not in json.dumps(entry.details)


def test_plain_imap_and_private_hosts_are_refused_by_default(clerk, client_for, settings):
    settings.EMAILSYNC_ALLOW_INSECURE = False
    plain = create(client_for(clerk), security="plain", port=143)
    assert plain.status_code == 400 and "EMAILSYNC_ALLOW_INSECURE" in json.dumps(plain.json())
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = False
    private = create(client_for(clerk), name="internal", host="127.0.0.1")
    assert private.status_code == 400 and "127.0.0.1" in json.dumps(private.json())


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_a_port_outside_1_to_65535_is_refused(clerk, client_for, port):
    response = create(client_for(clerk), name=f"port-{port}", port=port)
    assert response.status_code == 400 and "port" in response.json()
    assert "65535" in json.dumps(response.json())


def test_users_see_only_their_own_mailboxes(clerk, make_user, client_for):
    mailbox_id = create(client_for(clerk)).json()["id"]
    other = client_for(make_user("other", role="ap_clerk"))
    assert other.get(f"/api/v1/mailboxes/{mailbox_id}/").status_code == 404
    assert other.post(f"/api/v1/mailboxes/{mailbox_id}/sync/", {}, format="json").status_code == 404
    assert other.get("/api/v1/mailboxes/").json()["results"] == []
    viewer = client_for(make_user("viewer", role="viewer"))
    assert create(viewer, name="x").status_code == 403


def test_sync_is_202_then_409_with_the_active_job(clerk, client_for):
    client = client_for(clerk)
    mailbox_id = create(client).json()["id"]

    first = client.post(f"/api/v1/mailboxes/{mailbox_id}/sync/", {"months": 3, "folders": ["INBOX"]}, format="json")
    second = client.post(f"/api/v1/mailboxes/{mailbox_id}/sync/", {}, format="json")

    assert first.status_code == 202
    assert first.json()["params"] == {"mailbox_id": mailbox_id, "months": 3, "folders": ["INBOX"]}
    assert second.status_code == 409 and second.json()["id"] == first.json()["id"]
    status = client.get(f"/api/v1/mailboxes/{mailbox_id}/sync-status/").json()
    assert status["active"] is True and status["job"]["id"] == first.json()["id"]
    cancelled = client.post(f"/api/v1/mailboxes/{mailbox_id}/cancel-sync/", {}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/mailboxes/{mailbox_id}/cancel-sync/", {}, format="json").status_code == 409


def test_bad_sync_payload_gets_field_errors(clerk, client_for):
    client = client_for(clerk)
    mailbox_id = create(client).json()["id"]
    response = client.post(f"/api/v1/mailboxes/{mailbox_id}/sync/", {"months": 0, "folders": "INBOX"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"months", "folders", "detail", "code"}


def test_add_mailbox_command_reads_the_secret_from_the_environment(monkeypatch, settings):
    monkeypatch.setenv("AP_MAILBOX_PASSWORD", PASSWORD)
    call_command(
        "add_mailbox",
        "--name",
        "cli",
        "--host",
        "127.0.0.1",
        "--port",
        "993",
        "--security",
        "ssl",
        "--username",
        "cli@example.com",
        "--password-env",
        "AP_MAILBOX_PASSWORD",
        "--folders",
        "INBOX,Bills",
        "--months",
        "2",
    )
    mailbox = Mailbox.objects.get(name="cli")
    assert mailbox.get_secret() == PASSWORD
    assert mailbox.folder_list == ["INBOX", "Bills"] and mailbox.lookback_months == 2
    call_command(
        "add_mailbox",
        "--name",
        "cli",
        "--host",
        "127.0.0.1",
        "--port",
        "994",
        "--security",
        "ssl",
        "--username",
        "cli@example.com",
        "--password-env",
        "AP_MAILBOX_PASSWORD",
    )
    assert Mailbox.objects.get(name="cli").port == 994 and Mailbox.objects.count() == 1


def test_sync_all_queues_one_job_per_enabled_mailbox():
    from emailsync.services import mailboxes_sync_all

    for name, enabled in (("a", True), ("b", True), ("c", False)):
        Mailbox.objects.create(name=name, host="imap.example.com", username=name, enabled=enabled)
    active = job_enqueue("emailsync.sync_mailbox", {"mailbox_id": Mailbox.objects.get(name="a").pk}, countdown=300)

    assert mailboxes_sync_all() == {"queued": 1, "already_active": 1}
    assert Job.objects.filter(kind="emailsync.sync_mailbox").count() == 2
    assert Job.objects.filter(kind="emailsync.sync_mailbox").exclude(pk=active.pk).get().expires_at is not None
