#!/usr/bin/env python
"""`make run`: prepare a zero-configuration stack and run it in the foreground.

SQLite at var/db.sqlite3, a local Redis (REDIS_URL, else 127.0.0.1:6379 if it
answers, else a private redis-server under var/), migrations, default
schedules, an admin user, then web + worker + beat under honcho.

First it writes (or completes) `.env` in the checkout (git-ignored): DEBUG=1, a
generated SECRET_KEY and FIELD_ENCRYPTION_KEY, and the REDIS_URL it chose.
Settings read that file, so `python manage.py ...` works in another terminal
without exporting anything. `--write-env-only` stops after writing it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
VENV_BIN = Path(sys.executable).parent
PRIVATE_REDIS_PORT = 6390


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def choose_redis(env: dict) -> list[str] | None:
    """The Redis URL to use, and the private redis-server command line if we must start one."""
    if env.get("REDIS_URL"):
        if not redis_answers(env["REDIS_URL"]):
            sys.exit(f"REDIS_URL={env['REDIS_URL']} does not answer. Start that Redis or unset REDIS_URL.")
        return None
    if redis_answers("redis://127.0.0.1:6379/0"):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        return None
    server = shutil.which("redis-server")
    if not server:
        sys.exit("No Redis: set REDIS_URL, start one on 127.0.0.1:6379, or install it (apt-get install redis-server).")
    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    env["REDIS_URL"] = f"redis://127.0.0.1:{PRIVATE_REDIS_PORT}/0"
    return [
        server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(PRIVATE_REDIS_PORT),
        "--dir",
        str(VAR / "redis"),
        "--save",
        "",
        "--appendonly",
        "no",
    ]


def env_file_path() -> Path | None:
    """Where settings read the env file from (ENV_FILE, else `.env` in the checkout); None if disabled."""
    configured = os.environ.get("ENV_FILE")
    if configured is None:
        return ROOT / ".env"
    return Path(configured) if configured else None


def write_env_file(path: Path, *, redis_url: str) -> dict:
    """Write development values to the env file, keeping the secrets a previous run
    generated (stored passwords stay decryptable) and any line the user added."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    values.setdefault("DEBUG", "1")
    values.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    values.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    values["REDIS_URL"] = redis_url
    lines = [
        "# Written by `make run` for development in this checkout (git-ignored; never commit it).",
        "# Real environment variables override these values.",
    ]
    lines += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # it holds a secret key
    return values


def manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    VAR.mkdir(exist_ok=True)
    env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "1"), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    redis_command = choose_redis(env)
    path = env_file_path()
    if path is not None:
        write_env_file(path, redis_url=env["REDIS_URL"])
        print(f"Development settings: {path} (manage.py reads it in this checkout)")
    if "--write-env-only" in sys.argv[1:]:
        return
    # A private Redis lives exactly as long as this command (Ctrl-C stops it too).
    private_redis = subprocess.Popen(redis_command, cwd=ROOT) if redis_command else None
    try:
        prepare_and_run(env)
    except KeyboardInterrupt:
        pass
    finally:
        if private_redis and private_redis.poll() is None:
            private_redis.terminate()
            private_redis.wait(10)


def prepare_and_run(env: dict) -> None:
    manage("migrate", "--noinput", env=env)
    manage("ensure_schedules", env=env)
    password = env.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    created = subprocess.run(
        [sys.executable, "manage.py", "ensure_admin", "--password-env", "APINTAKE_ADMIN_PW"],
        cwd=ROOT,
        env={**env, "APINTAKE_ADMIN_PW": password},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if created == "created" and not env.get("ADMIN_PASSWORD"):
        print(f"\nCreated the admin user 'admin' with password: {password}  (shown once)\n")
    bind = env.setdefault("WEB_BIND", "127.0.0.1:8000")
    print(f"Admin:      http://{bind}/admin/")
    print(f"API docs:   http://{bind}/api/docs/")
    print(f"Dashboard:  http://{bind}/monitoring/")
    print("Ctrl-C stops web, worker and beat.\n", flush=True)
    honcho = subprocess.Popen(
        [str(VENV_BIN / "honcho"), "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"], cwd=ROOT, env=env
    )
    # Ctrl-C reaches honcho (same process group), which stops web, worker and
    # beat gracefully; we wait for that instead of dying first and orphaning them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    honcho.wait()


if __name__ == "__main__":
    main()
