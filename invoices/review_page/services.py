"""Saving the review form: one all-or-nothing correction through the correction service."""

from __future__ import annotations

from django.db import transaction

from core.actors import Actor
from core.audit import audit_record
from invoices.corrections import InvalidCorrection
from invoices.models import Invoice, InvoiceCorrection
from invoices.services import invoice_correct, invoice_validate


def review_form_save(
    *,
    invoice: Invoice,
    changes: dict[str, object],
    new_lines: list[tuple[int, dict]],
    actor: Actor,
    reason: str = "",
    revalidate: bool = False,
) -> list[InvoiceCorrection]:
    """Apply the form's field changes and new lines as corrections, atomically; re-validate if asked.

    The correction service takes one new line per call, so each new line is one
    more call inside the same transaction: any refused value (InvalidCorrection,
    with paths of new lines renamed to the form's `new-<i>.<field>`) saves nothing.
    Re-validation with nothing changed runs every rule on the stored values.
    """
    made: list[InvoiceCorrection] = []
    calls = ([(None, changes)] if changes else []) + [(index, {"lines[+]": line}) for index, line in new_lines]
    with transaction.atomic():
        for number, (index, call) in enumerate(calls, start=1):
            last = number == len(calls)
            try:
                made += invoice_correct(
                    invoice=invoice, changes=call, actor=actor, reason=reason, revalidate=revalidate and last
                )
            except InvalidCorrection as exc:
                if index is None:
                    raise
                raise InvalidCorrection(
                    {path.replace("lines[+]", f"new-{index}"): messages for path, messages in exc.errors.items()}
                ) from exc
        if revalidate and not calls:
            invoice_validate(invoice=invoice)
            audit_record(
                actor=actor,
                action="invoice.revalidate",
                target=invoice,
                reason=reason,
                details={"issues": invoice.issue_count, "status": invoice.status},
            )
    return made
