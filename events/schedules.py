from jobs.schedules import DefaultSchedule

DEFAULT_SCHEDULES = [
    DefaultSchedule(
        "events: daily review digest",
        "events.send_review_digests",
        crontab={"minute": "0", "hour": "7"},
        expire_seconds=3600,
        description="Emails each ReviewDigest group what waits for review.",
    ),
]
