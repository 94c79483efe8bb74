from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    # What each role may do in monitoring (core.roles assembles the groups).
    role_permissions = {
        "operator": ["monitoring.run_scan"],
        "ap_clerk": ["monitoring.run_scan"],
        "ap_approver": ["monitoring.run_scan"],
    }

    def ready(self) -> None:
        from monitoring import signals, tasks  # noqa: F401  (registers the job kinds and signal handlers)
