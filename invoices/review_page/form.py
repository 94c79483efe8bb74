"""The review form's POST as the correction service's changes.

Inputs are named by field path (`total_gross`, `lines[2].quantity`); removed
lines come as `remove=<position>`, new lines as `new-<i>.<field>`. Only values
that differ from what is stored are sent; the service skips the rest anyway.
"""

from __future__ import annotations

from invoices.corrections import HEADER, LINES, PARTIES, PAYMENT, TOTALS
from invoices.models import Invoice
from invoices.selectors import invoice_field_values


def _text(value) -> str:
    return "" if value is None else str(value)


def posted_changes(invoice: Invoice, posted) -> tuple[dict[str, object], list[tuple[int, dict[str, str]]]]:
    """(changes for `invoice_correct`, new lines as (form index, fields)) from a posted review form."""
    values = invoice_field_values(invoice=invoice)
    changes: dict[str, object] = {}
    paths = [spec.name for spec in (*HEADER, *PARTIES, *TOTALS, *PAYMENT)]
    positions = list(invoice.lines.values_list("position", flat=True))
    removed = {int(p) for p in posted.getlist("remove") if p.isdigit() and int(p) in positions}
    for position in positions:
        if position in removed:
            changes[f"lines[{position}]"] = None
        else:
            paths.extend(f"lines[{position}].{spec.name}" for spec in LINES)
    for path in paths:
        if path in posted and posted[path].strip() != _text((values.get(path) or {}).get("value")).strip():
            changes[path] = posted[path]
    new_lines = []
    indexes = sorted(
        {int(key[4:].split(".")[0]) for key in posted if key.startswith("new-") and key[4:].split(".")[0].isdigit()}
    )
    for index in indexes:
        line = {
            spec.name: posted[f"new-{index}.{spec.name}"]
            for spec in LINES
            if posted.get(f"new-{index}.{spec.name}", "").strip()
        }
        if line:
            new_lines.append((index, line))
    return changes, new_lines
