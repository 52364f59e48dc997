"""A router that serves every path with and without a trailing slash, never redirecting
(the Letta SDK calls collections with a slash; users' curl calls often omit it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


class SlashTolerantRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        twin = path[:-1] if path.endswith("/") else path + "/"
        if twin and twin != path:
            kwargs["include_in_schema"] = False
            super().add_api_route(twin, endpoint, **kwargs)
