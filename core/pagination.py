"""Cursor pagination that refuses a forged cursor with a 404 instead of a 500."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class CheckedCursorPagination(CursorPagination):
    """DRF decodes the cursor but passes its position to the database unchecked: a
    cursor edited by hand ("p=not-a-date", a NUL byte) made the filter raise and the
    list answer 500. Here the position must be a valid value of the ordering field."""

    def paginate_queryset(self, queryset, request, view=None):
        self._ordering_model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str | int) -> None:
        if "\x00" in str(position):  # PostgreSQL cannot hold a NUL in text
            raise NotFound(self.invalid_cursor_message)
        model = getattr(self, "_ordering_model", None)
        ordering = self.ordering if isinstance(self.ordering, (list, tuple)) else (self.ordering,)
        if model is None or not ordering:
            return
        try:
            field = model._meta.get_field(ordering[0].lstrip("-"))
        except FieldDoesNotExist:
            return
        try:
            field.get_prep_value(field.to_python(position))
        except (ValidationError, ValueError, TypeError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None
