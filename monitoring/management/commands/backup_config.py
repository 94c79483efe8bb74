"""manage.py backup_config [--output PATH]: write the configuration (no secrets) as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from monitoring.backup import config_backup_data, config_backup_write


class Command(BaseCommand):
    help = (
        "Back up schedules, alert and policy rules, runtime budgets, validation rule settings, vendors and "
        "mailboxes (without secrets) to a JSON file; restore with restore_config."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            help="File to write ('-' for standard output). Default: a new config-<time>.json in MONITORING_BACKUP_DIR.",
        )

    def handle(self, *args, **options):
        output = options.get("output")
        if output == "-":
            self.stdout.write(json.dumps(config_backup_data(), indent=2, sort_keys=True))
            return
        if output:
            path = Path(output)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(config_backup_data(), indent=2, sort_keys=True), encoding="utf-8")
        else:
            path = config_backup_write()
        self.stdout.write(self.style.SUCCESS(f"Configuration written to {path}"))
