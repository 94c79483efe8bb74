"""`make run` writes a git-ignored `.env` with development values that settings
read in that checkout, so the README's first tour works in a second terminal
without exporting anything; real environment variables still win; the test
suite never reads a developer's `.env` (issue 11, item 15)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path("/work/shared/samples/einvoices/en16931-ubl")
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "__pycache__",
    ".env",
    "node_modules",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.sqlite3",
)


def test_the_suite_never_reads_a_developers_env_file():
    # pyproject's pytest env sets ENV_FILE to nothing, so a `.env` in the checkout is ignored.
    assert os.environ.get("ENV_FILE") == ""
    assert settings.ENV_FILE_READ is None


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not present")
def test_first_tour_commands_run_after_make_run_wrote_the_env_file(tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=IGNORED)
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    # What `make run` does first (scripts/devstack.py), here without starting the stack.
    subprocess.run(
        [sys.executable, "scripts/devstack.py", "--write-env-only"],
        cwd=checkout,
        check=True,
        env={**bare, "REDIS_URL": settings.REDIS_URL},
        timeout=60,
    )
    written = (checkout / ".env").read_text()
    values = dict(line.split("=", 1) for line in written.splitlines() if line and not line.startswith("#"))
    assert values["DEBUG"] == "1" and values["REDIS_URL"] == settings.REDIS_URL
    assert len(values["SECRET_KEY"]) >= 50 and len(values["FIELD_ENCRYPTION_KEY"]) == 44
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0  # never committed

    def manage(*args, env=bare):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
        )

    assert manage("migrate", "--noinput").returncode == 0
    sample = SAMPLES / "BIS3_Invoice_positive.XML"
    imported = manage("import_invoices", str(sample), "--sync", "--json")
    assert imported.returncode == 0, imported.stderr[-3000:]
    line = json.loads(imported.stdout.splitlines()[0])
    assert line["status"] in ("validated", "needs_review") and line["error"] is None
    health = manage("health", "--json")
    assert health.returncode in (0, 1), health.stderr[-3000:]  # 1: no worker or beat runs here
    report = json.loads(health.stdout)
    assert {check["name"]: check["ok"] for check in report["checks"]}["database"] is True

    # A real environment variable wins over the file; a second run keeps the generated secrets.
    shown = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.REDIS_URL)",
        env={**bare, "REDIS_URL": "redis://127.0.0.1:6379/9"},
    )
    assert shown.stdout.strip().splitlines()[-1] == "redis://127.0.0.1:6379/9", shown.stderr[-2000:]
    subprocess.run(
        [sys.executable, "scripts/devstack.py", "--write-env-only"],
        cwd=checkout,
        check=True,
        env={**bare, "REDIS_URL": settings.REDIS_URL},
        timeout=60,
    )
    again = dict(
        line.split("=", 1) for line in (checkout / ".env").read_text().splitlines() if line and not line.startswith("#")
    )
    assert again["SECRET_KEY"] == values["SECRET_KEY"]
    assert again["FIELD_ENCRYPTION_KEY"] == values["FIELD_ENCRYPTION_KEY"]
