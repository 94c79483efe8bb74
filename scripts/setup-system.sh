#!/usr/bin/env bash
# System packages AP Intake needs (Debian 12). Idempotent: safe to run again.
set -euo pipefail

# Dovecot: the real IMAP server the emailsync tests and benchmarks run (tests/support/dovecot.py).
if [ ! -x /usr/sbin/dovecot ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd
fi

# Chromium + its WebDriver: the monitoring dashboard test drives headless Chromium (tests/monitoring/test_dashboard_browser.py).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi

# wrk: the HTTP load generator of bench/api_latency.py (a C client leaves the 2 cores to the server).
if ! command -v wrk >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk
fi

# Pango (with HarfBuzz and fontconfig) and a font: WeasyPrint renders a body-only invoice email to PDF
# (emailsync/bodypdf.py) through them.
if ! ldconfig -p | grep -q libpango-1.0.so.0 || ! ldconfig -p | grep -q libpangoft2-1.0.so.0 \
        || ! fc-list 2>/dev/null | grep -qi dejavu; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
        libharfbuzz-subset0 fontconfig fonts-dejavu-core
fi

# OCR of scanned and photographed invoices (invoices/ocr/): OCRmyPDF, Tesseract and its language packs.
# Optional for `make run`; the OCR tests and bench/ocr_accuracy.py need them. Add a language with its
# tesseract-ocr-<code> package here and in the Dockerfile, then list it in OCR_LANGUAGES (docs/formats.md).
OCR_PACKAGES="ocrmypdf tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-ita tesseract-ocr-spa tesseract-ocr-nld"
missing_ocr=""
for package in $OCR_PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing_ocr="$missing_ocr $package"
    fi
done
if [ -n "$missing_ocr" ]; then
    apt-get update
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y $missing_ocr
fi
