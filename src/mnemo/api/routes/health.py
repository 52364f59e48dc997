from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mnemo import __version__, metrics
from mnemo.api.routing import SlashTolerantRouter

LETTA_API_VERSION = "0.16.8"

router = SlashTolerantRouter()


@router.get("/v1/health/")
def health() -> dict[str, Any]:
    """Liveness: the process answers. Open even with auth on; never touches the database, so a
    database outage does not get replicas restarted. `version` is the Letta API level."""
    return {"status": "ok", "version": LETTA_API_VERSION, "mnemo_version": __version__}


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus text format; open like the health endpoints (restrict it at the network)."""
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/ready/")
def ready(request: Request) -> JSONResponse:
    """Readiness: the store answers. 503 takes a replica out of rotation until it does."""
    if request.app.state.service.store.healthy():
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "detail": "the database does not answer"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
