"""Pure-ASGI middleware: Host and cross-site checks, bearer auth, request-size limit,
Idempotency-Key replay, and the catch-all that turns an unexpected exception into a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import suppress
from typing import Any

import anyio.to_thread

from mnemo.errors import MnemoError
from mnemo.store.base import Store

log = logging.getLogger("mnemo.api")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset(
    {
        "/v1/health",
        "/v1/health/",
        "/latest/health",
        "/latest/health/",
        "/v1/ready",
        "/v1/ready/",
        "/metrics",
    }
)


async def send_json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] = ()
) -> None:  # type: ignore[assignment]
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(value: str) -> str:
    """The name in a Host header or an origin's authority, without port, lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8283
        return value[1 : value.find("]")] if "]" in value else value
    name, _, port = value.rpartition(":")
    return name if name and port.isdigit() else value


class HostGuardMiddleware:
    """Only Host names this server serves, and no state change from another site's page.

    A web page can make a browser send requests to a server on the user's machine: through DNS
    rebinding (its own name resolved to 127.0.0.1, so Host names the page's site) or by posting
    a form cross-site. Requests whose Host is not in `allowed` get 421; POST/PATCH/PUT/DELETE
    from a page whose Origin is not an allowed host (or a browser that says cross-site) get 403.
    Health, readiness and metrics answer any Host: probes and scrapers address pods by IP.
    """

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.any_host = "*" in allowed
        self.names = frozenset(name.lower() for name in allowed if not name.startswith("*."))
        self.suffixes = tuple(name[1:].lower() for name in allowed if name.startswith("*."))

    def allows(self, name: str) -> bool:
        if self.any_host or name in self.names:
            return True
        return bool(self.suffixes) and name.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        host = host_name(_header(scope, b"host") or "")
        if not self.allows(host):
            await send_json(
                send,
                421,
                {
                    "detail": f"Host {host!r} is not served here; add it to allowed_hosts "
                    "(MNEMO_ALLOWED_HOSTS) if this server should answer to that name"
                },
            )
            return
        if scope["method"] not in SAFE_METHODS and self._cross_site(scope):
            await send_json(
                send,
                403,
                {"detail": "Cross-site request refused: a web page may not change memory"},
            )
            return
        await self.app(scope, receive, send)

    def _cross_site(self, scope: Scope) -> bool:
        origin = _header(scope, b"origin")
        if origin is not None:
            _, _, authority = origin.partition("://")
            return not authority or not self.allows(host_name(authority.split("/")[0]))
        return (_header(scope, b"sec-fetch-site") or "").lower() in ("cross-site", "same-site")


def allowed_hosts(bind_host: str, configured: str) -> list[str]:
    """Loopback names, the address the server binds to (unless a wildcard), and the
    comma-separated `configured` names (`*` for any, `*.example.com` for a domain)."""
    names = list(LOOPBACK_HOSTS)
    if bind_host not in ("", "0.0.0.0", "::"):
        names.append(bind_host.strip("[]").lower())  # an address, never with a port
    names.extend(name.strip() for name in configured.split(",") if name.strip())
    return names


class AuthMiddleware:
    """`Authorization: Bearer <key>` or Letta's `X-BARE-PASSWORD: password <key>`."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        viewer = path == "/ui" or path.startswith("/ui/")  # checks its own sign-in (ui/access.py)
        if scope["type"] != "http" or path in OPEN_PATHS or viewer or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send_json(send, 401, {"detail": "Unauthorized"}, [(b"www-authenticate", b"Bearer")])

    def _allowed(self, scope: Scope) -> bool:
        authorization = _header(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._key):
            return True
        bare = _header(scope, b"x-bare-password") or ""
        scheme, _, token = bare.partition(" ")
        return scheme.lower() == "password" and hmac.compare_digest(
            token.strip().encode(), self._key
        )


class BodyLimitMiddleware:
    """Reject bodies over `max_bytes` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send, int(declared))
            return
        seen = 0
        too_big = False

        async def limited_receive() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    raise _TooBig()
            return message

        tracked = _Tracked(send)
        try:
            await self.app(scope, limited_receive, tracked)
        except _TooBig:
            if not tracked.started:
                await self._reject(send, seen)

    async def _reject(self, send: Send, size: int) -> None:
        await send_json(
            send,
            413,
            {
                "detail": f"Request body of {size} bytes is over the limit of {self.max_bytes} "
                "bytes (max_request_bytes)"
            },
        )


