"""`manage.py jobs ...` from the shell."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jobs.models import Job, JobStatus
from jobs.services import job_enqueue

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def run(*args) -> str:
    out = io.StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def test_run_list_show_cancel_retry():
    created = run("run", "jobs.sleep", "--param", "seconds=2", "--param", "steps=4")
    job_id = created.split()[0]
    job = Job.objects.get(pk=job_id)
    assert job.params == {"seconds": 2, "steps": 4} and job.source == "command"

    assert job_id in run("list")
    assert json.loads(run("show", job_id, "--json"))["params"] == {"seconds": 2, "steps": 4}
    assert "cancelled" in run("cancel", job_id, "--reason", "shell")
    retried = run("retry", job_id).split()[0]
    assert Job.objects.get(pk=retried).retry_of_id == job.pk


def test_bad_params_and_unknown_jobs_are_clear_errors():
    with pytest.raises(CommandError, match="Invalid parameters"):
        run("run", "jobs.sleep", "--param", "steps=zero")
    with pytest.raises(CommandError, match="No job"):
        run("show", "not-a-uuid")
    with pytest.raises(CommandError, match="Unknown job kind"):
        run("run", "no.such.kind")


def test_as_user_checks_permissions(make_user):
    make_user("vic", role="viewer")
    job = job_enqueue("jobs.prune", {}, countdown=300)
    with pytest.raises(CommandError, match="No job"):  # not vic's job: invisible to vic
        run("--as", "vic", "cancel", str(job.pk))
    with pytest.raises(CommandError, match="Permission denied"):
        run("--as", "vic", "run", "jobs.sleep")
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_list_filters_dead_letters_as_json():
    dead = job_enqueue("jobs.prune", {}, countdown=300)
    job_enqueue("jobs.sleep", {}, countdown=300)
    Job.objects.filter(pk=dead.pk).update(status=JobStatus.FAILED, is_dead_letter=True)
    rows = [json.loads(line) for line in run("list", "--dead-letter", "--json").splitlines()]
    assert [row["id"] for row in rows] == [str(dead.pk)]
