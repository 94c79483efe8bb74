"""Helpers every app's REST API shares: who is acting, per-action permissions,
and the one exception handler that turns errors into responses."""

from __future__ import annotations

from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.actors import Actor
from core.errors import ApplicationError, Conflict, Invalid, NotAllowed, NotFound
from core.models import TriggerSource

CODES_BY_STATUS = {NotAllowed.status_code: NotAllowed.code, NotFound.status_code: NotFound.code}


def actor_for(request) -> Actor:
    """The acting user of an API request."""
    return Actor(user=request.user, source=TriggerSource.API)


class HasPermission(BasePermission):
    """Per-action Django permissions: `required_perms = {"create": "invoices.add_invoice"}`."""

    def has_permission(self, request, view) -> bool:
        perm = getattr(view, "required_perms", {}).get(view.action)
        return perm is None or request.user.has_perm(perm)


def error_body(exc: ApplicationError) -> dict:
    """The one JSON shape of an error: `detail` (for people), `code` (for scripts),
    field errors under their field names, and for a conflict the conflicting
    object's public representation."""
    current = exc.current if isinstance(exc, Conflict) else None
    return {**(current or {}), **exc.field_errors, "detail": exc.message, "code": exc.code}


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: ApplicationError -> its status and error_body;
    DRF's own errors keep their body and gain the same `detail` / `code` keys."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc), status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        if "detail" not in response.data:  # a serializer's field errors
            response.data = {**response.data, "detail": Invalid().message, "code": Invalid.code}
        else:
            response.data.setdefault("code", _code_of(exc, response.status_code))
    return response


def _code_of(exc, status_code: int) -> str:
    """Django's and DRF's own refusals use the error model's codes; others keep DRF's
    (not_authenticated, throttled, method_not_allowed, ...)."""
    if status_code in CODES_BY_STATUS:
        return CODES_BY_STATUS[status_code]
    codes = exc.get_codes() if isinstance(exc, APIException) else None
    return codes if isinstance(codes, str) else "error"
