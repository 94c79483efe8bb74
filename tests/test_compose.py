"""The container deployment, checked from its files: docker-compose.yml, the
Dockerfile, deploy/prometheus.yml and the Grafana provisioning.

No Docker engine runs here, so these tests catch what would break a real
`docker compose up` first: a worker on a queue nothing is routed to, a
command or module that does not exist, a second beat, a variable the app
never reads, a dashboard query on a metric nobody exports, Flower open
without a login. Expected values come from the settings, the management
commands and the docs, never from the compose file itself.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

import promql_parser
import pytest
import yaml
from celery import current_app
from django.conf import settings

from jobs.kinds import all_kinds

ROOT = Path(__file__).resolve().parent.parent
IMAGE_WORKDIR = "/app"  # where the Dockerfile copies the project

# The metrics contract with the monitoring app (docs/deployment.md).
CONTRACT_METRICS = {
    "apintake_queue_length",
    "apintake_queue_oldest_job_age_seconds",
    "apintake_jobs_finished_total",
    "apintake_job_runtime_seconds",
}
HISTOGRAM_SERIES = {f"apintake_job_runtime_seconds_{suffix}" for suffix in ("bucket", "sum", "count")}

VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    """A `${NAME:?message}` that Compose would refuse to start without."""


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation, for the forms this project uses."""
    env = env or {}

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""

    return VARIABLE.sub(replace, text)


@cache
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def app_services() -> dict[str, dict]:
    """The services that run our image (built from the Dockerfile)."""
    return {name: service for name, service in services().items() if "build" in service}


def command_args(service: dict, env: dict[str, str] | None = None) -> list[str]:
    command = service.get("command") or []
    if isinstance(command, str):
        return shlex.split(interpolate(command, env))
    return [interpolate(str(part), env) for part in command]


def command_text(service: dict) -> str:
    """Everything a service runs (command and healthcheck), as one string."""
    parts = [" ".join(command_args(service))]
    test = (service.get("healthcheck") or {}).get("test") or []
    parts.append(interpolate(test if isinstance(test, str) else " ".join(test)))
    return "\n".join(parts)


