from django.apps import AppConfig

MAILBOX_WORK = [
    "emailsync.view_mailbox",
    "emailsync.add_mailbox",
    "emailsync.change_mailbox",
    "emailsync.delete_mailbox",
    "emailsync.sync_mailbox",
    "emailsync.view_mailmessage",
]


class EmailsyncConfig(AppConfig):
    name = "emailsync"
    verbose_name = "Email sync"
    # What each role may do with mailboxes (core.roles assembles the groups).
    role_permissions = {
        "viewer": ["emailsync.view_mailbox"],
        "ap_clerk": MAILBOX_WORK,
        "ap_approver": MAILBOX_WORK,
    }

    def ready(self) -> None:
        from emailsync import tasks  # noqa: F401  (registers the job kinds)
