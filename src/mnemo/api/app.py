"""The ASGI application: routes, error mapping, middleware, and the service they share."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from mnemo import __version__, metrics
from mnemo.api.errors import install_error_handlers
from mnemo.api.middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    HostGuardMiddleware,
    IdempotencyMiddleware,
    InternalErrorMiddleware,
    allowed_hosts,
)
from mnemo.api.observe import ObserveMiddleware
from mnemo.api.routes import agents, archival, blocks, health, messages, transfer
from mnemo.config import Settings
from mnemo.embed import EmbedderRegistry
from mnemo.service import MemoryService
from mnemo.store import open_store
from mnemo.ui import pages as viewer

log = logging.getLogger("mnemo.api")


def build_service(settings: Settings) -> MemoryService:
    """Open the store and load the default embedder, so the first request is already warm."""
    embedders = EmbedderRegistry(settings)
    embedders.embed_query(embedders.default_handle, "warm up")
    service = MemoryService(open_store(settings), embedders, settings)
    # Replicas that do not migrate leave this to `mnemo migrate` (the Helm migration job).
    if settings.migrate_on_start and not service.keywords_current():
        counts = service.store.counts()
        log.info(
            "re-analysing %d passages and %d messages for keyword search",
            counts["passages"],
            counts["messages"],
        )
        done = service.reindex_keywords()
        log.info("keyword index rebuilt: %d passages and messages", done)
    return service


def build_mcp(settings: Settings) -> MCPServer:
    """The MCP tools for `/mcp`; they call this server's own API over loopback."""
    from mnemo.mcp.server import DEFAULT_MAX_CHARS, Memory, build_server
    from mnemo.remote.client import Client

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    client = Client(
        f"http://{host}:{settings.port}",
        settings.api_key,
        30.0,
        connect_timeout=2.0,
        headers={"X-Mnemo-Via": "mcp"},  # observe.py counts the tool call once, as mcp_call
    )
    return build_server(Memory(client, project_dir=None, max_chars=DEFAULT_MAX_CHARS))


def create_app(settings: Settings, service: MemoryService | None = None) -> FastAPI:
    service = service or build_service(settings)

    mcp_server = build_mcp(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Requests run in at most worker_threads threads: more only contend for the GIL with
        # the event loop, which answers the health probe.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        async with mcp_server.session_manager.run():
            yield
        service.store.close()
        log.info("store closed")

    app = FastAPI(
        title="mnemo",
        version=__version__,
        description="Persistent memory for agents; speaks the Letta REST API.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.service = service
    app.state.settings = settings
    for module in (health, agents, blocks, archival, messages, transfer):
        app.include_router(module.router)
    mcp_app = mcp_server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,  # no session affinity: any replica answers any request
        json_response=True,
        # HostGuardMiddleware checks Host and Origin for every route, /mcp included.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.extend(mcp_app.routes)
    install_error_handlers(app)
    viewer.install(app)
    # Outermost first at request time: observation, Host and cross-site checks, size limit,
    # auth, idempotency, then the catch-all for unexpected errors.
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(IdempotencyMiddleware, store=service.store)
    if settings.api_key:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        HostGuardMiddleware, allowed=allowed_hosts(settings.host, settings.allowed_hosts)
    )
    app.add_middleware(ObserveMiddleware)  # outermost: sees every request, rejected or not
    store = service.store
    metrics.watch_store(getattr(store, "pool_stats", dict), store.counts)
    return app
