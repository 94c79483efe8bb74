"""Business events: signed webhooks delivered by a real worker (retried on 500, logged,
replayed), Slack-compatible bodies, the SSRF check at save and at send, no redirects,
and the daily review digest."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from core.actors import Actor
from core.models import TriggerSource
from events.models import EventDelivery, EventSubscription, ReviewDigest
from events.services import delivery_replay, event_publish, review_digest_send, subscription_save, webhook_deliver
from events.webhooks import WebhookRefused
from jobs.models import Job, JobExecution
from tests.invoices.review_support import needs_review_invoice
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.services]

SYSTEM = Actor(user=None, source=TriggerSource.COMMAND)


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each path from a script of status codes (the last repeats)."""

    def __init__(self, script: dict[str, list[int]]):
        self.script = {path: list(codes) for path, codes in script.items()}
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {key.lower(): value for key, value in self.headers.items()}
                receiver.requests.append({"path": self.path, "headers": headers, "body": body})
                codes = receiver.script.get(self.path, [404])
                code = codes.pop(0) if len(codes) > 1 else codes[0]
                self.send_response(code)
                if code in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:1/inside")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"no")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[dict]:
        return [request for request in self.requests if request["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver({"/hook": [500, 200], "/slack": [200], "/moved": [302]})
    yield server
    server.close()


def verify(request: dict, secret: str) -> dict:
    """What a receiver does: recompute the HMAC over "<timestamp>.<body>" and compare in constant time."""
    header = request["headers"]["x-apintake-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    assert parts["t"] == request["headers"]["x-apintake-timestamp"]
    assert abs(time.time() - int(parts["t"])) < 300
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    return json.loads(request["body"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_approval_is_delivered_signed_retried_on_500_logged_and_replayed(
    no_session_worker, receiver, settings, make_user, client_for
):
    settings.EVENTS_ALLOW_PRIVATE_HOSTS = True  # the receiver is on 127.0.0.1
    hook, secret = subscription_save(
        subscription=EventSubscription(name="erp", url=receiver.url("/hook"), events=["invoice.approved"]),
        actor=SYSTEM,
        secret="s3cret-for-erp",
    )
    slack, _ = subscription_save(
        subscription=EventSubscription(
            name="slack",
            url=receiver.url("/slack"),
            events=["invoice.approved", "invoice.rejected"],
            slack_compatible=True,
        ),
        actor=SYSTEM,
    )
    clerk = make_user("clerk", role="ap_clerk")
    invoice = needs_review_invoice(owner=clerk)

    worker = WorkerProcess(
        name="events",
        concurrency=1,
        env={"EVENTS_ALLOW_PRIVATE_HOSTS": "1", "EVENTS_WEBHOOK_BACKOFF": "0.3", "JOB_HEARTBEAT_SECONDS": "1"},
    ).start()
    try:
        response = client_for(clerk).post(f"/api/v1/invoices/{invoice.pk}/approve/", {}, format="json")
        assert response.status_code == 200  # answered before any receiver was called
        delivered = wait_for(
            lambda: (d := EventDelivery.objects.filter(subscription=hook).first()) and d.status == "delivered" and d,
            timeout=60,
            what="delivered",
        )
        wait_for(lambda: EventDelivery.objects.filter(subscription=slack, status="delivered").exists(), timeout=30)

        first, second = receiver.to("/hook")
        assert first["body"] == second["body"]  # the retry sends the same signed event
        body = verify(second, secret)
        assert body["event"] == "invoice.approved" and body["invoice"]["invoice_id"] == invoice.pk
        assert body["invoice"]["status"] == "approved"
        assert second["headers"]["x-apintake-event"] == "invoice.approved"
        assert second["headers"]["x-apintake-delivery"] == str(delivered.pk)
        assert (delivered.attempts, delivered.response_status) == (2, 200)
        job = Job.objects.get(pk=delivered.job_id)
        assert list(job.executions.order_by("attempt").values_list("outcome", flat=True)) == [
            JobExecution.Outcome.RETRY,
            JobExecution.Outcome.SUCCEEDED,
        ]
        assert "HTTP 500" in job.executions.order_by("attempt").first().error

        [slack_request] = receiver.to("/slack")
        text = json.loads(slack_request["body"])["text"]
        assert set(json.loads(slack_request["body"])) == {"text"}
        assert f"Invoice {invoice.pk}" in text and "was approved" in text

        again = delivery_replay(delivery=delivered, actor=SYSTEM, reason="the ERP lost it")
        wait_for(lambda: EventDelivery.objects.get(pk=again.pk).status == "delivered", timeout=30)
        assert len(receiver.to("/hook")) == 3 and verify(receiver.to("/hook")[2], secret) == body
    finally:
        worker.stop()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "file:///etc/hostname",
        "http://10.1.2.3/",
        "http://[::ffff:192.168.0.1]/",
        "https://8.8.8.8:70000/",
        "gopher://8.8.8.8/",
    ],
)
def test_an_internal_or_non_http_webhook_is_refused_at_save(settings, url):
    settings.EVENTS_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(ValidationError) as raised:
        subscription_save(subscription=EventSubscription(name="x", url=url, events=["invoice.approved"]), actor=SYSTEM)
    assert "url" in raised.value.message_dict
    assert not EventSubscription.objects.exists()


@pytest.mark.django_db
def test_checked_again_at_send_and_redirects_are_not_followed(settings, receiver):
    settings.EVENTS_ALLOW_PRIVATE_HOSTS = True
    subscription_save(
        subscription=EventSubscription(name="moved", url=receiver.url("/moved"), events=["invoice.failed"]),
        actor=SYSTEM,
    )
    invoice = needs_review_invoice()
    [delivery] = event_publish(event="invoice.failed", subject=invoice, payload={"invoice": {"invoice_id": 1}})
    with pytest.raises(WebhookRefused, match="redirect"):
        webhook_deliver(delivery=delivery, final_attempt=False)
    assert EventDelivery.objects.get(pk=delivery.pk).status == "failed"
    assert len(receiver.to("/moved")) == 1

    settings.EVENTS_ALLOW_PRIVATE_HOSTS = False  # saved while allowed; refused when sent now
    [delivery] = event_publish(event="invoice.failed", subject=invoice, payload={"invoice": {"invoice_id": 1}})
    with pytest.raises(WebhookRefused, match="loopback"):
        webhook_deliver(delivery=delivery, final_attempt=False)
    assert len(receiver.to("/moved")) == 1  # no request was made


@pytest.mark.django_db
def test_the_review_digest_tells_each_member_what_waits_once_a_day(make_user):
    from django.contrib.auth.models import Group

    clerk = make_user("clerk", role="ap_clerk")
    clerk.email = "clerk@example.com"
    clerk.save()
    make_user("quiet", role="ap_clerk")  # no email address: nothing sent
    invoice = needs_review_invoice()
    digest = ReviewDigest.objects.create(name="AP team", group=Group.objects.get(name="ap_clerk"))

    assert review_digest_send(digest=digest)["sent"] == 1
    [message] = mail.outbox
    assert message.to == ["clerk@example.com"] and "1 invoices wait for review" in message.subject
    assert f"#{invoice.pk} SupplierOfficialName Ltd" in message.body
    assert review_digest_send(digest=digest)["sent"] == 0 and len(mail.outbox) == 1  # once per day


@pytest.mark.django_db
def test_subscriptions_are_edited_in_the_admin_through_the_service(make_user, client, settings):
    from core.models import AuditEntry

    settings.EVENTS_ALLOW_PRIVATE_HOSTS = False
    client.force_login(make_user("root", superuser=True))
    refused = client.post(
        "/admin/events/eventsubscription/add/",
        {"name": "inside", "url": "http://127.0.0.1:6379/", "events": ["invoice.approved"], "enabled": "on"},
    )
    assert refused.status_code == 200 and b"loopback" in refused.content
    saved = client.post(
        "/admin/events/eventsubscription/add/",
        {
            "name": "erp",
            "url": "https://8.8.8.8/hook",
            "events": ["invoice.approved", "invoice.exported"],
            "enabled": "on",
        },
        follow=True,
    )
    assert saved.status_code == 200 and b"shown once" in saved.content
    subscription = EventSubscription.objects.get()
    assert subscription.events == ["invoice.approved", "invoice.exported"] and len(subscription.secret) >= 32
    assert (
        subscription.secret.encode()
        not in client.get(f"/admin/events/eventsubscription/{subscription.pk}/change/").content
    )
    assert AuditEntry.objects.filter(action="events.subscription_create").exists()


@pytest.mark.django_db
def test_the_pipeline_publishes_needs_review_failed_and_exported(settings):
    from invoices.exports import export_create, export_run
    from invoices.services import invoice_decide, invoice_import_sync

    settings.EVENTS_ALLOW_PRIVATE_HOSTS = True
    subscription_save(
        subscription=EventSubscription(
            name="all",
            url="http://127.0.0.1:9/",
            events=["invoice.needs_review", "invoice.failed", "invoice.exported", "invoice.rejected"],
        ),
        actor=SYSTEM,
    )
    invoice = needs_review_invoice()
    broken = invoice_import_sync(content=b"<Invoice>not an invoice", filename="broken.xml")
    assert broken.status == "failed"
    invoice_decide(invoice=invoice, approve=True, actor=SYSTEM)  # approved: nobody subscribed to that
    batch, _ = export_create(format="csv", actor=SYSTEM, invoices=type(invoice).objects.filter(pk=invoice.pk))
    export_run(batch=batch)
    deliveries = EventDelivery.objects.order_by("pk")
    assert [(d.event, d.subject_id) for d in deliveries] == [
        ("invoice.needs_review", str(invoice.pk)),
        ("invoice.failed", str(broken.pk)),
        ("invoice.exported", str(invoice.pk)),
    ]
    assert deliveries[2].payload["invoice"]["status"] == "exported"
    assert all(Job.objects.filter(pk=d.job_id, kind="events.deliver_webhook").exists() for d in deliveries)
