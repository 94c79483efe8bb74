"""Errors of the job core that callers and users act on."""


class JobError(Exception):
    """Base class; the message is meant for people."""


class UnknownJobKind(JobError):
    pass


class JobParamsInvalid(JobError):
    """Parameters failed the kind's schema; `errors` maps field -> messages."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__(f"Invalid job parameters: {errors}")


class JobNotAllowed(JobError):
    """The job cannot take this action in its current state."""


class JobSubjectNotFound(JobError):
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
