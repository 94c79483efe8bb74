"""Render a message body (the invoice itself, with no attachment) to a PDF.

The HTML of an email is hostile: it may point at tracking pixels, internal
URLs or local files. WeasyPrint fetches every image, stylesheet and font
through its URL fetcher; ours refuses every URL, so rendering reads nothing
but the string given (no network, no file, no data: URL surprises).
Plain-text bodies are escaped into a <pre> block.
"""

from __future__ import annotations

import html
import logging

# WeasyPrint reports every step (also while it loads, below) at INFO: noise in the worker log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

from weasyprint import HTML  # noqa: E402
from weasyprint.urls import URLFetcher  # noqa: E402

logger = logging.getLogger(__name__)

_PAGE_CSS = """
@page { size: A4; margin: 18mm; }
body { font-family: sans-serif; font-size: 10pt; }
pre { white-space: pre-wrap; font-family: monospace; font-size: 9pt; }
.apintake-header { border-bottom: 1px solid #999; margin-bottom: 8mm; padding-bottom: 2mm; font-size: 9pt; }
"""


class RefusingURLFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that fetches nothing: every URL raises, so the resource is left out."""

    def fetch(self, url, headers=None):
        raise PermissionError(f"External resources are not loaded when rendering a message body ({url[:80]}).")


class BodyNotRenderable(Exception):
    """The body could not be rendered to a PDF; the message says why."""


def body_to_pdf(*, subject: str, sender: str, sent_at: str, body_html: str, body_text: str) -> bytes:
    """A PDF of the message body (HTML if there is any, else the text), headed by sender, date and subject."""
    header = (
        f'<div class="apintake-header"><div>From: {html.escape(sender)}</div>'
        f"<div>Date: {html.escape(sent_at)}</div><div>Subject: {html.escape(subject)}</div></div>"
    )
    if body_html.strip():
        document = f"<style>{_PAGE_CSS}</style>{header}{body_html}"
    elif body_text.strip():
        document = (
            f"<html><head><style>{_PAGE_CSS}</style></head><body>{header}"
            f"<pre>{html.escape(body_text)}</pre></body></html>"
        )
    else:
        raise BodyNotRenderable("The message has no body to take as the invoice.")
    try:
        # base_url None: relative URLs resolve to nothing; the fetcher refuses absolute ones.
        return HTML(string=document, base_url=None, url_fetcher=RefusingURLFetcher()).write_pdf()
    except Exception as exc:  # the renderer on hostile markup: report, never crash the scan
        logger.warning("Rendering a message body to PDF failed: %s: %s", type(exc).__name__, exc)
        raise BodyNotRenderable(f"The body could not be rendered to a PDF: {type(exc).__name__}: {exc}") from exc
