from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mnemo import __version__, metrics
from mnemo.api.routing import SlashTolerantRouter

LETTA_API_VERSION = "0.16.8"

router = SlashTolerantRouter()
# Probes and scrapes never wait behind the request work for one of its threads.
PROBE_THREADS = anyio.CapacityLimiter(4)


@router.get("/v1/health/")
async def health() -> dict[str, Any]:
    """Liveness: the process answers. Open even with auth on; never touches the database, so a
    database outage does not get replicas restarted. Answered on the event loop, not from the
    threads that do the work. `version` is the Letta API level."""
    return {"status": "ok", "version": LETTA_API_VERSION, "mnemo_version": __version__}


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Prometheus text format; open like the health endpoints (restrict it at the network)."""
    text = await anyio.to_thread.run_sync(generate_latest, metrics.REGISTRY, limiter=PROBE_THREADS)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/ready/")
async def ready(request: Request) -> JSONResponse:
    """Readiness: the store answers. 503 takes a replica out of rotation until it does."""
    store = request.app.state.service.store
    if await anyio.to_thread.run_sync(store.healthy, limiter=PROBE_THREADS):
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "detail": "the database does not answer"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