class _TooBig(Exception):
    pass


class _Tracked:
    """`send`, remembering whether the response has started (after that, no error response
    can be sent in its place)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class InternalErrorMiddleware:
    """An unexpected exception becomes a logged 500 response here, inside the other middleware,
    so idempotency records it and the keep-alive connection stays open (Starlette's last-resort
    handler re-raises after answering, and the server then drops the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _Tracked(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if tracked.started:
                raise
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            detail = f"Internal server error ({type(exc).__name__}); see the server log"
            await send_json(send, 500, {"detail": detail})


class IdempotencyMiddleware:
    """A POST with `Idempotency-Key` runs once; a retry gets the stored response back."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if not key or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if len(key) > 255:
            await send_json(send, 422, {"detail": "Idempotency-Key: at most 255 characters"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"].rstrip("/") or "/"  # /archival-memory and .../ are one route
        digest = hashlib.sha256()
        for part in (
            path,
            scope.get("query_string", b"").decode(),
            body.decode("latin-1"),
        ):
            digest.update(part.encode("latin-1", errors="replace") + b"\0")
        request_hash = digest.hexdigest()
        scoped_key = f"{path} {key}"
        try:
            existing = await anyio.to_thread.run_sync(
                self.store.claim_idempotency_key, scoped_key, request_hash
            )
        except MnemoError as exc:  # e.g. the database is down: 503, the client retries
            retry = [(b"retry-after", b"1")] if exc.status_code == 503 else []
            await send_json(send, exc.status_code, {"detail": exc.message}, retry)
            return
        if existing is not None:
            await self._replay(send, key, existing, request_hash)
            return

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status: int | None = None
        media_type = "application/json"
        held: list[Message] = []

        async def hold(message: Message) -> None:
            nonlocal status, media_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        media_type = value.decode("latin-1")
            held.append(message)

        # The response is held until its key is recorded as complete: a client that has its
        # answer and retries at once gets the replay, never "still in progress".
        try:
            await self.app(scope, replay_receive, hold)
        finally:
            # A 503 means the database was unreachable: nothing was written, a retry may run.
            # Any other response is kept, a 500 too (it may have come after the commit), so a
            # retry never runs the request twice. If the database is gone here, the claim
            # stays in progress and expires (5 min).
            with suppress(MnemoError):
                if status is not None and status != 503:
                    body = b"".join(
                        m.get("body", b"") for m in held if m["type"] == "http.response.body"
                    )
                    await anyio.to_thread.run_sync(
                        self.store.complete_idempotency_key, scoped_key, status, body, media_type
                    )
                else:
                    await anyio.to_thread.run_sync(self.store.release_idempotency_key, scoped_key)
        for message in held:
            await send(message)

    async def _replay(self, send: Send, key: str, existing: Any, request_hash: str) -> None:
        if existing.request_hash != request_hash:
            await send_json(
                send,
                422,
                {"detail": f"Idempotency-Key {key!r} was already used with a different request"},
            )
            return
        if not existing.complete:
            await send_json(
                send,
                409,
                {"detail": f"A request with Idempotency-Key {key!r} is still in progress"},
                [(b"retry-after", b"1")],
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": existing.status_code,
                "headers": [
                    (b"content-type", existing.media_type.encode("latin-1")),
                    (b"content-length", str(len(existing.body)).encode()),
                    (b"idempotent-replayed", b"true"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": existing.body})


__all__ = [
    "AuthMiddleware",
    "BodyLimitMiddleware",
    "HostGuardMiddleware",
    "IdempotencyMiddleware",
    "InternalErrorMiddleware",
]
