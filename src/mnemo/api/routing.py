"""A router that serves every path with and without a trailing slash, never redirecting
(the Letta SDK calls collections with a slash; users' curl calls often omit it), and describes
the error responses every route can give."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every error: what was wrong, naming the field or limit (api/errors.py)."""

    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused; `detail` says why"},
    "5XX": {"model": ErrorBody, "description": "The server or its database failed"},
}


class SlashTolerantRouter(APIRouter):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("responses", ERROR_RESPONSES)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        twin = path[:-1] if path.endswith("/") else path + "/"
        if twin and twin != path:
            kwargs["include_in_schema"] = False
            super().add_api_route(twin, endpoint, **kwargs)
