"""Production settings pass `check --deploy`; task log lines carry the task id and name."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from config.logging import JsonFormatter, TaskContextFilter

ROOT = Path(__file__).resolve().parent.parent


def production_env(**extra):
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_"))}
    env.update(
        DEBUG="0",
        SECRET_KEY="x" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
        ALLOWED_HOSTS="ap.example.com",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        **extra,
    )
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_without_a_secret_key_unless_debug():
    env = production_env()
    env.pop("SECRET_KEY")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_task_log_lines_carry_task_id_and_name_as_json():
    from celery import shared_task

    record = {}

    class Capture(logging.Handler):
        def emit(self, log_record):
            record["line"] = self.format(log_record)

    handler = Capture()
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.task_context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    @shared_task(name="tests.log_something")
    def log_something():
        logger.info("working on it")

    log_something.apply(task_id="0f2e9c1a-task-id")
    logger.removeHandler(handler)
    line = json.loads(record["line"])
    assert line["message"] == "working on it"
    assert line["task_id"] == "0f2e9c1a-task-id" and line["task_name"] == "tests.log_something"


def test_an_invalid_field_encryption_key_fails_check():
    for bad in ("not-a-fernet-key", "x" * 44):
        env = {**production_env(), "FIELD_ENCRYPTION_KEY": bad}
        result = subprocess.run(
            [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode != 0, result.stdout
        assert "FIELD_ENCRYPTION_KEY is not a valid Fernet key" in result.stderr
        assert bad not in result.stderr + result.stdout  # the key itself is never printed
