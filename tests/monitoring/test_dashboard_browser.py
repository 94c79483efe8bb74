"""The dashboard in headless Chromium: log in, watch a running job's progress bar move
without a page reload, and keep a screenshot (var/screenshots/monitoring-dashboard.png)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.services import job_enqueue
from tests.support.browser import admin_login, chromium, needs_chromium
from tests.support.waiting import wait_for

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = needs_chromium


@pytest.fixture
def browser():
    with chromium(window_size="1500,1900") as driver:
        yield driver


def progress_of(driver, job_id: str) -> tuple[int, str] | None:
    """The bar's percentage and its fill's width, read in one script (parts are replaced while we look)."""
    found = driver.execute_script(
        "const bar = document.querySelector(`tr[data-job-id='${arguments[0]}'] [role=progressbar]`);"
        "if (!bar || !bar.dataset.percent) { return null; }"
        "const fill = bar.querySelector('.mon-bar-fill');"
        "return [parseInt(bar.dataset.percent, 10), fill ? fill.style.width : ''];",
        job_id,
    )
    return tuple(found) if found else None


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.services
@pytest.mark.slow
def test_dashboard_progress_bar_moves_without_reload(browser, live_server, celery_worker, make_user, settings):
    from selenium.webdriver.common.by import By

    settings.MONITORING_DASHBOARD_REFRESH_SECONDS = 1
    make_user("watcher", staff=True)
    admin_login(browser, live_server, "watcher", "pw-watcher", next_path="/monitoring/")
    assert browser.find_elements(By.ID, "monitoring-dashboard")
    browser.execute_script("window.loadedOnce = true;")  # gone if the page reloads

    job = job_enqueue("jobs.sleep", {"seconds": 16, "steps": 16}, source="api")
    job_id = str(job.pk)
    first, _ = wait_for(lambda: progress_of(browser, job_id), timeout=30, what="progress bar of the running job")
    later, width = wait_for(
        lambda: (p := progress_of(browser, job_id)) and p[0] >= first + 15 and p,
        timeout=30,
        what="the progress bar to move",
    )
    assert later > first
    assert width == f"{later}%"
    assert browser.execute_script("return window.loadedOnce === true;")
    assert "Running jobs" in browser.page_source and "Queues" in browser.page_source

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / "monitoring-dashboard.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
