"""Export writers: selected invoices as one file for the ERP (CSV, JSON, or a zip of UBL 2.1 documents).

The writers are pure functions over invoices whose `lines` (and, for JSON,
`issues`) are prefetched; they return bytes and write nothing. The export
service decides which invoices go out and where the file is stored.

    content = export_content("csv", Invoice.objects.filter(...).prefetch_related("lines", "issues"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from invoices.export.csv_writer import write_csv
from invoices.export.json_writer import invoice_export_dict, write_json
from invoices.export.ubl_writer import UblExportError, ubl_invoice_xml, write_ubl_zip
from invoices.models import ExportFormat, Invoice

__all__ = [
    "WRITERS",
    "ExportWriter",
    "UblExportError",
    "export_content",
    "invoice_export_dict",
    "ubl_invoice_xml",
    "write_csv",
    "write_json",
    "write_ubl_zip",
]


@dataclass(frozen=True)
class ExportWriter:
    """One export format: how to write it, and how the file is named and served."""

    write: Callable[[Iterable[Invoice]], bytes]
    extension: str
    content_type: str


WRITERS: dict[str, ExportWriter] = {
    ExportFormat.CSV: ExportWriter(write_csv, "csv", "text/csv; charset=utf-8"),
    ExportFormat.JSON: ExportWriter(write_json, "json", "application/json"),
    ExportFormat.UBL: ExportWriter(write_ubl_zip, "zip", "application/zip"),
}


def export_content(export_format: str, invoices: Iterable[Invoice]) -> bytes:
    """The file for these invoices in the given format ("csv", "json" or "ubl").

    Raises UblExportError (a ValueError with a message for people) when an invoice
    cannot be written as UBL, and ValueError for an unknown format.
    """
    try:
        writer = WRITERS[export_format]
    except KeyError:
        raise ValueError(f"Unknown export format {export_format!r}; use one of {', '.join(WRITERS)}.") from None
    return writer.write(invoices)
