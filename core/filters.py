"""Query-string filters shared by the API's lists."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC before it reaches the database.

    PostgreSQL refuses offsets beyond +-15:59 ("time zone displacement out of range"),
    which the ISO parser accepts: `?created_after=0257-04-02T05:06:02+17:31` was a 500.
    """

    def clean(self, value):
        cleaned = super().clean(value)
        if cleaned is None:
            return None
        try:
            return cleaned.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("The date and time is out of range.", code="invalid") from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """IsoDateTimeFilter whose value is normalised to UTC (see UTCIsoDateTimeField)."""

    field_class = UTCIsoDateTimeField
