"""Logging helpers: every line carries the current Celery task, JSON on request."""

import json
import logging

from celery._state import get_current_task


class TaskContextFilter(logging.Filter):
    """Adds task_id and task_name to every record ("-" outside a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = get_current_task()
        request = getattr(task, "request", None) if task else None
        record.task_id = getattr(request, "id", None) or "-"
        record.task_name = getattr(task, "name", None) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": getattr(record, "task_id", "-"),
            "task_name": getattr(record, "task_name", "-"),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
