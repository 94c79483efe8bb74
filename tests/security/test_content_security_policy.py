"""A Content-Security-Policy that allows no inline script, and the pages that must live
with it (the admin, the monitoring dashboard, the API docs, the review page) still work in
headless Chromium with no violation reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.support.browser import admin_login, chromium, needs_chromium
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/login/", "/api/v1/jobs/", "/health/"])
def test_every_page_carries_a_policy_without_inline_script(client, url):
    policy = _policy(client.get(url))
    assert policy["script-src"] == "script-src 'self'"
    assert policy["object-src"] == "object-src 'none'" and policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "'unsafe-inline'" not in policy["default-src"]


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for match in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            offenders.append(f"{template.relative_to(ROOT)}: {match.group(0)}")
        for match in re.finditer(r"\son[a-z]+\s*=\s*[\"']", text):
            offenders.append(f"{template.relative_to(ROOT)}: {match.group(0).strip()}")
    assert offenders == []


@pytest.fixture
def browser():
    with chromium(window_size="1400,1000", browser_log=True) as driver:
        yield driver


def _violations(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]


@needs_chromium
@pytest.mark.browser
@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_admin_dashboard_api_docs_and_review_page_work_under_the_policy(
    browser, live_server, make_user, settings, tmp_path
):
    from selenium.webdriver.common.by import By

    from tests.invoices.review_support import needs_review_invoice

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MONITORING_DASHBOARD_REFRESH_SECONDS = 1
    make_user("lead", superuser=True)
    invoice = needs_review_invoice()
    admin_login(browser, live_server, "lead", "pw-lead")
    assert _violations(browser) == []

    browser.get(f"{live_server.url}/monitoring/")
    # The refresh script (a static file now) ran: it stamps the time of each refresh.
    wait_for(
        lambda: browser.find_element(By.ID, "last-refresh").text != "now",
        timeout=20,
        what="the dashboard's first refresh",
    )
    assert _violations(browser) == []

    browser.get(f"{live_server.url}/api/docs/")
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"),
        timeout=30,
        what="Swagger UI rendering the schema",
    )
    assert "AP Intake API" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    assert _violations(browser) == []

    browser.get(live_server.url + reverse("admin:invoices_invoice_review", args=[invoice.pk]))
    wait_for(lambda: browser.find_elements(By.ID, "review-form"), timeout=20, what="the review page")
    assert _violations(browser) == []
