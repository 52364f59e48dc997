"""The HTTP API: Letta-compatible routes plus mnemo extensions (docs/api.md)."""

from mnemo.api.app import create_app

__all__ = ["create_app"]
