"""The drop folder: files put in INVOICE_INBOX_DIR are ingested and moved to
processed/ (or failed/ when they could not even be read from disk)."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from django.conf import settings

from invoices.models import InvoiceSource
from invoices.services import invoice_ingest_many

logger = logging.getLogger(__name__)

# A file modified this recently may still be being copied in.
SETTLE_SECONDS = 2.0
DONE_FOLDERS = ("processed", "failed")
# Files ingested per commit (and per broker round trip for their jobs).
BATCH_SIZE = 100


def inbox_scan(*, directory: Path | None = None, progress=None, batch_size: int = BATCH_SIZE) -> dict:
    """Ingest every settled file below the inbox (not in processed/ or failed/).

    Files go in batches: a batch's invoices and their processing jobs are one
    commit (invoice_ingest_many: one INSERT of jobs, one broker round trip), and
    its files move to processed/ only after it: a crash mid-batch leaves them in
    the inbox with nothing recorded, and the next scan ingests them.
    """
    inbox = Path(directory or settings.INVOICE_INBOX_DIR)
    inbox.mkdir(parents=True, exist_ok=True)
    files = [path for path in sorted(inbox.rglob("*")) if _waiting(path, inbox)]
    counts = {"files": len(files), "ingested": 0, "failed": 0}
    done = 0
    for start in range(0, len(files), batch_size):
        batch: list[tuple[Path, bytes]] = []
        for path in files[start : start + batch_size]:
            try:
                batch.append((path, path.read_bytes()))
            except OSError as exc:
                logger.warning("Cannot read %s from the inbox: %s", path, exc)
                _move(path, inbox, "failed")
                counts["failed"] += 1
        invoice_ingest_many(
            [(content, path.name, str(path.relative_to(inbox))) for path, content in batch], source=InvoiceSource.FOLDER
        )
        for path, _ in batch:
            _move(path, inbox, "processed")
            counts["ingested"] += 1
        done = min(start + batch_size, len(files))
        if progress and files:
            progress(done, len(files), files[done - 1].name)
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
