"""A router that serves every path with and without a trailing slash, never redirecting
(the Letta SDK calls collections with a slash; users' curl calls often omit it), and describes
the error responses every route can give."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
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
        endpoint = rendered_in_thread(endpoint)
        super().add_api_route(path, endpoint, **kwargs)
        twin = path[:-1] if path.endswith("/") else path + "/"
        if twin and twin != path:
            kwargs["include_in_schema"] = False
            super().add_api_route(twin, endpoint, **kwargs)


def rendered_in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A sync endpoint that also encodes its result as JSON in its worker thread. FastAPI would
    encode it on the event loop, where every other request, the health probe included, waits
    meanwhile. Signature and annotations (hence the OpenAPI description) stay the endpoint's."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    def render(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        if isinstance(result, Response):
            return result
        return JSONResponse(jsonable_encoder(result))

    return render
