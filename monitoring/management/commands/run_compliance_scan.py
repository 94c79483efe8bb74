"""manage.py run_compliance_scan [--full] [--sync] [--json]: check the invoices against the policy rules."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.models import TriggerSource
from monitoring.compliance import compliance_scan_run, scan_outcome
from monitoring.models import ScanRun
from monitoring.services import scan_trigger


class Command(BaseCommand):
    help = (
        "Run a compliance scan: as a job for the workers (default), or in this process with --sync. "
        "Incremental unless --full."
    )

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Check every invoice against every rule.")
        parser.add_argument("--sync", action="store_true", help="Run here and now instead of as a job.")
        parser.add_argument("--json", action="store_true", help="Print the outcome as JSON.")

    def handle(self, *args, **options):
        mode = ScanRun.Mode.FULL if options["full"] else ScanRun.Mode.INCREMENTAL
        if options["sync"]:
            try:
                scan = compliance_scan_run(mode=mode)
            except Exception as exc:
                raise CommandError(f"The scan failed: {exc}") from exc
            outcome = scan_outcome(scan)
        else:
            job = scan_trigger(actor=Actor(user=None, source=TriggerSource.COMMAND), mode=mode)
            outcome = {"job_id": str(job.pk), "mode": mode, "status": job.status, "already_running": job.deduplicated}
        if options["json"]:
            self.stdout.write(json.dumps(outcome))
        else:
            self.stdout.write(", ".join(f"{key}: {value}" for key, value in outcome.items()))
