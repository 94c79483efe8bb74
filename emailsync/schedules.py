from jobs.schedules import DefaultSchedule

DEFAULT_SCHEDULES = [
    DefaultSchedule(
        "emailsync: scan every enabled mailbox",
        "emailsync.sync_all_mailboxes",
        every_seconds=300,
        expire_seconds=240,
        description="Queues one sync per enabled mailbox (one active per mailbox).",
    ),
]
