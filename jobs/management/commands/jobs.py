"""`manage.py jobs list|show|retry|cancel|run`: operate on jobs from the shell."""

from __future__ import annotations

import json
import sys
import time
import uuid

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.commands import OperatorCommand
from jobs.errors import JobParamsInvalid
from jobs.models import ACTIVE_STATUSES, Job, JobStatus
from jobs.selectors import job_time_left, jobs_visible_to
from jobs.services import job_cancel, job_retry, job_terminate, job_trigger

BAR_WIDTH = 30


def parse_param(text: str) -> tuple[str, object]:
    """k=v, with v read as JSON when it parses (numbers, booleans, lists), else as a string."""
    if "=" not in text:
        raise CommandError(f"--param takes key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


class Command(OperatorCommand):
    help = "List, show, run, cancel and retry jobs."

    def add_actions(self, sub) -> None:
        listing = sub.add_parser("list", help="Recent jobs, newest first.")
        listing.add_argument("--status", choices=JobStatus.values)
        listing.add_argument("--kind")
        listing.add_argument("--dead-letter", action="store_true")
        listing.add_argument("--active", action="store_true")
        listing.add_argument("--mine", action="store_true", help="Only jobs started by the --as user.")
        listing.add_argument("--limit", type=int, default=20)
        listing.add_argument("--json", action="store_true")
        show = sub.add_parser("show", help="One job in full.")
        show.add_argument("job_id")
        show.add_argument("--json", action="store_true")
        for name in ("cancel", "retry"):
            action = sub.add_parser(name, help=f"{name.capitalize()} a job.")
            action.add_argument("job_id")
            action.add_argument("--reason", default="")
            if name == "cancel":
                action.add_argument("--terminate", action="store_true", help="Kill the worker process now.")
        run = sub.add_parser("run", help="Start a job of a registered kind.")
        run.add_argument("kind")
        run.add_argument("--param", action="append", default=[], help="key=value (repeatable)")
        run.add_argument("--priority", type=int)
        run.add_argument("--reason", default="")
        when = run.add_mutually_exclusive_group()
        when.add_argument("--at", dest="run_at", help="Start at this ISO 8601 time (e.g. 2026-03-01T09:00:00+01:00).")
        when.add_argument(
            "--in", dest="countdown", type=float, metavar="SECONDS", help="Start this many seconds from now."
        )
        run.add_argument("--wait", action="store_true", help="Show progress until it ends; non-zero if it fails.")

    def _visible_jobs(self):
        return jobs_visible_to(self.actor.user)

    def _job(self, job_id: str) -> Job:
        try:
            return self._visible_jobs().get(pk=uuid.UUID(job_id))
        except (ValueError, Job.DoesNotExist):
            raise CommandError(f"No job {job_id}.") from None

    def do_list(self, *, status, kind, dead_letter, active, limit, mine=False, json: bool = False, **_):
        jobs = self._visible_jobs()
        if mine:
            if self.actor.user is None:
                raise CommandError("--mine needs --as USER (whose jobs?).")
            jobs = jobs.filter(owner=self.actor.user)
        if status:
            jobs = jobs.filter(status=status)
        if kind:
            jobs = jobs.filter(kind=kind)
        if dead_letter:
            jobs = jobs.filter(is_dead_letter=True)
        if active:
            jobs = jobs.filter(status__in=ACTIVE_STATUSES)
        rows = list(jobs.order_by("-created_at")[:limit])
        if json:
            for job in rows:
                self.stdout.write(_dumps(_job_dict(job)))
            return
        self.stdout.write(f"{'id':36}  {'kind':28} {'status':10} {'progress':>9}  {'attempts':>8}  created")
        for job in rows:
            progress = f"{job.progress_done}/{job.progress_total}" if job.progress_total else "-"
            self.stdout.write(
                f"{job.pk}  {job.kind:28} {job.status:10} {progress:>9}  "
                f"{job.attempts}/{job.max_attempts:<6}  {job.created_at:%Y-%m-%d %H:%M:%S}"
            )

    def do_show(self, *, job_id, json: bool = False, **_):
        job = self._job(job_id)
        data = _job_dict(job)
        if json:
            self.stdout.write(_dumps(data))
            return
        for key, value in data.items():
            self.stdout.write(f"{key:>20}: {value}")

    def do_cancel(self, *, job_id, reason, terminate, **_):
        job = self._job(job_id)
        job = (job_terminate if terminate else job_cancel)(job=job, actor=self.actor, reason=reason)
        self.stdout.write(f"{job.pk} {job.status}" + (" (cancel requested)" if job.cancel_requested_at else ""))

    def do_retry(self, *, job_id, reason, **_):
        new_job = job_retry(job=self._job(job_id), actor=self.actor, reason=reason)
        self.stdout.write(f"{new_job.pk} {new_job.status} (retry of {job_id})")

    def do_run(self, *, kind, param, priority, reason, wait, run_at=None, countdown=None, **_):
        params = dict(parse_param(text) for text in param)
        if run_at:
            parsed = parse_datetime(run_at)
            if parsed is None:
                raise CommandError(f"--at {run_at!r} is not an ISO 8601 date and time.")
            run_at = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
        try:
            job = job_trigger(
                kind=kind,
                params=params,
                actor=self.actor,
                priority=priority,
                reason=reason,
                run_at=run_at or None,
                countdown=countdown,
            )
        except JobParamsInvalid as exc:
            raise CommandError(f"Invalid parameters: {json.dumps(exc.errors)}") from exc
        note = " (already active: not started again)" if job.deduplicated else ""
        self.stdout.write(f"{job.pk} {job.status}{note}")
        if wait:
            job = self._wait(job)
            if job.status != JobStatus.SUCCEEDED:
                raise CommandError(f"Job {job.pk} ended {job.status}: {job.error}")
            self.stdout.write(f"result: {_dumps(job.result)}")

    def _wait(self, job: Job) -> Job:
        """A live progress bar until the job ends."""
        while True:
            job.refresh_from_db()
            if job.progress_total:
                filled = int(BAR_WIDTH * job.progress_done / job.progress_total)
                bar = "#" * filled + "-" * (BAR_WIDTH - filled)
                counts = f"{job.progress_done}/{job.progress_total}"
            else:
                bar, counts = "." * BAR_WIDTH, ""
            left = job_time_left(job)
            eta = f" ~{left:.0f}s left" if left is not None else ""
            sys.stdout.write(f"\r[{bar}] {counts} {job.status}{eta} {job.progress_message[:40]:40}")
            sys.stdout.flush()
            if job.status not in ACTIVE_STATUSES:
                sys.stdout.write("\n")
                return job
            time.sleep(0.5)


def _job_dict(job: Job) -> dict:
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "params": job.params,
        "queue": job.queue,
        "priority": job.priority,
        "source": job.source,
        "owner": getattr(job.owner, "username", None),
        "subject": job.subject_label or None,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "message": job.progress_message,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "lost_runs": job.lost_runs,
        "result": job.result,
        "error": job.error or None,
        "dead_letter": job.is_dead_letter,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "worker": job.worker or None,
        "retry_of": str(job.retry_of_id) if job.retry_of_id else None,
    }


def _dumps(value) -> str:
    return json.dumps(value, default=str)
