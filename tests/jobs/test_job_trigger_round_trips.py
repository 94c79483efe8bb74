"""What one POST /api/v1/jobs/ asks of PostgreSQL (docs/benchmarks.md "API latency under
load": each statement is a round trip a web worker waits for)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import AuditEntry
from jobs.broker import queue_length
from jobs.models import Job, JobStatus

pytestmark = [pytest.mark.services]


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: the publish runs on commit
def test_a_trigger_is_four_statements_and_the_job_is_committed_audited_and_published(
    make_user, client_for, no_session_worker
):
    client = client_for(make_user("op", role="operator", staff=True))
    body = {"kind": "jobs.sleep", "params": {"seconds": 0}}
    client.post("/api/v1/jobs/", body, format="json")  # caches the kind's median duration (the answer's estimate)

    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/jobs/", body, format="json")

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.QUEUED and job.published_at is not None
    assert AuditEntry.objects.get(job=job).action == "job.trigger"
    assert queue_length("default") == 2
    statements = [query["sql"] for query in queries.captured_queries]
    # The token, the user's permissions (one statement, not one for the user's and one
    # for the groups'), the job row with its audit entry (one statement and one durable
    # commit, not BEGIN / INSERT / INSERT / COMMIT), then published_at.
    assert len(statements) == 4, statements
    assert sum("auth_permission" in sql for sql in statements) == 1
    [write] = [sql for sql in statements if "INSERT" in sql]
    assert '"jobs_job"' in write and '"core_auditentry"' in write


@pytest.mark.django_db
def test_permissions_come_from_the_users_groups_and_own_grants_and_count_at_once(make_user, client_for):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    user = make_user("vic", role="viewer", staff=True)  # jobs.sleep is staff_only
    body = {"kind": "jobs.sleep", "params": {"seconds": 0}}
    assert client_for(user).post("/api/v1/jobs/", body, format="json").status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="trigger_job", content_type__app_label="jobs"))
    assert client_for(user).post("/api/v1/jobs/", body, format="json").status_code == 202

    user.user_permissions.clear()
    user.groups.add(Group.objects.get(name="operator"))
    assert client_for(user).post("/api/v1/jobs/", body, format="json").status_code == 202

    user.groups.clear()
    assert client_for(user).post("/api/v1/jobs/", body, format="json").status_code == 403

    fresh = get_user_model().objects.get(pk=user.pk)
    assert fresh.get_all_permissions() == set()
    fresh.groups.add(Group.objects.get(name="operator"))
    fresh = get_user_model().objects.get(pk=user.pk)
    assert fresh.get_all_permissions() == fresh.get_group_permissions() | fresh.get_user_permissions()
    assert "jobs.trigger_job" in fresh.get_all_permissions()
    fresh.is_active = False
    assert fresh.get_all_permissions() == set() and not fresh.has_perm("jobs.trigger_job")
    root = make_user("root", superuser=True)
    assert root.get_all_permissions() == {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
