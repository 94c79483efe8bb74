"""Operator actions of monitoring: start a compliance scan (running a schedule now is
jobs.services.schedule_run_now).

Each one checks the actor's permission and is audited, whether it comes from
the admin, the API or manage.py.
"""

from __future__ import annotations

import logging

from core.actors import Actor, require_permission
from jobs.models import Job
from jobs.services import job_trigger
from monitoring.models import ScanRun

logger = logging.getLogger(__name__)

SCAN_KIND = "monitoring.compliance_scan"


def scan_trigger(*, actor: Actor, mode: str = ScanRun.Mode.FULL, reason: str = "") -> Job:
    """Start a compliance scan as a job (or return the one already running: `job.deduplicated`)."""
    require_permission(actor.user, "monitoring.run_scan")
    return job_trigger(kind=SCAN_KIND, params={"mode": mode}, actor=actor, reason=reason)
