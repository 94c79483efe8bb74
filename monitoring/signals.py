"""Celery signal handlers of monitoring."""

from __future__ import annotations

import logging

from celery.signals import beat_embedded_init, beat_init
from django.db import close_old_connections
from django.utils import timezone

from monitoring.models import Heartbeat

logger = logging.getLogger(__name__)


@beat_init.connect
@beat_embedded_init.connect
def record_beat_start(sender=None, **kwargs) -> None:
    """Record beat's heartbeat the moment beat starts.

    Otherwise the first heartbeat is written one interval after start (when the
    heartbeat task first runs) and a fresh stack reports `beat` unhealthy for
    30-60 s. A database that is not there yet must not stop beat starting.
    """
    try:
        Heartbeat.objects.update_or_create(name="beat", defaults={"beat_at": timezone.now()})
    except Exception as exc:
        logger.warning("Could not record beat's start heartbeat: %s", exc)
    finally:
        close_old_connections()
