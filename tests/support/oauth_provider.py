"""A small OAuth 2.0 / OpenID provider on 127.0.0.1 for tests: authorize (auto-approves the
`login_as` user), token (authorization code with PKCE, refresh with rotation), userinfo and
token introspection (RFC 7662, what Dovecot's `passdb oauth2` asks).

It behaves like Google and Microsoft where the app can tell: codes are single use and bound to
the redirect URI and the PKCE challenge, refresh tokens rotate, a revoked grant refuses refresh
and makes its access tokens inactive.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt


@dataclass
class Grant:
    user: str
    scope: str
    revoked: bool = False
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


class OAuthProvider:
    """Start with `start()`; `url` is its base. Set `login_as` before sending a browser to /authorize."""

    def __init__(
        self, *, client_id: str = "test-client", client_secret: str = "test-secret", expires_in: int = 3600
    ) -> None:
        self.client_id, self.client_secret, self.expires_in = client_id, client_secret, expires_in
        self.login_as = "user@example.com"
        self.deny_with: str | None = None  # e.g. "access_denied": the user said no
        self.codes: dict[str, dict] = {}
        self.used_codes: set[str] = set()
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.requests: list[tuple[str, str]] = []
        self.introspections = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> OAuthProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what tests do to it ---------------------------------------------------------------------------------

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is past its lifetime now."""
        with self._lock:
            for token in self.access_tokens.values():
                token.expires_at = 0

    def revoke(self, user: str) -> None:
        """The user (or an admin) revoked the app's access: tokens inactive, refresh refused."""
        with self._lock:
            for token in self.access_tokens.values():
                if token.grant.user == user:
                    token.grant.revoked = True

    # -- endpoints -------------------------------------------------------------------------------------------

    def authorize(self, query: dict) -> tuple[int, dict]:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, {"error": "invalid_request", "error_description": "unknown client or no redirect_uri"}
        state = query.get("state", "")
        if self.deny_with:
            target = _with_query(
                redirect_uri, {"error": self.deny_with, "error_description": "The user declined.", "state": state}
            )
            return 302, {"Location": target}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {"error": "invalid_request", "error_description": "PKCE (S256) is required"}
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = {
                "user": self.login_as,
                "redirect_uri": redirect_uri,
                "scope": query.get("scope", ""),
                "challenge": query["code_challenge"],
                "nonce": query.get("nonce"),
            }
        return 302, {"Location": _with_query(redirect_uri, {"code": code, "state": state})}

    def token(self, form: dict, authorization: str | None) -> tuple[int, dict]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = (urllib.parse.unquote(part) for part in decoded.partition(":"))
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        with self._lock:
            if form.get("grant_type") == "authorization_code":
                return self._exchange(form)
            if form.get("grant_type") == "refresh_token":
                grant = self.refresh_tokens.get(form.get("refresh_token", ""))
                if grant is None or grant.revoked or form["refresh_token"] != grant.refresh_tokens[-1]:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "The refresh token was revoked or has expired.",
                    }
                return 200, self._issue(grant, with_id_token=False)
        return 400, {"error": "unsupported_grant_type"}

    def _exchange(self, form: dict) -> tuple[int, dict]:
        code = form.get("code", "")
        if code in self.used_codes:
            return 400, {"error": "invalid_grant", "error_description": "The authorization code was already used."}
        issued = self.codes.pop(code, None)
        if issued is None:
            return 400, {"error": "invalid_grant", "error_description": "Unknown authorization code."}
        self.used_codes.add(code)
        if form.get("redirect_uri") != issued["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri does not match."}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != issued["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed."}
        return 200, self._issue(Grant(user=issued["user"], scope=issued["scope"]), with_id_token=True)

    def _issue(self, grant: Grant, *, with_id_token: bool) -> dict:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access_tokens[access] = AccessToken(grant=grant, expires_at=time.time() + self.expires_in)
        grant.refresh_tokens.append(refresh)
        self.refresh_tokens[refresh] = grant
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": refresh,
            "scope": grant.scope,
        }
        if with_id_token:
            now = int(time.time())
            body["id_token"] = jwt.encode(
                {
                    "iss": self.url,
                    "aud": self.client_id,
                    "sub": f"sub-{grant.user}",
                    "email": grant.user,
                    "preferred_username": grant.user,
                    "iat": now,
                    "exp": now + 3600,
                },
                self.client_secret,
                algorithm="HS256",
            )
        return body

    def active(self, token: str) -> AccessToken | None:
        with self._lock:
            found = self.access_tokens.get(token)
            if found is None or found.grant.revoked or found.expires_at < time.time():
                return None
            return found

    def introspect(self, form: dict) -> tuple[int, dict]:
        self.introspections += 1
        found = self.active(form.get("token", ""))
        if found is None:
            return 200, {"active": False}
        return 200, {
            "active": True,
            "username": found.grant.user,
            "email": found.grant.user,
            "client_id": self.client_id,
            "exp": int(found.expires_at),
        }

    def userinfo(self, authorization: str | None) -> tuple[int, dict]:
        found = self.active((authorization or "").removeprefix("Bearer ").strip())
        if found is None:
            return 401, {"error": "invalid_token"}
        return 200, {"sub": f"sub-{found.grant.user}", "email": found.grant.user}


class _Handler(BaseHTTPRequestHandler):
    owner: OAuthProvider

    def do_GET(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        self.owner.requests.append(("GET", parsed.path))
        if parsed.path == "/authorize":
            self._answer(*self.owner.authorize(query))
        elif parsed.path == "/userinfo":
            self._answer(*self.owner.userinfo(self.headers.get("Authorization")))
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        path = urllib.parse.urlsplit(self.path).path
        self.owner.requests.append(("POST", path))
        if path == "/token":
            self._answer(*self.owner.token(form, self.headers.get("Authorization")))
        elif path == "/introspect":
            self._answer(*self.owner.introspect(form))
        else:
            self._answer(404, {"error": "not_found"})

    def _answer(self, status: int, body: dict) -> None:
        if status == 302:
            self.send_response(302)
            self.send_header("Location", body["Location"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _with_query(url: str, params: dict) -> str:
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + separator + urllib.parse.urlencode(params)
