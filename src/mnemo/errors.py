"""The few domain errors. The API maps them to HTTP statuses in one place (api/errors.py)."""

from __future__ import annotations


class MnemoError(Exception):
    """Base class; `message` is shown to the caller verbatim."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(MnemoError):
    status_code = 404


class InvalidInput(MnemoError):
    status_code = 400


class Conflict(MnemoError):
    status_code = 409


class TooLarge(MnemoError):
    status_code = 413


class LimitExceeded(MnemoError):
    """A write would push a block past its character limit."""

    status_code = 400


class EmbeddingUnavailable(MnemoError):
    """An embedding handle that this server has not configured, or whose provider failed."""

    status_code = 400


class EmbeddingProviderFailed(MnemoError):
    """The configured embedding endpoint failed or answered nonsense."""

    status_code = 502


class StoreUnavailable(MnemoError):
    status_code = 503
