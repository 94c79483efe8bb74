"""Alert webhooks cannot reach inside our network: refused when a rule is saved, when a
backup is restored, and when the webhook is sent."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from monitoring.alerts import alerts_evaluate
from monitoring.backup import config_backup_data, config_restore
from monitoring.models import AlertNotification, AlertRule

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/hostname",
        "http://127.0.0.1:8000/",
        "http://169.254.169.254/latest",
        "http://[64:ff9b::7f00:1]/",
        "http://8.8.8.8:0/",
    ],
)
def test_a_rule_with_an_internal_webhook_is_refused_at_save(url, settings):
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    rule = AlertRule(name="beat", kind="beat_stale", email_to="none", webhook_url=url)
    with pytest.raises(ValidationError) as raised:
        rule.full_clean()
    assert "webhook_url" in raised.value.message_dict


def test_the_admin_form_refuses_an_internal_webhook(make_user, client, settings):
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    client.force_login(make_user("root", superuser=True))
    response = client.post(
        "/admin/monitoring/alertrule/add/",
        {
            "name": "beat",
            "kind": "beat_stale",
            "severity": "warning",
            "window_minutes": 60,
            "min_jobs": 5,
            "email_to": "none",
            "webhook_url": "http://127.0.0.1:6379/",
            "enabled": "on",
        },
    )
    assert response.status_code == 200 and b"loopback" in response.content
    assert not AlertRule.objects.filter(name="beat").exists()


def test_restore_refuses_internal_webhooks_and_mailbox_hosts(settings):
    from emailsync.models import Mailbox

    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    settings.EMAILSYNC_ALLOW_PRIVATE_HOSTS = False
    data = config_backup_data()
    data["alert_rules"] = [
        {"name": "exfiltrate", "kind": "beat_stale", "email_to": "none", "webhook_url": "file:///etc/hostname"},
        {"name": "metadata", "kind": "beat_stale", "email_to": "none", "webhook_url": "http://169.254.169.254/"},
        {"name": "fine", "kind": "beat_stale", "email_to": "none", "webhook_url": "https://8.8.8.8/hook"},
    ]
    data["mailboxes"] = [{"name": "inside", "host": "10.0.0.5", "username": "u", "folders": ["INBOX"]}]
    summary = config_restore(data=json.loads(json.dumps(data)))
    assert list(
        AlertRule.objects.filter(name__in=["exfiltrate", "metadata", "fine"]).values_list("name", flat=True)
    ) == ["fine"]
    assert not Mailbox.objects.filter(name="inside").exists()
    skipped = "\n".join(summary.skipped)
    assert "exfiltrate" in skipped and "http:// or https://" in skipped
    assert "metadata" in skipped and "link-local" in skipped
    assert "inside" in skipped and "private" in skipped


class _Recorder:
    def __init__(self, status=200, location=None):
        self.hits = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.hits.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_internal_webhook_already_in_the_database_is_refused_at_send(settings):
    settings.MONITORING_WEBHOOK_SECRET = "s3cret"
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    settings.MONITORING_WEBHOOK_BACKOFF = 0.01
    inside = _Recorder()
    try:
        AlertRule.objects.all().delete()
        AlertRule.objects.create(name="beat", kind="beat_stale", email_to="none", webhook_url=inside.url)
        AlertRule.objects.create(name="file", kind="beat_stale", email_to="none", webhook_url="file:///etc/hostname")
        alerts_evaluate()
    finally:
        inside.close()
    assert inside.hits == []
    failed = AlertNotification.objects.filter(channel="webhook").order_by("target")
    assert [n.status for n in failed] == ["failed", "failed"]
    assert "loopback" in failed.get(target=inside.url).error
    assert "http:// or https://" in failed.get(target="file:///etc/hostname").error


def test_a_redirect_is_not_followed(settings):
    settings.MONITORING_WEBHOOK_SECRET = "s3cret"
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # the receiver runs on this machine
    settings.MONITORING_WEBHOOK_RETRIES = 0
    target = _Recorder()
    bouncer = _Recorder(status=302, location=target.url)
    try:
        AlertRule.objects.all().delete()
        AlertRule.objects.create(name="beat", kind="beat_stale", email_to="none", webhook_url=bouncer.url)
        alerts_evaluate()
    finally:
        bouncer.close()
        target.close()
    assert len(bouncer.hits) == 1 and target.hits == []
    notification = AlertNotification.objects.get(channel="webhook")
    assert notification.status == "failed" and "redirect" in notification.error
