"""Access checks for the page's server, applied to every request before any route.

- Loopback (the default): anyone on this machine may connect, but the ``Host`` header
  must name a loopback address, so a web page elsewhere cannot reach the server through
  a DNS name that resolves to 127.0.0.1 (DNS rebinding).
- Any other ``--host``: a token (printed at start, in the URL) must come with every
  request, as ``?token=``, the ``X-Samtune-Token`` header, or the cookie the page sets
  when it is opened with the token. Compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

TOKEN_HEADER = "x-samtune-token"
TOKEN_COOKIE = "samtune_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '[::1]'."""
    if value.startswith("["):
        return value.split("]")[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def request_token(scope) -> str | None:
    """The token a request carries: header, then query parameter, then cookie."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if TOKEN_HEADER in headers:
        return headers[TOKEN_HEADER]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    if "cookie" in headers:
        morsel = SimpleCookie(headers["cookie"]).get(TOKEN_COOKIE)
        if morsel is not None:
            return morsel.value
    return None


class AccessGuard:
    """ASGI middleware: 403 for a request without the token (or, on loopback, with a foreign Host)."""

    def __init__(self, app, token: str | None, allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        reason = self._refusal(scope)
        if reason is None:
            return await self.app(scope, receive, send)
        body = reason.encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope) -> str | None:
        if self.token is not None:
            given = request_token(scope)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return "token missing or wrong: open the URL samtune view printed (it carries ?token=...)"
            return None
        headers = dict(scope.get("headers", []))
        host = _host_name(headers.get(b"host", b"").decode("latin-1"))
        if host not in self.allowed_hosts and not is_loopback(host):
            return f"host '{host}' refused: this server answers only to loopback addresses"
        return None
