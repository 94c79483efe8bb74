"""manage.py health [--json]: run the health checks; exit 0 when healthy, 1 when not."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from monitoring.health import health_report


class Command(BaseCommand):
    help = "Run the health checks (database, migrations, broker, cache, storage, disk, workers, beat)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the report as one JSON object.")

    def handle(self, *args, **options):
        report = health_report()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            width = max(len(check.name) for check in report.checks)
            for check in report.checks:
                verdict = self.style.SUCCESS("ok") if check.ok else self.style.ERROR("error")
                detail = f"  {check.error}" if check.error else ""
                self.stdout.write(f"{check.name.ljust(width)}  {verdict}{detail}")
            summary = "healthy" if report.healthy else "UNHEALTHY"
            self.stdout.write((self.style.SUCCESS if report.healthy else self.style.ERROR)(summary))
        self.stdout.flush()
        sys.exit(0 if report.healthy else 1)
