"""Domain errors and request-validation failures to HTTP responses, in one place.

Bodies follow Letta: `{"detail": "<message>"}` with `detail` a string that names the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnemo.errors import MnemoError
from mnemo.models import ID_PREFIXES


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = error.get("msg", "invalid")
        name = str(error.get("loc", ("",))[-1])
        prefix = name.removesuffix("_id")
        if error.get("type") == "string_pattern_mismatch" and prefix in ID_PREFIXES:
            message = f"String should match pattern '{prefix}-{{uuid4}}'"
        if error.get("type") == "json_invalid":
            message = f"Invalid JSON: {error.get('ctx', {}).get('error', message)}"
        parts.append(f"{location}: {message}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MnemoError)
    async def mnemo_error(_request: Request, exc: MnemoError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status_code == 503 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": describe_validation_errors(list(exc.errors()))}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
