"""`make run`'s stack (scripts/devstack.py) comes up on SQLite and a local Redis,
runs a job sent through the web process on the worker it started, and stops
entirely on Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.redis_server import free_port
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


def test_make_run_stack_executes_a_job_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "DEBUG")},
        "VAR_DIR": str(tmp_path),
        "WEB_BIND": f"127.0.0.1:{port}",
        "ADMIN_PASSWORD": "smoke-test-pw-1",
        "REDIS_URL": "redis://127.0.0.1:6379/12",
        "WORKER_CONCURRENCY": "1",
    }
    stack = subprocess.Popen(
        [sys.executable, "scripts/devstack.py"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def token():
            try:
                return http("POST", f"{base}/api/v1/auth/token/", {"username": "admin", "password": "smoke-test-pw-1"})[
                    1
                ]["token"]
            except OSError:
                return None

        api_token = wait_for(token, timeout=90, interval=0.5, what="web server up")
        assert (tmp_path / "db.sqlite3").exists()
        status, job = http(
            "POST", f"{base}/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 0.5}}, token=api_token
        )
        assert status == 202

        done = wait_for(
            lambda: (
                (j := http("GET", f"{base}/api/v1/jobs/{job['id']}/", token=api_token)[1])["status"] == "succeeded"
                and j
            ),
            timeout=60,
            interval=0.5,
            what="job succeeded",
        )
        assert done["worker"].startswith("all@")
        assert done["result"]["steps"] == 10
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        try:
            output, _ = stack.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            output, _ = stack.communicate()
    assert "Admin:      http://" in output
    # Ctrl-C stopped web, worker and beat: nothing of the process group is left.
    time.sleep(1)
    leftovers = subprocess.run(["pgrep", "-g", str(stack.pid)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], output[-3000:]
