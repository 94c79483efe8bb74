"""Errors of the job core that callers and users act on.

They are kinds of the core error model (core.errors), so the API, the admin
and the commands show them without catching each one by hand.
"""

from __future__ import annotations

from core.errors import ApplicationError, Conflict, Invalid, NotFound


class JobError(ApplicationError):
    """Base class; the message is meant for people."""


class UnknownJobKind(JobError, Invalid):
    """No job kind has that name (400, under `kind`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field_errors={"kind": [message]})


class JobParamsInvalid(JobError, Invalid):
    """Parameters failed the kind's schema; `errors` maps field -> messages (400, under `params`)."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__(f"Invalid job parameters: {errors}", field_errors={"params": errors})


class JobNotAllowed(JobError, Conflict):
    """The job cannot take this action in its current state (409)."""


class JobAlreadyActive(JobError, Conflict):
    """A job with the same unique key is active (409, with that job as the caller may see it)."""

    def __init__(self, *, current: dict) -> None:
        super().__init__("A job for this is already queued or running.", current=current)


class JobSubjectNotFound(JobError, NotFound):
    """The object a job would be about does not exist or is not visible to the caller.

    Both cases give the same message, so an answer never tells whether someone
    else's object exists.
    """


class JobCancelled(Exception):
    """Raised inside a running job at a progress call once cancel was requested.

    Derives from Exception (not JobError) so task code that catches JobError
    does not swallow it by accident.
    """


class JobLost(Exception):
    """The worker no longer owns the job (another worker took it over)."""
