"""Any OpenAI-compatible /v1/embeddings endpoint (OpenAI, Ollama, TEI, vLLM, LiteLLM)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

from mnemo.embed.base import normalise
from mnemo.errors import EmbeddingProviderFailed

BATCH_SIZE = 256
TIMEOUT_SECONDS = 60


class OpenAICompatibleEmbedder:
    def __init__(self, handle: str, base_url: str, model: str, api_key: str = "") -> None:
        self.handle = handle
        self.model = model
        self._url = base_url.rstrip("/") + "/embeddings"
        self._api_key = api_key
        self.dim = 0  # learnt from the first response

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            rows.extend(self._request(texts[start : start + BATCH_SIZE]))
        vectors = np.asarray(rows, dtype=np.float32)
        self.dim = vectors.shape[1]
        return normalise(vectors)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)

    def _request(self, batch: list[str]) -> list[list[float]]:
        body = json.dumps({"model": self.model, "input": batch}).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise EmbeddingProviderFailed(
                f"embedding provider for {self.handle!r} answered HTTP {exc.code}: {detail}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise EmbeddingProviderFailed(
                f"embedding provider for {self.handle!r} at {self._url} failed: {exc}"
            ) from exc
        data = sorted(payload.get("data", []), key=lambda item: item.get("index", 0))
        if len(data) != len(batch):
            raise EmbeddingProviderFailed(
                f"embedding provider for {self.handle!r} returned {len(data)} vectors "
                f"for {len(batch)} inputs"
            )
        return [item["embedding"] for item in data]
