"""Headless Chromium for the browser tests (scripts/setup-system.sh installs it and chromedriver)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Chromium and chromedriver are needed (scripts/setup-system.sh installs them)",
)


@contextmanager
def chromium(*, window_size: str, browser_log: bool = False) -> Iterator:
    """A headless Chromium driven by Selenium, `window_size` "width,height";
    `browser_log` keeps the console log for `driver.get_log("browser")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--window-size={window_size}"]:
        options.add_argument(flag)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def admin_login(browser, live_server, username: str, password: str, *, next_path: str = "/admin/") -> None:
    """Log in through the admin's login form and wait until `next_path` shows. The login page
    carries the admin header too, so waiting for the header alone raced the form's redirect."""
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/admin/login/?next={next_path}")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(
        lambda: urlsplit(browser.current_url).path == next_path and browser.find_elements(By.ID, "user-tools"),
        timeout=20,
        what=f"{next_path} after login",
    )
