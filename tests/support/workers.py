"""Real Celery worker processes for tests, against the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_QUEUES = ",".join(settings.JOB_QUEUES)


def subprocess_database_url() -> str:
    """A DATABASE_URL that points a subprocess at the database the tests use."""
    db = connection.settings_dict
    name = db["NAME"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{name}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{name}"


class WorkerProcess:
    """`celery worker` as a child process; stopped (or killed) by the test."""

    def __init__(
        self,
        *,
        name: str = "test",
        queues: str = ALL_QUEUES,
        concurrency: int = 2,
        pool: str = "prefork",
        env: dict | None = None,
    ):
        self.hostname = f"{name}-{os.getpid()}-{time.monotonic_ns()}@localhost"
        self.queues = queues
        self.concurrency = concurrency
        self.pool = pool
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])

    def start(self, *, timeout: float = 30.0) -> WorkerProcess:
        env = {**os.environ, "DATABASE_URL": subprocess_database_url(), "PYTHONUNBUFFERED": "1", **self.extra_env}
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-n",
            self.hostname,
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "-P",
            self.pool,
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        from celery import current_app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker exited with {self.process.returncode}:\n{self.log()}")
            if current_app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise RuntimeError(f"Celery worker did not answer within {timeout} s:\n{self.log()}")

    def child_pids(self) -> list[int]:
        """Pool processes of this worker (direct children of the main process)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except FileNotFoundError:
            return []

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), like a machine dying."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""
