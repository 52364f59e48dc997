"""Embedders by handle. The bundled local models are always registered (loaded on first use);
OpenAI-compatible models when configured. Unknown handles are an error naming the configured
ones, never a substitution."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from mnemo.config import Settings
from mnemo.embed.base import Embedder
from mnemo.embed.catalog import LOCAL_MODELS, LocalModel
from mnemo.errors import EmbeddingUnavailable
from mnemo.metrics import EMBED_SECONDS


class EmbedderRegistry:
    def __init__(self, settings: Settings) -> None:
        self._factories: dict[str, Callable[[], Embedder]] = {}
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_size = settings.query_cache_size
        self.default_handle = settings.default_embedding
        self._register_defaults(settings)
        if self.default_handle not in self._factories:
            raise EmbeddingUnavailable(
                f"default embedding {self.default_handle!r} is not configured; "
                f"configured handles: {', '.join(self.handles)}"
            )

    def _register_defaults(self, settings: Settings) -> None:
        for handle, bundled in LOCAL_MODELS.items():

            def local(bundled: LocalModel = bundled) -> Embedder:
                from mnemo.embed.local import LocalEmbedder

                return LocalEmbedder(bundled, threads=settings.embedding_threads)

            self.register(handle, local)
        if settings.openai_base_url:
            for model in filter(
                None, (m.strip() for m in settings.openai_embedding_models.split(","))
            ):
                handle = f"openai/{model}"

                def remote(handle: str = handle, model: str = model) -> Embedder:
                    from mnemo.embed.openai_compat import OpenAICompatibleEmbedder

                    return OpenAICompatibleEmbedder(
                        handle, settings.openai_base_url, model, settings.openai_api_key
                    )

                self.register(handle, remote)

    def register(self, handle: str, factory: Callable[[], Embedder]) -> None:
        self._factories[handle] = factory

    @property
    def handles(self) -> list[str]:
        return sorted(self._factories)

    def check(self, handle: str) -> str:
        if handle not in self._factories:
            raise EmbeddingUnavailable(
                f"embedding {handle!r} is not configured on this server; "
                f"configured handles: {', '.join(self.handles)}"
            )
        return handle

    def get(self, handle: str) -> Embedder:
        self.check(handle)
        with self._lock:
            if handle not in self._loaded:
                self._loaded[handle] = self._factories[handle]()
            return self._loaded[handle]

    def embed(self, handle: str, texts: list[str]) -> np.ndarray:
        embedder = self.get(handle)
        with EMBED_SECONDS.labels(handle).time():
            return embedder.embed(texts)

    def embed_query(self, handle: str, text: str) -> np.ndarray:
        """One query vector, through a small LRU cache (hooks repeat queries often)."""
        key = (handle, text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        embedder = self.get(handle)
        with EMBED_SECONDS.labels(handle).time():
            vector = embedder.embed_queries([text])[0]
        with self._lock:
            self._cache[key] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector
