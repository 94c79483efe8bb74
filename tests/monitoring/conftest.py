"""Fixtures of the monitoring tests: a private Redis, an SMTP sink, a webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.redis_server import RedisServer, free_port

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture
def private_redis():
    """A redis-server of this test's own, which the test may stop and start."""
    server = RedisServer().start()
    yield server
    server.cleanup()


class SmtpSink:
    """Collects every message an SMTP client delivers (aiosmtpd on a free port)."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted"

    def subjects(self) -> list[str]:
        import email

        return [email.message_from_bytes(m.content)["Subject"] for m in self.messages]


@pytest.fixture
def smtp_sink(settings):
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    controller.stop()


class WebhookReceiver:
    """A local HTTP server that records each POST and whether its HMAC signature is valid."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict] = []
        self.responses: deque[int] = deque()  # status codes to answer with, then 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                offered = self.headers.get("X-APIntake-Signature", "")
                receiver.received.append(
                    {
                        "valid": hmac.compare_digest(expected, offered),
                        "event": self.headers.get("X-APIntake-Event"),
                        "payload": json.loads(body),
                    }
                )
                status = receiver.responses.popleft() if receiver.responses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[str]:
        return [entry["event"] for entry in self.received]


@pytest.fixture
def webhook_receiver(settings):
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    receiver.thread.start()
    settings.MONITORING_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MONITORING_WEBHOOK_BACKOFF = 0.05
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # the receiver listens on 127.0.0.1
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(autouse=True)
def _forget_health_memory():
    from monitoring.health import forget_remembered_results

    forget_remembered_results()
    yield
