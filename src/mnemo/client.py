"""A small HTTP client for the mnemo API, shared by the hooks and the CLI (standard library only).

Writes carry an Idempotency-Key. When the server cannot be reached within the connect timeout a
write is spooled to disk and replayed later, exactly once (the server drops repeated keys);
reads simply come back empty. Nothing here ever raises into a hook on network trouble.
"""

from __future__ import annotations

import _socket
import contextlib
import json
import os
import re
import time
from collections.abc import Callable

from mnemo.remote.errors import ApiError, ClientError, ConfigError, Unreachable

__all__ = ["ApiError", "ClientError", "ConfigError", "MnemoClient", "Unreachable", "retryable"]

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any


_URL = re.compile(r"^(https?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?(/.*)?$")
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(value: str) -> str:
    """Percent-encode a query value (urllib.parse costs a hook ~3 ms of imports)."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in value.encode())


def _dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


def retryable(status: int) -> bool:
    """Whether a write refused with `status` may succeed later unchanged: the server was
    overloaded or failing, or refused the client's key or Host, which the user can fix."""
    return status >= 500 or status in (401, 403, 408, 409, 421, 429)


class MnemoClient:
    def __init__(
        self,
        url: str,
        api_key: str = "",
        connect_timeout: float = 0.3,
        read_timeout: float = 5.0,
        spool_dir: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        match = _URL.match(url.strip())
        if not match:
            raise ConfigError(
                f"server URL {url!r} is not an http(s) URL; write it in full, e.g. "
                "http://127.0.0.1:8283 (MNEMO_URL, or url in the config file)"
            )
        scheme, host, port, path = match.groups()
        self.url = url
        self._https = scheme == "https"
        self._host = host.strip("[]")
        self._port = int(port) if port else (443 if self._https else 80)
        self._prefix = (path or "").rstrip("/")
        self._api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.spool_dir = spool_dir
        self.headers = headers or {}

    # ------------------------------------------------------------------ raw requests

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        target = self._prefix + path
        if query:
            pairs = []
            for key, value in query.items():
                for item in value if isinstance(value, list) else [value]:
                    if item is not None:
                        pairs.append(
                            (key, "true" if item is True else "false" if item is False else item)
                        )
            target += "?" + "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in pairs)
        headers = {"Accept": "application/json", **self.headers}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        timeout = read_timeout or self.read_timeout
        try:
            if self._https:
                status, raw = self._https_request(method, target, payload, headers, timeout)
            else:
                status, raw = self._plain_request(method, target, payload, headers, timeout)
        except (OSError, ValueError) as exc:
            raise Unreachable(f"{self.url}: {exc}") from exc
        data = json.loads(raw) if raw else None
        if status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else raw[:200].decode("latin-1")
            raise ApiError(status, str(detail))
        return data

    def _connect(self) -> _socket.socket:
        if re.fullmatch(r"[\d.]+", self._host):
            # An IPv4 literal needs neither a resolver (getaddrinfo pulls in the idna codec) nor
            # the `socket` module (enum, selectors): together ~5 ms of every hook process.
            sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect((self._host, self._port))
            except OSError:
                sock.close()
                raise
            return sock
        import socket

        return socket.create_connection((self._host, self._port), timeout=self.connect_timeout)

    def _plain_request(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes]:
        """HTTP/1.1 over a bare socket: http.client costs a hook ~25 ms of imports (email, ssl)."""
        head = [
            f"{method} {target} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            "Connection: close",
        ]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(payload or b'')}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (payload or b"")
        sock = self._connect()
        try:
            sock.settimeout(timeout)
            sock.sendall(message)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            sock.close()
        response = b"".join(chunks)
        header_end = response.find(b"\r\n\r\n")
        if header_end == -1:
            raise ValueError("incomplete HTTP response")
        lines = response[:header_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
        }
        body = response[header_end + 4 :]
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = _dechunk(body)
        elif "content-length" in fields:
            length = int(fields["content-length"])
            if len(body) < length:
                raise ValueError("truncated HTTP response")
            body = body[:length]
        return status, body

    def _https_request(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes]:
        import http.client

        connection = http.client.HTTPSConnection(
            self._host, self._port, timeout=self.connect_timeout
        )
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except http.client.HTTPException as exc:
            raise ValueError(str(exc)) from exc
        finally:
            connection.close()

    def healthy(self) -> bool:
        try:
            return bool(self.request("GET", "/v1/health/"))
        except (Unreachable, ApiError, ValueError):
            return False

    # ------------------------------------------------------------------ writes with a spool

    def write(
        self,
        method: str,
        path: str,
        body: Any,
        key: str | None = None,
        context: dict[str, str] | None = None,
    ) -> Any:
        """Send a write; if the server is unreachable, spool it and return None. A write
        refused for a reason that may pass (a missing key, an overloaded server: `retryable`)
        is spooled too, then the refusal is raised so the caller can say why."""
        key = key or os.urandom(16).hex()
        try:
            return self.request(method, path, body, idempotency_key=key)
        except Unreachable:
            self.spool(method, path, body, key, context)
            return None
        except ApiError as exc:
            if retryable(exc.status):
                self.spool(method, path, body, key, context)
            raise

    def spool(
        self, method: str, path: str, body: Any, key: str, context: dict[str, str] | None = None
    ) -> None:
        """Queue a write on disk. `context` travels with it for `replay(resolve=...)`, e.g. the
        project whose agent id was not known yet when the write was made."""
        if self.spool_dir is None:
            return
        os.makedirs(self.spool_dir, exist_ok=True)
        name = f"{time.time_ns():020d}-{re.sub(r'[^A-Za-z0-9_-]', '_', key)[:80]}.json"
        entry = {"method": method, "path": path, "body": body, "key": key, "context": context or {}}
        temporary = os.path.join(self.spool_dir, f".{name}.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(entry, file)
        os.replace(temporary, os.path.join(self.spool_dir, name))

    def _deliver(
        self, entry: dict[str, Any], resolve: Callable[[dict[str, Any], bool], str] | None
    ) -> None:
        path = resolve(entry, False) if resolve else entry["path"]
        try:
            self.request(entry["method"], path, entry["body"], idempotency_key=entry["key"])
        except ApiError as exc:
            if exc.status != 404 or resolve is None:
                raise
            again = resolve(entry, True)
            if again == path:
                raise
            self.request(entry["method"], again, entry["body"], idempotency_key=entry["key"])

    def _spooled(self) -> list[str]:
        """Names of the queued writes, oldest first (names start with a nanosecond time)."""
        if self.spool_dir is None:
            return []
        try:
            names = os.listdir(self.spool_dir)
        except OSError:
            return []
        return sorted(n for n in names if n.endswith(".json") and not n.startswith("."))

    def pending(self) -> int:
        return len(self._spooled())

    def replay(
        self,
        deadline: float | None = None,
        resolve: Callable[[dict[str, Any], bool], str] | None = None,
    ) -> int:
        """Send spooled writes oldest first; stop at the first unreachable or at `deadline`
        (a time.monotonic() value). `resolve(entry, stale)` gives the path to send an entry to;
        when that answers 404 it is asked again with `stale` true (e.g. the project's agent was
        replaced) and the write retried once. A write the server still rejects (4xx) moves to
        `failed/`. Returns how many were delivered. Safe to run concurrently: one replayer at
        a time."""
        spool_dir = self.spool_dir
        if spool_dir is None or not os.path.isdir(spool_dir):
            return 0
        import fcntl

        with open(os.path.join(spool_dir, ".replay.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0
            delivered = 0
            for name in self._spooled():
                if deadline is not None and time.monotonic() > deadline:
                    break
                item = os.path.join(spool_dir, name)
                try:
                    with open(item, encoding="utf-8") as file:
                        entry = json.load(file)
                except (OSError, ValueError):
                    continue
                try:
                    self._deliver(entry, resolve)
                except Unreachable:
                    break
                except ApiError as exc:
                    if retryable(exc.status):
                        break
                    failed = os.path.join(spool_dir, "failed")
                    os.makedirs(failed, exist_ok=True)
                    os.replace(item, os.path.join(failed, name))
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(item)
                delivered += 1
            return delivered
