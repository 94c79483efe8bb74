"""Job kinds: what each tracked task is, where it runs and who may start it.

Kinds are declared with `jobs.registry.job_kind` (which also registers the
Celery task); this module only holds and looks them up, so the job runtime
(jobs.tracked, jobs.services) can read kinds without importing the decorator.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from kombu.exceptions import OperationalError as BrokerOperationalError
from rest_framework import serializers

from jobs.errors import JobParamsInvalid, UnknownJobKind

# Errors that say "try again later", not "this input is wrong".
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    socket.gaierror,
)


class NoParams(serializers.Serializer):
    """Parameter schema of a kind that takes none."""


@dataclass(frozen=True)
class JobSubject:
    """The object a kind's job is about: the parameter naming it, and who may see it.

    A person triggering a job resolves the subject through `visible_to`, the same
    selector the object's own endpoints use, so a job can never reach an object
    its caller could not open. System callers (user None) see every object.
    """

    param: str
    noun: str
    everything: Callable[[], QuerySet]
    visible_to: Callable[[Any], QuerySet]

    def resolve(self, params: dict, user=None):
        objects = self.everything() if user is None else self.visible_to(user)
        return objects.filter(pk=params.get(self.param)).first()


@dataclass(frozen=True)
class JobKind:
    name: str
    func: Callable[..., Any]
    label: str = ""
    description: str = ""
    queue: str = "default"
    priority: int = 5
    params: type[serializers.Serializer] = NoParams
    permission: str = "jobs.trigger_job"
    staff_only: bool = False
    user_triggerable: bool = True
    # Unless a kind sets its own: JOB_DEFAULT_SOFT_TIME_LIMIT / JOB_DEFAULT_TIME_LIMIT.
    soft_time_limit: int = field(default_factory=lambda: settings.JOB_DEFAULT_SOFT_TIME_LIMIT)
    time_limit: int = field(default_factory=lambda: settings.JOB_DEFAULT_TIME_LIMIT)
    max_attempts: int = 3
    # Poison-pill limit: runs lost with their worker before the job is a dead letter
    # (None: JOB_MAX_LOST_RUNS).
    max_lost_runs: int | None = None
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS
    # A str.format template over the parameters, e.g. "mailbox:{mailbox_id}".
    unique_key: str | None = None
    # The model instance the job is about, resolved from its parameters.
    subject: JobSubject | None = None
    # Called as authorize(user=, subject=, params=) before a person's trigger is
    # written; raises to refuse (e.g. a state the object must not be re-run in).
    authorize: Callable[..., None] | None = None
    extra: dict = field(default_factory=dict)

    def validate(self, params: dict | None) -> dict:
        """Validated, JSON-native parameters, or JobParamsInvalid with field errors."""
        serializer = self.params(data=params or {})
        if not serializer.is_valid():
            raise JobParamsInvalid(serializer.errors)
        # Round-trip through JSON so what is stored is exactly what the task gets.
        return json.loads(json.dumps(serializer.validated_data, cls=DjangoJSONEncoder))

    def lost_runs_limit(self) -> int:
        """How many lost runs (worker killed under the job) end it as a dead letter."""
        return self.max_lost_runs if self.max_lost_runs is not None else settings.JOB_MAX_LOST_RUNS

    def unique_key_for(self, params: dict) -> str | None:
        if not self.unique_key:
            return None
        return self.unique_key.format(**params)

    def may_trigger(self, user) -> bool:
        """Whether this user may start this kind by hand (API, admin, command)."""
        if not self.user_triggerable or user is None or not user.is_authenticated:
            return False
        if self.staff_only and not user.is_staff:
            return False
        return user.has_perm(self.permission)


_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> None:
    """Make a kind known under its name (jobs.registry.job_kind calls this)."""
    _KINDS[kind.name] = kind


def find_kind(name: str) -> JobKind | None:
    """The kind of that name, or None (a plain Celery task, or nothing)."""
    return _KINDS.get(name)


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownJobKind(f"Unknown job kind {name!r}.") from None


def all_kinds() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)


def kinds_for_user(user) -> list[JobKind]:
    return [kind for kind in all_kinds() if kind.may_trigger(user)]


def params_json_schema(kind: JobKind) -> dict:
    """A JSON Schema of the kind's parameters, for the API and the admin form."""
    properties: dict[str, dict] = {}
    required: list[str] = []
    for name, field_ in kind.params().fields.items():
        properties[name] = _field_schema(field_)
        if field_.required:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _field_schema(field_: serializers.Field) -> dict:
    schema: dict[str, Any]
    if isinstance(field_, serializers.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field_, serializers.IntegerField):
        schema = {"type": "integer"}
    elif isinstance(field_, serializers.FloatField | serializers.DecimalField):
        schema = {"type": "number"}
    elif isinstance(field_, serializers.ChoiceField):
        schema = {"enum": list(field_.choices)}
    elif isinstance(field_, serializers.ListField):
        schema = {"type": "array", "items": _field_schema(field_.child)}
    elif isinstance(field_, serializers.DateField):
        schema = {"type": "string", "format": "date"}
    else:
        schema = {"type": "string"}
    for attr, key in (("min_value", "minimum"), ("max_value", "maximum"), ("max_length", "maxLength")):
        value = getattr(field_, attr, None)
        if value is not None:
            schema[key] = value
    if field_.help_text:
        schema["description"] = str(field_.help_text)
    if field_.default is not serializers.empty:
        schema["default"] = field_.default
    return schema