def option(args: list[str], *names: str) -> str | None:
    for index, arg in enumerate(args):
        if arg in names:
            return args[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def celery_services(subcommand: str) -> dict[str, list[str]]:
    found = {}
    for name, service in services().items():
        args = command_args(service)
        if args[:1] == ["celery"] and subcommand in args:
            found[name] = args
    return found


def seconds(duration: str) -> float:
    """A Compose duration ("7m", "1m30s", "40s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def documented_settings() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of each published port, defaults applied."""
    result = []
    for port in service.get("ports", []):
        parts = interpolate(str(port)).split(":")
        assert len(parts) == 3, f"port {port!r} does not name the host address it binds"
        result.append((parts[0], parts[1], parts[2]))
    return result


def run_guard(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", "-c", interpolate(script)], env=env, capture_output=True, text=True, timeout=10, check=False
    )


# --- the shape of the stack ----------------------------------------------------


def test_compose_file_uses_the_compose_spec_without_a_version_key():
    assert "version" not in compose()
    assert {"postgres", "redis", "migrate", "web", "beat", "flower", "prometheus", "grafana"} <= set(services())


def test_every_long_running_service_has_a_healthcheck_and_the_one_shot_gates_the_rest():
    for name, service in services().items():
        if service.get("restart") == "no":
            # one-shot: whoever needs it must wait for it to have succeeded, not merely started
            dependants = [other for other in services().values() if name in (other.get("depends_on") or {})]
            assert dependants, f"{name} is one-shot but nothing waits for it"
            for other in dependants:
                assert other["depends_on"][name]["condition"] == "service_completed_successfully"
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"
        assert service.get("restart") in ("unless-stopped", "always"), f"{name} is not restarted"


def test_migrate_runs_the_migrations_and_the_default_schedules_before_the_app_starts():
    migrate = services()["migrate"]
    text = command_text(migrate)
    assert "python manage.py migrate --noinput" in text
    assert "python manage.py ensure_schedules" in text
    assert text.index("migrate --noinput") < text.index("ensure_schedules")
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in app_services():
        if name != "migrate":
            assert services()[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_manage_py_command_exists():
    from django.core.management import get_commands

    used = set()
    for service in services().values():
        used |= set(re.findall(r"manage\.py\s+([a-z_]+)", command_text(service)))
    assert {"migrate", "ensure_schedules"} <= used
    assert sorted(used - set(get_commands())) == []


def test_scripts_run_by_the_services_are_in_the_image():
    for service in app_services().values():
        for path in re.findall(rf"{IMAGE_WORKDIR}/(\S+\.py)", command_text(service)):
            assert (ROOT / path).is_file(), path
            assert not dockerignored(path), f"{path} is excluded from the image"


# --- celery: app, queues, beat ---------------------------------------------------


def test_every_celery_command_loads_our_celery_app():
    from celery.app.utils import find_app

    from config.celery import app as our_app

    commands = {**celery_services("worker"), **celery_services("beat")}
    assert len(commands) >= 4
    for name, args in commands.items():
        assert find_app(option(args, "-A", "--app")) is our_app, name
    for name, service in app_services().items():
        for app_name in re.findall(r"celery -A (\S+)", command_text(service)):
            assert find_app(app_name) is our_app, f"{name} healthcheck"


# Celery tasks that are not job kinds; they declare their own queue.
PLAIN_TASKS = ("jobs.sweep", "monitoring.beat_heartbeat")


def test_worker_queues_exist_and_together_cover_every_queue():
    consumed: set[str] = set()
    for name, args in celery_services("worker").items():
        queues = option(args, "-Q", "--queues")
        assert queues, f"{name} consumes no explicit queue"
        names = set(queues.split(","))
        assert names <= set(settings.JOB_QUEUES), f"{name}: unknown queues {names - set(settings.JOB_QUEUES)}"
        consumed |= names
    assert consumed == set(settings.JOB_QUEUES)
    routed = {kind.queue for kind in all_kinds()} | {current_app.tasks[name].queue for name in PLAIN_TASKS}
    assert routed <= consumed


def test_worker_healthcheck_pings_the_node_name_the_worker_takes():
    for name, args in celery_services("worker").items():
        node = option(args, "--hostname", "-n")
        assert node and node.endswith("@%h"), f"{name} has no per-container node name"
        ping = interpolate(" ".join(services()[name]["healthcheck"]["test"]))
        assert "inspect ping" in ping
        assert f"-d {node.removesuffix('@%h')}@$HOSTNAME" in ping, name


def test_worker_pool_size_and_recycling_come_from_the_environment_with_sane_defaults():
    for name, args in celery_services("worker").items():
        raw = services()[name]["command"]
        assert re.search(r"--autoscale \$\{WORKER_[A-Z]+_AUTOSCALE:-\d+,\d+\}", raw), name
        assert re.search(r"--max-tasks-per-child \$\{WORKER_MAX_TASKS_PER_CHILD:-\d+\}", raw), name
        largest, smallest = (int(n) for n in option(args, "--autoscale").split(","))
        assert largest >= smallest >= 1
        assert int(option(args, "--max-tasks-per-child")) > 0
        autoscale_variable = name.upper().replace("-", "_") + "_AUTOSCALE"  # worker-email: WORKER_EMAIL_AUTOSCALE
        overridden = command_args(services()[name], {autoscale_variable: "9,3", "WORKER_MAX_TASKS_PER_CHILD": "50"})
        assert option(overridden, "--autoscale") == "9,3"
        assert option(overridden, "--max-tasks-per-child") == "50"


def test_workers_get_time_to_finish_running_jobs_on_stop():
    for name in celery_services("worker"):
        grace = seconds(interpolate(services()[name]["stop_grace_period"]))
        # warm shutdown: a job started just before the stop may run up to its hard limit
        assert grace > settings.CELERY_TASK_TIME_LIMIT, name
        assert services()[name].get("init") is True  # SIGTERM reaches celery, zombies are reaped


def test_exactly_one_beat_with_the_database_scheduler_and_one_replica():
    from celery.utils.imports import symbol_by_name

    beats = celery_services("beat")
    assert len(beats) == 1
    ((name, args),) = beats.items()
    assert services()[name]["deploy"]["replicas"] == 1
    scheduler = option(args, "-S", "--scheduler")
    assert scheduler == settings.CELERY_BEAT_SCHEDULER
    assert symbol_by_name(scheduler).__name__ == "DatabaseScheduler"


def test_beat_healthcheck_verdicts():
    import importlib.util

    spec = importlib.util.spec_from_file_location("beat_healthcheck", ROOT / "deploy" / "beat_healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert module.beat_problem(latest_run=now - timedelta(seconds=200), now=now, max_age_seconds=600) is None
    stale = module.beat_problem(latest_run=now - timedelta(seconds=900), now=now, max_age_seconds=600)
    assert stale and "900 s" in stale
    assert "not sent" in module.beat_problem(latest_run=None, now=now, max_age_seconds=600)


# --- web -------------------------------------------------------------------------


def test_gunicorn_serves_our_wsgi_application_on_the_port_everything_else_uses():
    import importlib

    web = services()["web"]
    args = command_args(web)
    assert args[0] == "gunicorn"
    module_name, attribute = args[1].split(":")
    application = getattr(importlib.import_module(module_name), attribute)
    assert callable(application)
    assert module_name + "." + attribute == settings.WSGI_APPLICATION
    port = option(args, "--bind", "-b").rsplit(":", 1)[1]
    assert [container for _, _, container in published(web)] == [port]
    assert f"http://127.0.0.1:{port}/health/" in command_text(web)


def test_web_is_published_on_localhost_unless_told_otherwise():
    ((host_ip, host_port, _),) = published(services()["web"])
    assert (host_ip, host_port) == ("127.0.0.1", "8000")
    assert interpolate(services()["web"]["ports"][0], {"WEB_PUBLISH": "0.0.0.0:80"}) == "0.0.0.0:80:8000"


# --- environment and volumes -------------------------------------------------------


def test_every_variable_passed_to_the_app_is_a_documented_setting():
    documented = documented_settings()
    passed = set()
    for service in app_services().values():
        passed |= set(service["environment"])
    assert {
        "DATABASE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEY",
        "ALLOWED_HOSTS",
        "MEDIA_ROOT",
        "INVOICE_INBOX_DIR",
        "LOG_FORMAT",
    } <= passed
    assert sorted(passed - documented) == []


def test_app_services_share_one_environment():
    environments = [service["environment"] for service in app_services().values()]
    assert all(environment == environments[0] for environment in environments)


def test_secrets_must_be_given_and_are_never_defaulted():
    environment = services()["web"]["environment"]
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL"):
        with pytest.raises(MissingVariable):
            interpolate(environment[name])
    given = {"SECRET_KEY": "k", "FIELD_ENCRYPTION_KEY": "f", "POSTGRES_PASSWORD": "pw"}
    assert interpolate(environment["DATABASE_URL"], given) == "postgres://apintake:pw@postgres:5432/apintake"
    assert interpolate(environment["REDIS_URL"]) == "redis://redis:6379/0"


def test_host_validation_lets_the_healthcheck_and_prometheus_through():
    raw = services()["web"]["environment"]["ALLOWED_HOSTS"]
    target_host = prometheus_targets()[0].split(":")[0]
    for env in ({}, {"ALLOWED_HOSTS": "ap.example.com"}):
        hosts = interpolate(raw, env).split(",")
        assert "127.0.0.1" in hosts  # the healthcheck's Host header
        assert target_host in hosts  # Prometheus's Host header
    assert "ap.example.com" in interpolate(raw, {"ALLOWED_HOSTS": "ap.example.com"}).split(",")


def test_media_and_inbox_live_on_the_shared_volume_of_web_and_workers():
    environment = services()["web"]["environment"]
    for name in ("web", "beat", *celery_services("worker")):
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services()[name]["volumes"]}
        assert mounts.get("/data") == "app-data", name
    # files the app writes must land on the volume, not in a container's own layer
    for name in ("MEDIA_ROOT", "INVOICE_INBOX_DIR", "MONITORING_BACKUP_DIR"):
        assert environment[name].startswith("/data/"), name
    assert "app-data" in compose()["volumes"]


def test_compose_level_variables_are_explained_in_the_deployment_guide():
    text = (ROOT / "docker-compose.yml").read_text()
    guide = (ROOT / "docs" / "deployment.md").read_text()
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert sorted(name for name in names if f"`{name}`" not in guide) == []


# --- images ----------------------------------------------------------------------------


def test_every_image_is_pinned_to_a_tag():
    for name, service in services().items():
        image = interpolate(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag and tag != "latest", f"{name}: {image}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    # "**/x" matches x at any depth; other patterns are anchored at the context root
    return any(
        fnmatch(Path(prefix).name, pattern[3:]) if pattern.startswith("**/") else fnmatch(prefix, pattern)
        for pattern in patterns
        for prefix in prefixes
    )


def test_dockerfile_builds_a_slim_non_root_image_with_only_runtime_dependencies():
    instructions = dockerfile_instructions()
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    assert bases[0] == "python:3.11-slim-bookworm"
    users = [args.strip() for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "8000") in instructions
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "requirements.txt" in runs and "requirements-dev" not in runs
    assert not re.search(r"build-essential|gcc|\S+-dev\b", runs)  # no compiler, no headers
    # The only system packages are run-time ones, lean: the libraries WeasyPrint needs (body-only invoices)
    # and OCR (OCRmyPDF, Tesseract and its language packs).
    installs = [args for keyword, args in instructions if keyword == "RUN" and "apt-get install" in args]
    assert len(installs) == 1 and "--no-install-recommends" in installs[0] and "libpango-1.0-0" in installs[0]
    assert "ocrmypdf" in installs[0] and "tesseract-ocr-deu" in installs[0]
    assert "rm -rf /var/lib/apt/lists" in installs[0]


def test_secret_key_exists_only_for_the_collectstatic_step():
    instructions = dockerfile_instructions()
    with_secret = [(keyword, args) for keyword, args in instructions if "SECRET_KEY" in args]
    assert len(with_secret) == 1
    keyword, args = with_secret[0]
    assert keyword == "RUN" and "manage.py collectstatic" in args
    assert not any(keyword in ("ENV", "ARG") and "SECRET" in args for keyword, args in instructions)


def test_dockerignore_keeps_secrets_and_local_state_out_but_the_app_in():
    for path in (".env", ".venv/bin/python", ".git/config", "var/db.sqlite3", "config/__pycache__/x.pyc"):
        assert dockerignored(path), path
    for path in ("manage.py", "config/settings.py", "templates", "deploy/beat_healthcheck.py", "requirements.txt"):
        assert not dockerignored(path), path


# --- flower ----------------------------------------------------------------------


def test_flower_is_opt_in_local_only_and_uses_the_same_broker():
    flower = services()["flower"]
    assert interpolate(flower["image"]) == "mher/flower:2.0"
    assert flower["profiles"] == ["flower"]
    assert "build" not in flower
    assert all(host_ip == "127.0.0.1" for host_ip, _, _ in published(flower))
    assert flower["environment"]["CELERY_BROKER_URL"] == interpolate(services()["web"]["environment"]["REDIS_URL"])
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH[:?-]*[^}]*\}", flower["environment"]["FLOWER_BASIC_AUTH"])


@pytest.mark.parametrize("login", [None, "", "admin", "admin:", ":secret"])
def test_flower_refuses_to_start_without_a_login(tmp_path, login):
    env = {"PATH": "/usr/bin:/bin"}
    if login is not None:
        env["FLOWER_BASIC_AUTH"] = login
    result = run_guard(services()["flower"]["command"][2], env)
    assert result.returncode == 1
    assert "FLOWER_BASIC_AUTH must be set" in result.stderr


def test_flower_starts_with_a_login(tmp_path):
    # stands in for the image's `celery` executable, which is not installed here with flower
    (tmp_path / "celery").write_text('#!/bin/sh\necho "started: celery $*"\n')
    (tmp_path / "celery").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "FLOWER_BASIC_AUTH": "ops:s3cret"}
    result = run_guard(services()["flower"]["command"][2], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started: celery flower"


# --- prometheus and grafana ----------------------------------------------------------


def prometheus_targets() -> list[str]:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    return [
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]


def test_observability_services_are_opt_in_and_local_only():
    for name in ("prometheus", "grafana"):
        assert services()[name]["profiles"] == ["observability"]
        assert all(host_ip == "127.0.0.1" for host_ip, _, _ in published(services()[name])), name


def test_prometheus_scrapes_metrics_on_the_web_service():
    web_port = option(command_args(services()["web"]), "--bind").rsplit(":", 1)[1]
    assert f"web:{web_port}" in prometheus_targets()
    prometheus = services()["prometheus"]
    config_file = option(prometheus["command"], "--config.file")
    assert f"./deploy/prometheus.yml:{config_file}:ro" in prometheus["volumes"]


def test_prometheus_sends_the_metrics_token_the_app_accepts():
    prometheus = services()["prometheus"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer"
    script = interpolate(prometheus["entrypoint"][2])
    assert f'printf %s "$METRICS_TOKEN" > {job["authorization"]["credentials_file"]}' in script
    assert script.rstrip().endswith('exec /bin/prometheus "$@"')
    assert prometheus["environment"]["METRICS_TOKEN"].startswith("${METRICS_TOKEN")
    assert "METRICS_TOKEN" in services()["web"]["environment"]
    refused = run_guard(prometheus["entrypoint"][2], {"PATH": "/usr/bin:/bin"})
    assert refused.returncode == 1
    assert "METRICS_TOKEN must be set" in refused.stderr


def dashboard() -> dict:
    return json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "apintake.json").read_text())


