"""What the daily review digest (events.ReviewDigest) tells one person: their review queue.

events sends the digest; the queue is ours, so InvoicesConfig.ready hands
`review_digest_message` to events.services.review_digest_source_set.
"""

from __future__ import annotations

from django.conf import settings

from invoices.selectors import review_queue, review_queue_counts

DIGEST_LIST_LIMIT = 25


def review_digest_message(user) -> tuple[str, str] | None:
    """Subject and body of the user's digest: the counts and the oldest invoices of the queue as
    they may see it; None when nothing waits for them."""
    counts = review_queue_counts(user=user)
    if not counts["total"]:
        return None
    oldest = list(review_queue(user=user)[:DIGEST_LIST_LIMIT])
    lines = [
        f"{counts['total']} invoices wait for review: {counts['needs_review']} need review, "
        f"{counts['awaiting_approval']} await approval; {counts['due_soon']} are due soon, "
        f"{counts['unassigned']} are unassigned, {counts['mine']} are yours.",
        "",
    ]
    for invoice in oldest:
        due = f", due {invoice.due_date.isoformat()}" if invoice.due_date else ""
        flag = " (DUE SOON)" if invoice.due_soon else ""
        amount = f" {invoice.total_gross} {invoice.currency}" if invoice.total_gross is not None else ""
        lines.append(
            f"- #{invoice.pk} {invoice.seller_name or invoice.original_filename} "
            f"{invoice.invoice_number}{amount}{due}{flag} [{invoice.get_status_display()}]"
        )
    if counts["total"] > len(oldest):
        lines.append(f"... and {counts['total'] - len(oldest)} more.")
    if settings.EVENTS_SITE_URL:
        lines += ["", f"Open the queue: {settings.EVENTS_SITE_URL.rstrip('/')}/admin/invoices/invoice/"]
    return f"[AP Intake] {counts['total']} invoices wait for review", "\n".join(lines)
