"""`manage.py import_invoices PATH... [--sync] [--json]`"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from invoices.models import InvoiceSource
from invoices.representation import invoice_as_dict
from invoices.services import invoice_import_sync, invoice_ingest_many

# Files ingested per commit (and per broker round trip for their jobs).
BATCH_SIZE = 100


def files_under(paths: list[str]) -> list[Path]:
    """The files named, and every file below the folders named, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"No such file or folder: {raw}")
    return found


class Command(BaseCommand):
    help = (
        "Ingest invoice files (or folders, recursively). --sync runs extraction and validation here, with no "
        "broker; --json prints one JSON object per file. Exit 0 when every file was ingested, even if some "
        "ended failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--sync", action="store_true", help="Run the whole pipeline in this process.")
        parser.add_argument("--json", action="store_true", help="One JSON object per file, one per line.")

    def handle(self, *args, paths, sync, json: bool = False, **options):
        files = files_under(paths)
        not_ingested = 0
        batch: list[tuple[Path, bytes]] = []
        for path in files:
            try:
                content = path.read_bytes()
            except OSError as exc:
                if batch:  # keep the report in file order
                    self._ingest(batch, json)
                    batch = []
                not_ingested += 1
                self._report(
                    json,
                    {
                        "file": str(path),
                        "invoice_id": None,
                        "status": "not_ingested",
                        "error": f"Cannot read the file: {exc.strerror}",
                    },
                )
                continue
            if sync:
                invoice = invoice_import_sync(content=content, filename=path.name, source=InvoiceSource.COMMAND)
                self._report(json, invoice_as_dict(invoice, file=str(path)))
                continue
            batch.append((path, content))
            if len(batch) >= BATCH_SIZE:
                self._ingest(batch, json)
                batch = []
        if batch:
            self._ingest(batch, json)
        if not_ingested:
            raise CommandError(f"{not_ingested} of {len(files)} files could not be ingested.")

    def _ingest(self, batch: list[tuple[Path, bytes]], as_json: bool) -> None:
        # One commit and one job_enqueue_many per batch, not one job per file.
        invoices = invoice_ingest_many(
            [(content, path.name, str(path)) for path, content in batch], source=InvoiceSource.COMMAND
        )
        for (path, _), invoice in zip(batch, invoices, strict=True):
            self._report(as_json, invoice_as_dict(invoice, file=str(path)))

    def _report(self, as_json: bool, data: dict) -> None:
        if as_json:
            self.stdout.write(json.dumps(data, ensure_ascii=False))
            return
        issues = len(data.get("issues") or [])
        detail = data.get("error") or (f"{issues} issue(s)" if issues else "")
        self.stdout.write(f"{data['status']:12} {data.get('invoice_number') or '-':20} {data['file']}  {detail}")
