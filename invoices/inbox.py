"""The drop folder: files put in INVOICE_INBOX_DIR are ingested and moved to
processed/ (or failed/ when they could not even be read from disk)."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from django.conf import settings

from invoices.models import InvoiceSource

logger = logging.getLogger(__name__)

# A file modified this recently may still be being copied in.
SETTLE_SECONDS = 2.0
DONE_FOLDERS = ("processed", "failed")


def inbox_scan(*, directory: Path | None = None, progress=None) -> dict:
    """Ingest every settled file below the inbox (not in processed/ or failed/)."""
    from invoices.services import invoice_ingest

    inbox = Path(directory or settings.INVOICE_INBOX_DIR)
    inbox.mkdir(parents=True, exist_ok=True)
    files = [path for path in sorted(inbox.rglob("*")) if _waiting(path, inbox)]
    counts = {"files": len(files), "ingested": 0, "failed": 0}
    for done, path in enumerate(files, start=1):
        try:
            content = path.read_bytes()
        except OSError as exc:
            logger.warning("Cannot read %s from the inbox: %s", path, exc)
            _move(path, inbox, "failed")
            counts["failed"] += 1
            continue
        invoice_ingest(content=content, filename=path.name, source=InvoiceSource.FOLDER,
                       source_ref=str(path.relative_to(inbox)))
        _move(path, inbox, "processed")
        counts["ingested"] += 1
        if progress:
            progress(done, len(files), path.name)
    return counts


def _waiting(path: Path, inbox: Path) -> bool:
    relative = path.relative_to(inbox)
    if relative.parts[0] in DONE_FOLDERS or path.name.startswith("."):
        return False
    try:
        return path.is_file() and not path.is_symlink() and time.time() - path.stat().st_mtime >= SETTLE_SECONDS
    except OSError:
        return False


def _move(path: Path, inbox: Path, folder: str) -> Path:
    """Move below inbox/<folder>/, keeping the relative path; never overwrite."""
    target = inbox / folder / path.relative_to(inbox)
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, counter = target, 1
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}.{counter}{target.suffix}")
        counter += 1
    shutil.move(str(path), candidate)
    return candidate
