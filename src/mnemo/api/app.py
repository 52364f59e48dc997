"""The ASGI application: routes, error mapping, middleware, and the service they share."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mnemo import __version__
from mnemo.api.errors import install_error_handlers
from mnemo.api.middleware import AuthMiddleware, BodyLimitMiddleware, IdempotencyMiddleware
from mnemo.api.routes import agents, archival, blocks, health, messages, transfer
from mnemo.config import Settings
from mnemo.embed import EmbedderRegistry
from mnemo.service import MemoryService
from mnemo.store import open_store

log = logging.getLogger("mnemo.api")


def build_service(settings: Settings) -> MemoryService:
    """Open the store and load the default embedder, so the first request is already warm."""
    embedders = EmbedderRegistry(settings)
    embedders.embed_query(embedders.default_handle, "warm up")
    return MemoryService(open_store(settings), embedders, settings)


def create_app(settings: Settings, service: MemoryService | None = None) -> FastAPI:
    service = service or build_service(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
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
    install_error_handlers(app)
    # Outermost first at request time: size limit, then auth, then idempotency.
    app.add_middleware(IdempotencyMiddleware, store=service.store)
    if settings.api_key:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app
