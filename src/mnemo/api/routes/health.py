from __future__ import annotations

from typing import Any

from fastapi import Request

from mnemo import __version__
from mnemo.api.routing import SlashTolerantRouter

LETTA_API_VERSION = "0.16.8"

router = SlashTolerantRouter()


@router.get("/v1/health/")
def health(request: Request) -> dict[str, Any]:
    """Always open, even with auth on. `version` is the Letta API level mnemo speaks."""
    service = request.app.state.service
    return {
        "status": "ok" if service.store.healthy() else "degraded",
        "version": LETTA_API_VERSION,
        "mnemo_version": __version__,
    }
