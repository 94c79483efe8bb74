"""An over-size upload is refused while it streams: a JSON 413, no file stored, no row."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from invoices.models import Invoice

pytestmark = [pytest.mark.services, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def _stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()]


def _upload(client, *files):
    return client.post("/api/v1/invoices/", {"files": list(files)}, format="multipart")


def test_a_file_over_the_limit_is_refused_while_streaming(make_user, client_for, media):
    client = client_for(make_user("alice", role="ap_clerk"))
    big = SimpleUploadedFile("big.pdf", b"%PDF-1.7\n" + b"0" * (3 * MIB), content_type="application/pdf")
    with override_settings(INVOICE_MAX_FILE_BYTES=1 * MIB):
        response = _upload(client, big)
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert "big.pdf" in response.json()["detail"] and "1.0 MiB" in response.json()["detail"]
    assert not Invoice.objects.exists()
    assert _stored_files(media) == []


def test_one_over_size_file_refuses_the_whole_request(make_user, client_for, media):
    client = client_for(make_user("alice", role="ap_clerk"))
    small = SimpleUploadedFile("small.xml", b"<Invoice/>", content_type="application/xml")
    big = SimpleUploadedFile("big.xml", b"<a>" + b"x" * (2 * MIB) + b"</a>", content_type="application/xml")
    with override_settings(INVOICE_MAX_FILE_BYTES=1 * MIB):
        response = _upload(client, small, big)
    assert response.status_code == 413
    assert not Invoice.objects.exists() and _stored_files(media) == []


def test_a_request_declared_over_the_request_limit_is_refused_unread(make_user, client_for, media):
    client = client_for(make_user("alice", role="ap_clerk"))
    files = [SimpleUploadedFile(f"part{n}.xml", b"<a>" + b"x" * (MIB // 2) + b"</a>") for n in range(4)]
    with override_settings(INVOICE_MAX_FILE_BYTES=1 * MIB, INVOICE_UPLOAD_MAX_REQUEST_BYTES=1 * MIB):
        response = _upload(client, *files)
    assert response.status_code == 413
    assert "one request may carry" in response.json()["detail"] or "limit is 1.0 MiB" in response.json()["detail"]
    assert not Invoice.objects.exists() and _stored_files(media) == []


def test_a_file_within_the_limit_is_still_accepted(make_user, client_for, media):
    client = client_for(make_user("alice", role="ap_clerk"))
    ok = SimpleUploadedFile("ok.xml", b"<a>" + b"x" * (MIB // 2) + b"</a>", content_type="application/xml")
    with override_settings(INVOICE_MAX_FILE_BYTES=1 * MIB):
        response = _upload(client, ok)
    assert response.status_code == 202
    assert Invoice.objects.count() == 1 and len(_stored_files(media)) == 1


def test_gunicorn_reads_the_header_limits_from_the_checkout():
    printed = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "config.wsgi:application"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    settings = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    limits = {key.strip(): value.strip() for key, value in settings.items() if key.startswith("limit_request")}
    assert limits == {"limit_request_line": "4094", "limit_request_fields": "50", "limit_request_field_size": "8190"}
