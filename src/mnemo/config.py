"""Server settings: defaults, then the config file, then environment variables.

The config file (config_file.py: one path and one parser for the server and every client)
holds the field names below at its top level or in its `[server]` table (e.g. `port = 8300`).
Environment variables are the field names upper-cased with a `MNEMO_` prefix (`MNEMO_PORT`,
`MNEMO_API_KEY`, ...).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from mnemo import config_file
from mnemo.errors import InvalidInput

DEFAULT_EMBEDDING = "mnemo/all-mpnet-base-v2"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("mnemo", appauthor=False))


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8283
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # empty: SQLite in data_dir; postgresql://… for a team
    pool_size: int = 5
    pool_timeout: float = 5.0
    statement_timeout_ms: int = 15_000
    migrate_on_start: bool = True
    # maintenance_work_mem for building the HNSW index after a bulk load: the graph should fit
    # (~2 KB per passage), or the build slows down many times. Mind the database's memory.
    index_build_memory: str = "256MB"
    # HNSW candidate list per vector search, 1 to 1,000; 0 grows it with the index (store/
    # postgres_vectors.py: auto_ef_search), which keeps recall@10 near 0.99 (docs/postgres.md).
    hnsw_ef_search: int = 0
    api_key: str = ""
    # Host names clients may use besides loopback and the bound address, comma-separated;
    # `*` for any, `*.example.com` for a domain (api/middleware.py: HostGuardMiddleware).
    allowed_hosts: str = ""
    # Every limit is explicit and enforced server-side.
    max_passage_chars: int = 1_000_000
    max_request_bytes: int = 64 * 1024 * 1024
    # Connections: a new one must send its first request within first_request_timeout
    # seconds; beyond max_connections the oldest idle one is closed (api/connections.py).
    max_connections: int = 1000
    worker_threads: int = 8  # requests handled at once; the rest wait their turn
    first_request_timeout: float = 10.0
    max_page_size: int = 1000
    max_top_k: int = 1000
    max_metadata_bytes: int = 64 * 1024  # one metadata object, as JSON
    max_tags: int = 100
    max_import_items: int = 20_000  # passages + messages + blocks in one imported file
    default_block_limit: int = 100_000
    # Embeddings: the local model is always available; an OpenAI-compatible endpoint is optional.
    default_embedding: str = DEFAULT_EMBEDDING
    openai_base_url: str = ""
    openai_api_key: str = ""
    openai_embedding_models: str = "text-embedding-3-small"
    embedding_threads: int = 0
    query_cache_size: int = 2048
    # Hybrid retrieval: a candidate's score is lexical_weight * its BM25 score over the best
    # candidate's + vector_weight * its cosine to the query (chosen by bench/locomo.py).
    lexical_weight: float = 0.3
    vector_weight: float = 0.7
    # A new passage of the same type this similar (cosine) to an existing one is merged into it
    # when the writer asks for de-duplication (`dedupe: true`).
    dedupe_similarity: float = 0.95
    log_level: str = "info"
    log_format: str = "auto"  # json | text | auto (json unless stderr is a terminal)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "mnemo.sqlite3"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults < config file < environment < explicit overrides (e.g. CLI flags)."""
        from mnemo.remote.config import ClientConfig

        document = config_file.load()
        config_file.check_keys(
            document, {f.name for f in dataclasses.fields(cls)} | set(ClientConfig.DEFAULTS)
        )
        values = config_file.settings(document, "server")
        for f in dataclasses.fields(cls):
            env = os.environ.get(f"MNEMO_{f.name.upper()}")
            if env is not None and env != "":
                values[f.name] = env
        if "api_key" not in values and os.environ.get("LETTA_SERVER_PASSWORD"):
            values["api_key"] = os.environ["LETTA_SERVER_PASSWORD"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.typed(values)

    @classmethod
    def typed(cls, values: dict[str, Any]) -> Settings:
        """Settings from raw values (strings from the environment or TOML values), each made
        the type of its field; client settings are ignored."""
        return cls(**_coerce(values))


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in types:
            continue  # a client setting (remote/config.py)
        kind = types[name]
        try:
            if kind == "bool":
                out[name] = config_file.parse_bool(name, raw)
            elif kind == "int":
                out[name] = int(raw)
            elif kind == "float":
                out[name] = float(raw)
            elif kind == "Path":
                out[name] = Path(raw).expanduser()
            else:
                out[name] = str(raw)
        except ValueError as exc:
            raise InvalidInput(f"setting {name!r}: cannot use {raw!r} ({exc})") from exc
    return out
