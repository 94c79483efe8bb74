from jobs.schedules import DefaultSchedule

DEFAULT_SCHEDULES = [
    DefaultSchedule(
        "invoices: scan the drop folder",
        "invoices.scan_inbox",
        every_seconds=60,
        expire_seconds=50,
        description="Ingests files put in INVOICE_INBOX_DIR.",
    ),
    DefaultSchedule(
        "invoices: delete old export files",
        "invoices.cleanup_exports",
        every_seconds=3600,
        expire_seconds=3000,
        kwargs={"older_than_hours": 168},
    ),
]
