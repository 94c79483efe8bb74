"""The review page in headless Chromium: a PDF invoice and a UBL invoice, the original
visible beside the form, a field edited, saved and re-validated, then approved (by
button and by keyboard). Screenshots are kept in var/test-artifacts/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from invoices.models import Invoice, InvoiceCorrection, InvoiceStatus
from invoices.services import invoice_import_sync
from tests.invoices.einvoice_reference import SAMPLES
from tests.invoices.review_support import RIGHT_GROSS, needs_review_invoice
from tests.support.browser import admin_login, chromium, needs_chromium
from tests.support.waiting import wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
FACTURX = SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"

pytestmark = [
    needs_chromium,
    pytest.mark.browser,
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser():
    with chromium(window_size="1600,1000") as driver:
        yield driver


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def logged_in(browser, live_server, make_user):

    make_user("clerk", role="ap_clerk", staff=True)
    admin_login(browser, live_server, "clerk", "pw-clerk")
    return browser


def screenshot(browser, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


def open_review(browser, live_server, invoice):
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + reverse("admin:invoices_invoice_review", args=[invoice.pk]))
    wait_for(lambda: browser.find_elements(By.ID, "review-form"), timeout=20, what="the review page")


def side_by_side(browser, left_id: str) -> bool:
    """The original's element and the form are both visible, the original on the left."""
    return browser.execute_script(
        "const a = document.getElementById(arguments[0]).getBoundingClientRect();"
        "const b = document.getElementById('review-form').getBoundingClientRect();"
        "return a.width > 300 && a.height > 300 && b.width > 300 && a.right <= b.left + 1 && a.top < b.bottom;",
        left_id,
    )


def set_field(browser, path: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, f"f-{path}")
    field.clear()
    field.send_keys(value)


def click_and_wait(browser, button_id: str) -> None:
    from selenium.webdriver.common.by import By

    browser.execute_script("window.beforeSubmit = true;")  # gone once the next page has loaded
    browser.find_element(By.ID, button_id).click()
    wait_for(
        lambda: browser.execute_script("return document.readyState === 'complete' && !window.beforeSubmit;"),
        timeout=20,
        what=f"the page after {button_id}",
    )
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".messagelist, #review-form"), timeout=20, what="the next page"
    )


def test_pdf_invoice_page_image_beside_the_form_edit_revalidate_approve_by_keyboard(logged_in, live_server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser = logged_in
    invoice = invoice_import_sync(content=FACTURX.read_bytes(), filename=FACTURX.name)
    assert invoice.status in (InvoiceStatus.VALIDATED, InvoiceStatus.NEEDS_REVIEW)
    open_review(browser, live_server, invoice)

    # The page image has loaded (a real PNG drawn by the browser), left of the form.
    wait_for(
        lambda: browser.execute_script(
            "const img = document.getElementById('page-image'); return img.complete && img.naturalWidth > 1000;"
        ),
        timeout=20,
        what="the page image",
    )
    assert side_by_side(browser, "original")
    zoomed = browser.execute_script(
        "document.querySelector('[data-zoom=\"1\"]').click();return document.getElementById('page-image').style.width;"
    )
    assert zoomed == "125%"
    screenshot(browser, "review-pdf")

    set_field(browser, "buyer_reference", "PO-CHECKED-42")
    browser.find_element(By.ID, "f-reason").send_keys("read from the page")
    click_and_wait(browser, "btn-revalidate")
    assert "validated again" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert browser.find_element(By.ID, "f-buyer_reference").get_attribute("value") == "PO-CHECKED-42"
    assert InvoiceCorrection.objects.get(invoice=invoice).field_path == "buyer_reference"

    # "A" outside an input approves, after a confirmation.
    browser.find_element(By.TAG_NAME, "h1").click()
    ActionChains(browser).send_keys("a").perform()
    wait_for(lambda: _alert(browser), timeout=10, what="the confirmation").accept()
    wait_for(
        lambda: Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.APPROVED,
        timeout=20,
        what="the invoice approved",
    )


def test_ubl_invoice_rendered_from_xml_beside_the_form_edit_revalidate_approve(logged_in, live_server):
    from selenium.webdriver.common.by import By

    browser = logged_in
    invoice = needs_review_invoice()
    open_review(browser, live_server, invoice)

    document = browser.find_element(By.ID, "einvoice")
    assert document.is_displayed() and "SupplierOfficialName" in document.text
    assert side_by_side(browser, "original")
    gross = browser.find_element(By.CSS_SELECTOR, "[data-path=total_gross]")
    assert "totals.net_tax_gross" in gross.text and "rv-has-error" in gross.get_attribute("class")
    screenshot(browser, "review-ubl-issue")

    set_field(browser, "total_gross", RIGHT_GROSS)
    # A line added in the browser is saved as a correction too.
    browser.find_element(By.ID, "add-line").click()
    browser.find_element(By.NAME, "new-0.name").send_keys("Freight")
    browser.find_element(By.NAME, "new-0.line_amount").send_keys("0.00")
    click_and_wait(browser, "btn-revalidate")
    gross = browser.find_element(By.CSS_SELECTOR, "[data-path=total_gross]")
    assert "totals.net_tax_gross" not in gross.text and "corrected" in gross.text
    assert "Freight" in [e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, "#lines input")]
    browser.execute_script("document.getElementById('section-totals').scrollIntoView();")
    screenshot(browser, "review-ubl-corrected")

    click_and_wait(browser, "btn-approve")
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.APPROVED
    assert "approved" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text


def test_the_queue_page_and_reject_needs_a_reason_in_the_browser(logged_in, live_server):
    from selenium.webdriver.common.by import By

    browser = logged_in
    invoice = needs_review_invoice("queue")
    needs_review_invoice("queue-2"), needs_review_invoice("queue-3")
    browser.get(live_server.url + reverse("admin:invoices_invoice_review_queue"))
    row = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-invoice-id='{invoice.pk}']"),
        timeout=20,
        what="the queue row",
    )[0]
    row.find_element(By.CSS_SELECTOR, "button[value=assign_me]").click()
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).assigned_to_id is not None, timeout=20, what="assignment")
    screenshot(browser, "review-queue")

    open_review(browser, live_server, invoice)
    browser.find_element(By.ID, "btn-reject").click()  # no reason: the browser keeps the page
    assert browser.execute_script("return document.activeElement.id") == "f-decision-reason"
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.NEEDS_REVIEW
    browser.find_element(By.ID, "f-decision-reason").send_keys("Not our order")
    click_and_wait(browser, "btn-reject")
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.REJECTED


def _alert(browser):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return browser.switch_to.alert
    except NoAlertPresentException:
        return None
