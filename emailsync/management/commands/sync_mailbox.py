"""`manage.py sync_mailbox NAME_OR_ID [--months N] [--groups] [--sync] [--json]`"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.models import TriggerSource
from emailsync.errors import MailboxError
from emailsync.models import Mailbox
from emailsync.selectors import mailboxes_visible_to
from emailsync.services import mailbox_sync, mailbox_sync_enqueue
from jobs.models import ACTIVE_STATUSES, Job, JobStatus

SUMMARY_KEYS = ("folders", "messages_seen", "messages_new", "attachments", "invoices_created", "skipped", "errors")


class Command(BaseCommand):
    help = "Scan one mailbox. --sync runs in this process (no broker); otherwise queues a job and waits for it."

    def add_arguments(self, parser):
        parser.add_argument("mailbox", help="Name or id.")
        parser.add_argument("--months", type=int)
        parser.add_argument("--folders", help="Comma-separated folders (default: the mailbox's).")
        parser.add_argument(
            "--groups",
            action="store_true",
            help="Scan the shared and other users' folders the mailbox may read instead.",
        )
        parser.add_argument("--sync", action="store_true", help="Run here, without a broker or worker.")
        parser.add_argument("--json", action="store_true", help="Print one summary object.")
        parser.add_argument("--no-wait", action="store_true", help="Queue the job and return at once.")

    def handle(self, *args, mailbox, months, folders, sync, json: bool = False, no_wait=False, groups=False, **options):
        box = self._mailbox(mailbox)
        folder_list = [f.strip() for f in folders.split(",") if f.strip()] if folders else None
        if groups and folder_list:
            raise CommandError("--groups finds the shared folders itself; leave out --folders.")
        if sync:
            summary = self._run_here(box, months, folder_list, groups)
        else:
            summary = self._run_as_job(box, months, folder_list, groups, wait=not no_wait)
        if json:
            self.stdout.write(_dumps(summary))
        else:
            self.stdout.write(" ".join(f"{key}={value}" for key, value in summary.items()))
        if summary["status"] not in ("succeeded", "queued", "running"):
            raise CommandError(f"Sync {summary['status']}: {summary.get('error') or ''}".strip())

    def _mailbox(self, name_or_id: str) -> Mailbox:
        box = mailboxes_visible_to(None).filter(name=name_or_id).first()
        if box is None and name_or_id.isdigit():
            box = mailboxes_visible_to(None).filter(pk=int(name_or_id)).first()
        if box is None:
            raise CommandError(f"No mailbox named or numbered {name_or_id!r}.")
        return box

    def _run_here(self, box: Mailbox, months, folders, groups: bool) -> dict:
        def progress(done, total=None, message=None):
            if total:
                self.stderr.write(f"\r{done}/{total} {message or ''}"[:100], ending="")

        try:
            result = mailbox_sync(mailbox=box, progress=progress, months=months, folders=folders, groups=groups)
        except MailboxError as exc:
            return _summary(box, None, "failed", {}, str(exc))
        self.stderr.write("")
        return _summary(box, None, "succeeded", result, None)

    def _run_as_job(self, box: Mailbox, months, folders, groups: bool, *, wait: bool) -> dict:
        job = mailbox_sync_enqueue(
            mailbox=box,
            actor=Actor(user=None, source=TriggerSource.COMMAND),
            months=months,
            folders=folders,
            groups=groups,
        )
        while wait and job.status in ACTIVE_STATUSES:
            time.sleep(0.5)
            job.refresh_from_db()
        return _summary(box, job, job.status, job.result or {}, job.error or None)


def _summary(box: Mailbox, job: Job | None, status: str, counts: dict, error: str | None) -> dict:
    summary = {"mailbox": box.name, "job_id": str(job.pk) if job else None, "status": status}
    summary.update({key: int(counts.get(key, 0)) for key in SUMMARY_KEYS})
    for key in ("group_folders", "refused_folders"):
        if key in counts:
            summary[key] = counts[key]
    if error or (job and job.status == JobStatus.FAILED):
        summary["error"] = error
    return summary


def _dumps(value) -> str:
    return json.dumps(value, default=str)
