"""PostgreSQL schema migrations: an ordered list of named steps, each applied once, under an
advisory lock so replicas starting together never apply one twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Migration = Callable[[Any], None]
MIGRATIONS: list[tuple[str, Migration]] = []
LOCK_KEY = 0x6D6E656D6F  # "mnemo"


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def apply(conn: Any) -> list[str]:
    """Apply what this database has not seen. `conn` is a psycopg connection (autocommit off)."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations"
            " (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in conn.execute("SELECT name FROM _migrations")}
        for name, step in MIGRATIONS:
            if name in done:
                continue
            step(conn)
            conn.execute("INSERT INTO _migrations (name) VALUES (%s)", (name,))
            applied.append(name)
    return applied


def pending(conn: Any) -> list[str]:
    """Migrations this database lacks (all of them when it has never been migrated)."""
    exists = conn.execute("SELECT to_regclass('_migrations') IS NOT NULL AS present").fetchone()
    if not exists["present"]:
        return [name for name, _ in MIGRATIONS]
    done = {row["name"] for row in conn.execute("SELECT name FROM _migrations")}
    return [name for name, _ in MIGRATIONS if name not in done]


@migration
def m001_initial(conn: Any) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for statement in """
        CREATE TABLE agents (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT,
            system TEXT NOT NULL DEFAULT '',
            agent_type TEXT NOT NULL,
            model TEXT,
            embedding TEXT NOT NULL,
            tags JSONB NOT NULL DEFAULT '[]',
            metadata JSONB NOT NULL DEFAULT '{}',
            timezone TEXT NOT NULL DEFAULT 'UTC',
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX agents_created ON agents (created_at, seq);
        CREATE INDEX agents_name ON agents (name);
        CREATE TABLE blocks (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL,
            value TEXT NOT NULL,
            char_limit INTEGER NOT NULL,
            description TEXT,
            read_only BOOLEAN NOT NULL DEFAULT false,
            metadata JSONB NOT NULL DEFAULT '{}',
            tags JSONB NOT NULL DEFAULT '[]',
            owner_agent_id TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX blocks_label ON blocks (label);
        CREATE INDEX blocks_created ON blocks (created_at, seq);
        CREATE TABLE agent_blocks (
            agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
            block_id TEXT NOT NULL REFERENCES blocks (id) ON DELETE CASCADE,
            attached_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (agent_id, block_id)
        );
        CREATE INDEX agent_blocks_block ON agent_blocks (block_id);
        CREATE TABLE passages (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            tags JSONB NOT NULL DEFAULT '[]',
            metadata JSONB NOT NULL DEFAULT '{}',
            embedding_handle TEXT NOT NULL,
            embedding vector,
            text_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX passages_agent_created ON passages (agent_id, created_at, seq);
        CREATE INDEX passages_tsv ON passages USING gin (text_tsv);
        CREATE INDEX passages_metadata ON passages USING gin (metadata jsonb_path_ops);
        CREATE INDEX passages_tags ON passages USING gin (tags);
        CREATE INDEX passages_minilm_hnsw ON passages
            USING hnsw ((embedding::vector(384)) vector_cosine_ops)
            WHERE embedding_handle = 'mnemo/all-MiniLM-L6-v2';
        CREATE TABLE messages (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
            message_type TEXT NOT NULL,
            content TEXT NOT NULL,
            content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
            conversation_id TEXT,
            tool_name TEXT,
            tool_call_id TEXT,
            is_err BOOLEAN NOT NULL DEFAULT false,
            metadata JSONB NOT NULL DEFAULT '{}',
            created_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX messages_agent_created ON messages (agent_id, created_at, seq);
        CREATE INDEX messages_conversation ON messages (conversation_id);
        CREATE INDEX messages_tsv ON messages USING gin (content_tsv);
        CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            request_hash TEXT NOT NULL,
            status_code INTEGER,
            body BYTEA,
            media_type TEXT,
            complete BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
    """.split(";"):
        if statement.strip():
            conn.execute(statement)
