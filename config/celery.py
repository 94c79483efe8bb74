"""The Celery application. Configuration lives in config/settings.py (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("apintake")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _install_worker_steps(app: Celery) -> None:
    """A worker whose database is down stops consuming (jobs/worker_health.py)."""
    from jobs.worker_health import DatabaseWatch

    app.steps["consumer"].add(DatabaseWatch)


_install_worker_steps(app)


@app.on_after_configure.connect
def reuse_database_connections(sender: Celery, **kwargs) -> None:
    """Celery's Django fixup reads this raw, un-namespaced key; without it every
    task opens a fresh database connection (docs/benchmarks.md)."""
    from django.conf import settings

    sender.conf["CELERY_DB_REUSE_MAX"] = settings.CELERY_DB_REUSE_MAX
