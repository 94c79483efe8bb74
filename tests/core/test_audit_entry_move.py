"""The audit trail moved from jobs to core without losing a row."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.models import AuditEntry

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

BEFORE_THE_MOVE = [("jobs", "0003_job_lost_runs")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_a_row_written_before_the_move_is_read_after_it(django_user_model):
    user = django_user_model.objects.create_user(username="auditor")
    old_apps = _migrate(BEFORE_THE_MOVE)
    try:
        assert "jobs_auditentry" in connection.introspection.table_names()
        OldAuditEntry = old_apps.get_model("jobs", "AuditEntry")
        OldAuditEntry.objects.create(
            actor_id=user.pk,
            actor_label="auditor",
            action="job.cancel",
            source="admin",
            target_type="jobs.job",
            target_id="42",
            reason="stuck",
            details={"count": 1},
        )
        # A group was given the audit trail's view permission while it lived in jobs.
        # (Created here if an earlier test's flush left no permissions behind.)
        content_type, _ = old_apps.get_model("contenttypes", "ContentType").objects.get_or_create(
            app_label="jobs", model="auditentry"
        )
        view, _ = old_apps.get_model("auth", "Permission").objects.get_or_create(
            content_type=content_type, codename="view_auditentry", defaults={"name": "Can view audit entry"}
        )
        auditors = old_apps.get_model("auth", "Group").objects.create(name="auditors")
        auditors.permissions.add(view)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    tables = connection.introspection.table_names()
    assert "core_auditentry" in tables and "jobs_auditentry" not in tables
    entry = AuditEntry.objects.get(action="job.cancel")
    assert (entry.actor, entry.actor_label, entry.source, entry.target_id, entry.reason, entry.details) == (
        user,
        "auditor",
        "admin",
        "42",
        "stuck",
        {"count": 1},
    )
    assert Group.objects.get(name="auditors").permissions.get().natural_key()[1:] == ("core", "auditentry")
    # New rows continue the same id sequence.
    newer = AuditEntry.objects.create(actor_label="system", action="job.retry", source="system")
    assert newer.pk > entry.pk
