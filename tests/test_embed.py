"""Embedders: each bundled ONNX model's parity with sentence-transformers, and the
OpenAI-compatible provider against a local HTTP fake of an embeddings endpoint (the one thing
unreachable here)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from mnemo.embed.catalog import LOCAL_MODELS, MINILM, MPNET, LocalModel
from mnemo.embed.local import LocalEmbedder
from tests.inprocess import app_client

# Both graphs hold 8-bit matrices and a 16-bit token table (scripts/onnx_export.py), which
# moves each vector by about a thousandth of a cosine.
PARITY = {MINILM.handle: 0.997, MPNET.handle: 0.998}


@pytest.fixture(scope="module", params=list(LOCAL_MODELS.values()), ids=lambda m: m.directory)
def bundled(request: pytest.FixtureRequest) -> tuple[LocalModel, LocalEmbedder]:
    return request.param, LocalEmbedder(request.param)


def test_onnx_matches_sentence_transformers_reference(
    bundled: tuple[LocalModel, LocalEmbedder],
) -> None:
    model, embedder = bundled
    reference = json.loads((model.path / "reference.json").read_text())
    vectors = embedder.embed(reference["sentences"])
    expected = np.asarray(reference["vectors"], dtype=np.float32)
    assert vectors.shape == (len(reference["sentences"]), model.dim)
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() > PARITY[model.handle], cosines
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_vectors(bundled: tuple[LocalModel, LocalEmbedder]) -> None:
    model, embedder = bundled
    texts = [f"sentence {i} " + "word " * (i % 40) for i in range(70)]
    batched = embedder.embed(texts)
    single = np.stack([embedder.embed([t])[0] for t in texts[:5]])
    assert (batched[:5] * single).sum(axis=1).min() > PARITY[model.handle]
    assert embedder.embed([]).shape == (0, model.dim)


def test_a_query_within_the_window_embeds_as_a_passage_does(
    bundled: tuple[LocalModel, LocalEmbedder],
) -> None:
    _, embedder = bundled
    texts = ["why did the uploader retry test fail", "deploy " * 60, ""]
    assert np.allclose(embedder.embed_queries(texts), embedder.embed(texts), atol=1e-6)


def test_a_long_query_is_embedded_from_its_two_ends(
    bundled: tuple[LocalModel, LocalEmbedder],
) -> None:
    model, embedder = bundled
    head = "why does the uploader retry test time out after the refactor of the client?"
    tail = "please fix the flaky upload test and keep the retry count at three."
    filler = " ".join(f"log{i}" for i in range(100))
    middle = [f"{filler} {varying} {filler}" for varying in ("timeout " * 50, "schema " * 50)]
    long, other_middle, other_head, other_tail = embedder.embed_queries(
        [
            f"{head} {middle[0]} {tail}",
            f"{head} {middle[1]} {tail}",
            f"what changed in the database schema last week? {middle[0]} {tail}",
            f"{head} {middle[0]} summarise the deployment checklist for friday.",
        ]
    )
    assert len(embedder._query_tokenizer.encode(f"{head} {middle[0]} {tail}").ids) > 3 * (
        model.query_tokens
    )
    assert float(long @ other_middle) > 0.9999  # the middle is not read
    assert float(long @ other_head) < 0.99
    assert float(long @ other_tail) < 0.99


def test_ends_keeps_both_special_tokens() -> None:
    from mnemo.embed.local import ends

    assert ends([0, 1, 2, 3], 8) == [0, 1, 2, 3]
    assert ends(list(range(10)), 4) == [0, 1, 8, 9]
    assert ends(list(range(10)), 5) == [0, 1, 7, 8, 9]


def test_every_bundled_model_ships_its_files_and_export_script() -> None:
    root = Path(__file__).resolve().parent.parent
    for model in LOCAL_MODELS.values():
        assert (root / model.export_script).is_file()
        weights = onnx_external_files(model.path / "model.onnx")
        assert len(weights) == 2
        for name in ("model.onnx", "tokenizer.json", "reference.json", *weights):
            path = model.path / name
            assert path.is_file(), path
            assert path.stat().st_size < 100 * 1024 * 1024, f"{path} is over 100 MB"


def onnx_external_files(path: Path) -> set[str]:
    """The external data files a graph names (their names are plain strings in the protobuf)."""
    return {name.decode() for name in re.findall(rb"model\.data\.\d+", path.read_bytes())}


def test_server_start_imports_no_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys; from mnemo.api.app import build_service; from mnemo.config import Settings;"
        f"build_service(Settings(data_dir=__import__('pathlib').Path({str(tmp_path)!r})));"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


DIM = 64


def fake_vector(text: str) -> list[float]:
    """Hashed bag of words: texts sharing words get similar vectors."""
    vector = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    return vector


class FakeEmbeddings(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    fail: ClassVar[bool] = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeEmbeddings.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), **body}
        )
        if FakeEmbeddings.fail:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "boom"}')
            return
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text)}
            for i, text in enumerate(body["input"])
        ]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def fake_endpoint() -> Iterator[str]:
    FakeEmbeddings.requests = []
    FakeEmbeddings.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_openai_compatible_provider(tmp_path, fake_endpoint: str) -> None:  # type: ignore[no-untyped-def]
    with app_client(
        tmp_path / "data",
        {
            "MNEMO_OPENAI_BASE_URL": fake_endpoint,
            "MNEMO_OPENAI_API_KEY": "sk-test-fake-key",
            "MNEMO_OPENAI_EMBEDDING_MODELS": "text-embedding-3-small",
        },
    ) as http:
        agent = http.post(
            "/v1/agents/", json={"name": "remote", "embedding": "openai/text-embedding-3-small"}
        ).json()
        assert agent["embedding"] == "openai/text-embedding-3-small"
        url = f"/v1/agents/{agent['id']}/archival-memory"
        for text in ["alpha beta gamma", "delta epsilon", "zeta eta theta"]:
            assert http.post(url, json={"text": text}).status_code == 200
        hits = http.get(
            f"{url}/search", params={"query": "epsilon delta", "mode": "vector", "top_k": 1}
        ).json()
        assert hits["results"][0]["content"] == "delta epsilon"
        assert FakeEmbeddings.requests[0]["path"] == "/v1/embeddings"
        assert FakeEmbeddings.requests[0]["model"] == "text-embedding-3-small"
        assert FakeEmbeddings.requests[0]["auth"] == "Bearer sk-test-fake-key"

        FakeEmbeddings.fail = True
        failed = http.post(url, json={"text": "will not embed"})
        assert failed.status_code == 502
        assert "HTTP 500" in failed.json()["detail"]
        assert len(http.get(url).json()) == 3  # nothing half-stored

        unknown = http.post("/v1/agents/", json={"embedding": "openai/text-embedding-ada-002"})
        assert unknown.status_code == 400
        assert "openai/text-embedding-3-small" in unknown.json()["detail"]


def test_query_embedding_cache_reuses_vectors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mnemo.config import Settings
    from mnemo.embed import EmbedderRegistry

    registry = EmbedderRegistry(Settings(data_dir=tmp_path, query_cache_size=2))
    first = registry.embed_query(registry.default_handle, "hello")
    assert registry.embed_query(registry.default_handle, "hello") is first
    registry.embed_query(registry.default_handle, "a")
    registry.embed_query(registry.default_handle, "b")
    assert registry.embed_query(registry.default_handle, "hello") is not first  # evicted


def test_health_still_works_with_remote_configured(tmp_path, fake_endpoint: str) -> None:  # type: ignore[no-untyped-def]
    with app_client(tmp_path / "data", {"MNEMO_OPENAI_BASE_URL": fake_endpoint}) as http:
        assert http.get("/v1/health/").json()["status"] == "ok"
