"""`manage.py invoices review-queue|correct`: the review desk from the shell (same services as the API)."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from core.commands import OperatorCommand
from invoices.corrections import InvalidCorrection
from invoices.money import money_or_none
from invoices.selectors import ReviewFilters, invoices_visible_to, review_queue, review_queue_counts
from invoices.services import invoice_correct


class Command(OperatorCommand):
    help = "The review queue, and corrections of invoice fields."

    def add_actions(self, sub) -> None:
        queue = sub.add_parser("review-queue", help="Invoices waiting for a person, oldest first.")
        queue.add_argument("--mine", action="store_true", help="Assigned to the --as user.")
        queue.add_argument("--unassigned", action="store_true")
        queue.add_argument("--vendor", help="Vendor id.")
        queue.add_argument("--rule", help="Only invoices with an issue of this rule code.")
        queue.add_argument("--amount-min")
        queue.add_argument("--amount-max")
        queue.add_argument("--due-before", help="YYYY-MM-DD")
        queue.add_argument("--limit", type=int, default=50)
        queue.add_argument("--json", action="store_true", help="One JSON object: counts and invoices.")
        correct = sub.add_parser("correct", help="Correct one field of an invoice (stored as a correction).")
        correct.add_argument("invoice_id", type=int)
        correct.add_argument("field", help="e.g. total_gross, seller_vat_id, lines[2].quantity, lines[3] (remove)")
        correct.add_argument(
            "value",
            help='The new value; "" clears; for lines[N] "null" removes the line, for lines[+] a JSON object adds one.',
        )
        correct.add_argument("--reason", default="")
        correct.add_argument("--revalidate", action="store_true", help="Run every rule on the corrected values.")
        correct.add_argument("--json", action="store_true")

    def do_review_queue(
        self, *, mine, unassigned, vendor, rule, amount_min, amount_max, due_before, limit, json: bool, **_
    ):
        if mine and self.user is None:
            raise CommandError("--mine needs --as USER.")
        try:
            filters = ReviewFilters.from_query(
                {
                    "mine": mine,
                    "unassigned": unassigned,
                    "vendor": vendor,
                    "rule": rule,
                    "amount_min": amount_min,
                    "amount_max": amount_max,
                    "due_before": due_before,
                }
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        counts = review_queue_counts(user=self.user, filters=filters)
        rows = list(review_queue(user=self.user, filters=filters).prefetch_related("issues")[: max(0, limit)])
        if json:
            self._print_json({"counts": counts, "invoices": [_queue_row(invoice) for invoice in rows]})
            return
        self.stdout.write(
            f"{counts['total']} waiting: {counts['needs_review']} need review, "
            f"{counts['awaiting_approval']} await approval, {counts['due_soon']} due soon, "
            f"{counts['unassigned']} unassigned"
        )
        for invoice in rows:
            row = _queue_row(invoice)
            flag = " DUE SOON" if row["due_soon"] else ""
            self.stdout.write(
                f"{row['invoice_id']:>7}  {row['status']:<12} {row['created_at'][:16]}  "
                f"{(row['seller_name'] or row['file'])[:30]:<30} {row['invoice_number'] or '':<16} "
                f"{row['total_gross'] or '':>12} {row['currency'] or '':<3} "
                f"due {row['due_date'] or '-':<10}{flag}  "
                f"{row['assigned_to'] or '-'}  {','.join(row['issue_codes'])}"
            )

    def do_correct(self, *, invoice_id: int, field: str, value: str, reason: str, revalidate: bool, json: bool, **_):
        invoice = invoices_visible_to(self.user).filter(pk=invoice_id).first()
        if invoice is None:
            raise CommandError(f"There is no invoice {invoice_id}.")
        try:
            rows = invoice_correct(
                invoice=invoice,
                changes={field: _value(field, value)},
                actor=self.actor,
                reason=reason,
                revalidate=revalidate,
            )
        except InvalidCorrection as exc:
            raise CommandError(
                "; ".join(f"{path}: {' '.join(messages)}" for path, messages in exc.errors.items())
            ) from None
        result = {
            "invoice_id": invoice.pk,
            "status": invoice.status,
            "corrections": [
                {
                    "field_path": row.field_path,
                    "extracted_value": row.extracted_value,
                    "previous_value": row.previous_value,
                    "new_value": row.new_value,
                }
                for row in rows
            ],
            "issues": [
                {"code": issue.code, "severity": issue.severity, "message": issue.message}
                for issue in invoice.issues.all()
            ],
        }
        if json:
            self._print_json(result)
            return
        if not rows:
            self.stdout.write(f"Invoice {invoice.pk}: {field} already has that value; nothing changed.")
            return
        for row in rows:
            self.stdout.write(
                f"Invoice {invoice.pk}: {row.field_path} {row.previous_value!r} -> {row.new_value!r} "
                f"(extracted {row.extracted_value!r})"
            )
        if revalidate:
            self.stdout.write(f"Re-validated: {invoice.status}, {len(result['issues'])} issues")

    def _print_json(self, data) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False))


def _value(field: str, value: str):
    """Line additions and removals take JSON (an object, or null); every other field takes the text."""
    if field.startswith("lines[") and "." not in field:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise CommandError(f"{field} takes JSON: null to remove the line, an object to add one.") from None
    return value


def _queue_row(invoice) -> dict:
    return {
        "invoice_id": invoice.pk,
        "status": invoice.status,
        "created_at": invoice.created_at.isoformat(),
        "file": invoice.original_filename,
        "seller_name": invoice.seller_name or None,
        "invoice_number": invoice.invoice_number or None,
        "total_gross": money_or_none(invoice.total_gross),
        "currency": invoice.currency or None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "due_soon": invoice.due_soon,
        "awaiting_approval": invoice.awaiting_approval,
        "assigned_to": invoice.assigned_to.get_username() if invoice.assigned_to_id else None,
        "issue_codes": sorted({issue.code for issue in invoice.issues.all()}),
    }
