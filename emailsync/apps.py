from django.apps import AppConfig


class EmailsyncConfig(AppConfig):
    name = "emailsync"
