"""The keys of an invoice in the JSON contract (ARCHITECTURE.md: `import_invoices --json` lines and
the JSON export), written out here rather than read from the code, so a key the code drops fails."""

CONTRACT_KEYS = {
    "file",
    "invoice_id",
    "status",
    "format",
    "invoice_number",
    "type",
    "issue_date",
    "due_date",
    "currency",
    "seller_name",
    "seller_vat_id",
    "buyer_name",
    "total_net",
    "tax_total",
    "total_gross",
    "amount_due",
    "line_count",
    "issues",
    "error",
}
