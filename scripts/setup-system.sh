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
