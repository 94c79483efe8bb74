"""The one error model: services raise these, the API, the admin and the
commands show their message as it is.

`core.api.exception_handler` maps each class to an HTTP status and one JSON
shape: ``{"detail": message, "code": code, **field_errors, **current}``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class ApplicationError(Exception):
    """An error a person can act on; `message` is meant for people.

    `field_errors` maps a field name to a list of messages (shown beside the
    field in a form, under that key in the API).
    """

    status_code = 400
    code = "error"

    def __init__(self, message: str = "", *, field_errors: dict | None = None) -> None:
        self.message = message or self.default_message()
        self.field_errors = dict(field_errors or {})
        super().__init__(self.message)

    def default_message(self) -> str:
        return "The request could not be completed."


class Invalid(ApplicationError):
    """The input is wrong (400); `field_errors` says which field and why."""

    status_code = 400
    code = "invalid"

    def default_message(self) -> str:
        return "Invalid input."


class NotAllowed(ApplicationError, PermissionDenied):
    """The actor may not do this (403). Also a Django PermissionDenied, so the
    admin and Django's own views treat it as one."""

    status_code = 403
    code = "not_allowed"

    def default_message(self) -> str:
        return "You do not have permission to do that."


class NotFound(ApplicationError):
    """The object does not exist, or the actor may not see it (404)."""

    status_code = 404
    code = "not_found"

    def default_message(self) -> str:
        return "Not found."


class Conflict(ApplicationError):
    """The object's current state does not allow this (409).

    `current` is the conflicting object's public representation (a dict), when
    the caller should see it: e.g. the job already active under the same key.
    Its keys are merged into the response body next to `detail` and `code`.
    """

    status_code = 409
    code = "conflict"

    def __init__(self, message: str = "", *, current: dict | None = None, field_errors: dict | None = None) -> None:
        super().__init__(message, field_errors=field_errors)
        self.current = current

    def default_message(self) -> str:
        return "The object is not in a state that allows this."
