"""`manage.py check` says when OCR is switched on but cannot run on this host."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

from invoices.ocr.engine import ocr_unavailable_reason


@register(Tags.compatibility)
def ocr_installed(app_configs=None, **kwargs):
    if not settings.OCR_ENABLED:
        return []
    reason = ocr_unavailable_reason()
    if reason is None:
        return []
    return [
        Warning(
            reason,
            hint="Scans and photos will go to review with this reason and no fields. Install the Debian packages "
            "ocrmypdf, tesseract-ocr and tesseract-ocr-<language> (scripts/setup-system.sh), or set "
            "OCR_ENABLED=0 to say OCR is not wanted.",
            id="invoices.W001",
        )
    ]