def dashboard_queries() -> list[str]:
    board = dashboard()
    queries = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        label_values = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        queries.append(label_values.group(1) if label_values else query)
    return queries


def metric_names(query: str) -> set[str]:
    # Grafana fills these in before Prometheus sees the query.
    concrete = query.replace("$__rate_interval", "5m").replace("$queue", ".*").replace("$kind", ".*")
    names: set[str | None] = set()
    promql_parser.walk(
        promql_parser.parse(concrete),
        pre_visit=lambda node: names.add(node.name) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    return names


def test_dashboard_queries_parse_and_use_only_the_contract_metrics():
    used: set[str] = set()
    queries = dashboard_queries()
    assert len(queries) >= 8
    for query in queries:
        names = metric_names(query)
        assert names <= CONTRACT_METRICS | HISTOGRAM_SERIES, f"{query}: {names}"
        used |= {"apintake_job_runtime_seconds" if name in HISTOGRAM_SERIES else name for name in names}
    assert used == CONTRACT_METRICS


def test_dashboard_has_the_promised_panels():
    panels = {panel["title"]: " ".join(t["expr"] for t in panel["targets"]) for panel in dashboard()["panels"]}

    def panel_using(metric: str, *fragments: str) -> bool:
        return any(metric in expr and all(f in expr for f in fragments) for expr in panels.values())

    assert panel_using("apintake_queue_length", "by (queue)")
    assert panel_using("apintake_queue_oldest_job_age_seconds", "by (queue)")
    assert panel_using("apintake_jobs_finished_total", "rate(", "by (kind)")
    assert panel_using("apintake_jobs_finished_total", 'status="failed"')
    for quantile in ("0.5", "0.95", "0.99"):
        assert panel_using("apintake_job_runtime_seconds_bucket", f"histogram_quantile({quantile}")


def test_the_metric_contract_is_written_down():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for name in CONTRACT_METRICS:
        assert f"`{name}`" in guide


def test_grafana_provisioning_wires_the_datasource_and_the_dashboard():
    grafana = services()["grafana"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    (datasource,) = datasources
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in services()
    uids = {panel["datasource"]["uid"] for panel in dashboard()["panels"]}
    uids |= {variable["datasource"]["uid"] for variable in dashboard()["templating"]["list"]}
    assert uids == {datasource["uid"]}
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "apintake.yml").read_text())["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]


def test_grafana_refuses_to_start_with_its_default_password():
    script = services()["grafana"]["entrypoint"][2]
    refused = run_guard(script, {"PATH": "/usr/bin:/bin"})
    assert refused.returncode == 1
    assert "GRAFANA_ADMIN_PASSWORD must be set" in refused.stderr
    assert services()["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    # With a password the guard hands over to the image's own entrypoint (absent here).
    handed_over = run_guard(script, {"PATH": "/usr/bin:/bin", "GF_SECURITY_ADMIN_PASSWORD": "pw"})
    assert "/run.sh" in handed_over.stderr and "must be set" not in handed_over.stderr
