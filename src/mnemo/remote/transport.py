"""The HTTP transport of every mnemo client (standard library only: a hook is a fresh process
on every prompt, and http.client, urllib.parse and socket would cost it ~30 ms of imports).

`request` sends one JSON request and returns the parsed body; a server that does not answer is
`Unreachable`, an error status is `ApiError`.
"""

from __future__ import annotations

import _socket
import json
import re

from mnemo.remote.errors import ApiError, ConfigError, Unreachable

TYPE_CHECKING = False  # typing costs a hook ~4 ms to import; annotations only
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Transport(Protocol):
        """What `Client` sends requests through: this module's `HttpTransport`, or in tests
        the ASGI app in-process."""

        url: str

        def request(
            self,
            method: str,
            path: str,
            body: Any = None,
            query: dict[str, Any] | None = None,
            idempotency_key: str | None = None,
            read_timeout: float | None = None,
        ) -> Any: ...


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


def query_string(query: dict[str, Any] | None) -> str:
    """`?a=1&b=x&b=y`: None values left out, lists repeated, booleans as true/false."""
    pairs = []
    for key, value in (query or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((key, "true" if item is True else "false" if item is False else item))
    if not pairs:
        return ""
    return "?" + "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in pairs)


def request_headers(
    headers: dict[str, str], api_key: str, idempotency_key: str | None
) -> dict[str, str]:
    sent = {"Accept": "application/json", **headers}
    if api_key:
        sent["Authorization"] = f"Bearer {api_key}"
    if idempotency_key:
        sent["Idempotency-Key"] = idempotency_key
    return sent


def error_detail(data: Any, raw: bytes) -> str:
    """The `detail` of an error body, else the start of the raw body."""
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return raw[:200].decode("latin-1")


def retryable(status: int) -> bool:
    """Whether a write refused with `status` may succeed later unchanged: the server was
    overloaded or failing, or refused the client's key or Host, which the user can fix."""
    return status >= 500 or status in (401, 403, 408, 409, 421, 429)


class HttpTransport:
    def __init__(
        self,
        url: str,
        api_key: str = "",
        connect_timeout: float = 0.3,
        read_timeout: float = 5.0,
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
        self.headers = headers or {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        target = self._prefix + path + query_string(query)
        headers = request_headers(self.headers, self._api_key, idempotency_key)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        timeout = read_timeout or self.read_timeout
        try:
            if self._https:
                status, raw = self._https_request(method, target, payload, headers, timeout)
            else:
                status, raw = self._plain_request(method, target, payload, headers, timeout)
        except (OSError, ValueError) as exc:
            raise Unreachable(f"{self.url}: {exc}") from exc
        if status >= 400:
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None
            raise ApiError(status, error_detail(data, raw))
        return json.loads(raw) if raw else None

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
