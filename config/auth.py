"""The API token endpoint, throttled against password guessing.

DRF's `obtain_auth_token` has no throttle at all. Here every attempt counts
against two buckets: the user name (however many addresses a guesser uses) and
the client address (however many user names it tries). Once either is empty,
even the right password waits (429 with Retry-After), so a guesser learns
nothing from the answer.
"""

from __future__ import annotations

import hashlib
import logging

from drf_spectacular.utils import extend_schema
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.throttling import SimpleRateThrottle

from core.parsers import DepthLimitedJSONParser

logger = logging.getLogger(__name__)

# Logged user names are cut: the name is attacker input.
_LOGGED_NAME_CHARS = 150


def _submitted_username(request) -> str:
    try:
        username = request.data.get("username", "")
    except AttributeError:  # a JSON list or scalar body
        return ""
    return username.strip().lower() if isinstance(username, str) else ""


class LoginUserRateThrottle(SimpleRateThrottle):
    """Token requests per submitted user name (`API_THROTTLE_LOGIN_USER`)."""

    scope = "login-user"

    def get_cache_key(self, request, view):
        username = _submitted_username(request)
        if not username:
            return None  # no name, nothing to guess: the address bucket still counts it
        digest = hashlib.sha256(username.encode()).hexdigest()  # bounded, safe cache key
        return self.cache_format % {"scope": self.scope, "ident": digest}


class LoginAddressRateThrottle(SimpleRateThrottle):
    """Token requests per client address (`API_THROTTLE_LOGIN_IP`)."""

    scope = "login-ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ThrottledObtainAuthToken(ObtainAuthToken):
    """POST a user name and password, get the user's API token."""

    throttle_classes = (LoginAddressRateThrottle, LoginUserRateThrottle)
    parser_classes = (FormParser, MultiPartParser, DepthLimitedJSONParser)

    @extend_schema(
        request=AuthTokenSerializer, responses={200: {"type": "object", "properties": {"token": {"type": "string"}}}}
    )
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # Who and from where, never the password.
            logger.warning(
                "API token refused for user name %r from %s",
                _submitted_username(request)[:_LOGGED_NAME_CHARS],
                LoginAddressRateThrottle().get_ident(request),
            )
            raise


obtain_auth_token = ThrottledObtainAuthToken.as_view()
