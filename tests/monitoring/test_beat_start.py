"""Beat records its heartbeat when it starts, so a fresh stack is healthy within
seconds instead of one heartbeat interval later (issue 11, item 7)."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

from monitoring.health import BeatAlive, beat_heartbeat_age
from tests.support.waiting import wait_for
from tests.support.workers import REPO_ROOT, subprocess_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_beat_records_its_heartbeat_when_it_starts(settings, no_session_worker):
    # No worker runs: the heartbeat task beat sends would never be executed, so
    # only beat itself can have written the row.
    settings.MONITORING_BEAT_HEARTBEAT_SECONDS = 30
    assert beat_heartbeat_age() is None
    schedule = tempfile.mkdtemp(prefix="beat-test-")
    started = time.monotonic()
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO", "-s", f"{schedule}/schedule"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": subprocess_database_url(), "MONITORING_BEAT_HEARTBEAT_SECONDS": "30"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: beat_heartbeat_age() is not None, timeout=20, interval=0.2, what="beat heartbeat row")
        took = time.monotonic() - started
    finally:
        beat.terminate()
        output = beat.communicate(timeout=20)[0].decode(errors="replace")
    assert took < 20, output[-2000:]
    print(f"beat heartbeat recorded {took:.1f} s after starting beat")
    BeatAlive().run()  # the beat health check passes at once
