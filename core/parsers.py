"""Request body parsers for the API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deeper than any body the API accepts needs (job parameters are flat objects).
MAX_JSON_DEPTH = 64


class DepthLimitedJSONParser(JSONParser):
    """JSON that refuses deep nesting with a 400.

    Python's decoder raises RecursionError (not ValueError) at about 1,000 levels, which
    DRF turned into a 500 for anyone, logged in or not; bodies nested less deeply than
    that can still exhaust the recursion of whatever walks them later.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data


def _depth_exceeds(data, limit: int) -> bool:
    # Iterative, so checking a deep value cannot itself overflow the stack.
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
