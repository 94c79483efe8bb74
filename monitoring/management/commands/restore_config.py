"""manage.py restore_config PATH [--dry-run]: create or update the configuration from a backup."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.models import TriggerSource
from monitoring.backup import BackupInvalid, config_backup_read, config_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by backup_config: rows are matched by name (vendors by VAT id), updated or "
        "created through each app's save service (checked and audited as saves by the restorer; a refused "
        "row is skipped with the reason); nothing is deleted. Secrets are not in backups: set mailbox "
        "passwords with add_mailbox, and new event subscriptions' signing secrets in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The backup file.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change, change nothing.")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, **options):
        try:
            data = config_backup_read(Path(options["path"]))
        except BackupInvalid as exc:
            raise CommandError(str(exc)) from exc
        summary = config_restore(
            data=data, actor=Actor(user=None, source=TriggerSource.COMMAND), dry_run=options["dry_run"]
        )
        if options["json"]:
            self.stdout.write(json.dumps({**summary.as_dict(), "dry_run": options["dry_run"]}))
            return
        prefix = "Would restore" if options["dry_run"] else "Restored"
        for section in sorted(set(summary.created) | set(summary.updated)):
            self.stdout.write(
                f"{prefix} {section}: {summary.created.get(section, 0)} created, "
                f"{summary.updated.get(section, 0)} updated"
            )
        for skipped in summary.skipped:
            self.stdout.write(self.style.WARNING(f"skipped {skipped}"))
        for note in summary.notes:
            self.stdout.write(f"note: {note}")
