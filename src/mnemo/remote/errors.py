"""The errors of every mnemo client (the stdlib client, the SDK, the hooks, the MCP tools): one
family, so a caller catches `ClientError` and shows its message."""

from __future__ import annotations


class ClientError(Exception):
    """A request did not succeed; the message says why. `status` is the HTTP status, if any."""

    status: int | None = None


class Unreachable(ClientError):
    """The server did not answer (refused, timed out, reset)."""


class ApiError(ClientError):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class ConfigError(ClientError, ValueError):
    """A setting of mnemo itself is wrong: the config file, an environment variable, a URL."""
