"""Request observation: a request id on every request and response, Prometheus request metrics
by route template, memory-operation counts, and one structured log line per request."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from mnemo import metrics
from mnemo.api.middleware import ASGIApp, Message, Receive, Scope, Send, _header

access_log = logging.getLogger("mnemo.access")
QUIET_ROUTES = frozenset({"/v1/health", "/v1/ready", "/latest/health", "/metrics"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")

# (method, route template) → memory operation kind
OPERATIONS = {
    ("POST", "/v1/agents"): "agent_create",
    ("DELETE", "/v1/agents/{agent_id}"): "agent_delete",
    ("PATCH", "/v1/agents/{agent_id}"): "agent_update",
    ("POST", "/v1/agents/import"): "agent_import",
    ("GET", "/v1/agents/{agent_id}/export"): "agent_export",
    ("POST", "/v1/agents/{agent_id}/archival-memory"): "passage_insert",
    ("POST", "/v1/agents/{agent_id}/archival-memory/batch"): "passage_insert",
    ("GET", "/v1/agents/{agent_id}/archival-memory"): "passage_list",
    ("GET", "/v1/agents/{agent_id}/archival-memory/search"): "passage_search",
    ("POST", "/v1/passages/search"): "passage_search",
    ("PATCH", "/v1/agents/{agent_id}/archival-memory/{memory_id}"): "passage_update",
    ("DELETE", "/v1/agents/{agent_id}/archival-memory/{memory_id}"): "passage_delete",
    ("POST", "/v1/agents/{agent_id}/archival-memory/prune"): "passage_prune",
    ("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}"): "block_update",
    ("POST", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}/replace"): "block_replace",
    ("POST", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}/append"): "block_append",
    ("POST", "/v1/blocks"): "block_create",
    ("PATCH", "/v1/blocks/{block_id}"): "block_update",
    ("DELETE", "/v1/blocks/{block_id}"): "block_delete",
    ("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}"): "block_attach",
    ("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}"): "block_detach",
    ("POST", "/v1/agents/{agent_id}/messages/import"): "message_insert",
    ("GET", "/v1/agents/{agent_id}/messages/search"): "message_search",
    ("POST", "/mcp"): "mcp_call",
}


VIA_HEADER = "x-mnemo-via"
UNRECORDED_ROUTES = frozenset({"/mcp"})


def route_of(scope: Scope) -> str:
    """The matched route's template without a trailing slash, so label values stay few."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:  # the MCP SDK's Starlette route does not record itself in the scope
        raw = scope.get("path", "").rstrip("/")
        return raw if raw in UNRECORDED_ROUTES else "unmatched"
    return path.rstrip("/") or "/"


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id") or ""
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        began = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, status, time.perf_counter() - began, request_id)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float, request_id: str) -> None:
        method = scope["method"]
        route = route_of(scope)
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_SECONDS.labels(method, route).observe(seconds)
        operation = OPERATIONS.get((method, route))
        # A /mcp tool calls this server back; its call is already counted as mcp_call.
        on_behalf_of_mcp = _header(scope, VIA_HEADER.encode()) == "mcp"
        if operation and status < 400 and not on_behalf_of_mcp:
            metrics.OPERATIONS.labels(operation).inc()
        if status == 503:
            metrics.DB_ERRORS.inc()
        if route in QUIET_ROUTES and status < 500:
            return
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "path": scope.get("path", ""),
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        )


# Attributes every LogRecord has, plus uvicorn's terminal-colour copy of the message.
RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RateLimit(logging.Filter):
    """At most `burst` warnings or errors of one message template per `window` seconds; the
    first one after a quiet spell says how many were dropped. A failure that repeats in a tight
    loop (e.g. accept() out of file descriptors) cannot fill the disk. Access lines pass."""

    def __init__(self, burst: int = 20, window: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._seen: dict[tuple[str, Any], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        start, count, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self.window:
            if dropped:
                record.msg = f"{record.msg} [{dropped} similar messages dropped]"
            start, count, dropped = now, 0, 0
        if count >= self.burst:
            self._seen[key] = (start, count, dropped + 1)
            return False
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (start, count + 1, dropped)
        return True


def configure_logging(level: str, log_format: str) -> None:
    """`json` for machines (containers, log shippers), `text` for people; `auto` picks json
    unless stderr is a terminal."""
    import sys

    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(RateLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
