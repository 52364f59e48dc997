"""SQLite schema migrations: an ordered list of named steps, each applied once.

Add a step by appending a function decorated with @migration; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def apply(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration this database has not seen, in order. Returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", (name,)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Like executescript, but inside the caller's transaction (executescript commits first)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement[:80]!r}")


def _fts_triggers(table: str, column: str) -> str:
    fts = f"{table}_fts"
    return f"""
    CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN
        INSERT INTO {fts}(rowid, {column}) VALUES (new.seq, new.{column});
    END;
    CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
        INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.seq, old.{column});
    END;
    CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {column} ON {table} BEGIN
        INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.seq, old.{column});
        INSERT INTO {fts}(rowid, {column}) VALUES (new.seq, new.{column});
    END;
    """


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE agents (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT,
            system TEXT NOT NULL DEFAULT '',
            agent_type TEXT NOT NULL,
            model TEXT,
            embedding TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{}',
            timezone TEXT NOT NULL DEFAULT 'UTC',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX agents_created ON agents (created_at, seq);
        CREATE INDEX agents_name ON agents (name);

        CREATE TABLE blocks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL,
            value TEXT NOT NULL,
            char_limit INTEGER NOT NULL,
            description TEXT,
            read_only INTEGER NOT NULL DEFAULT 0,
            metadata TEXT NOT NULL DEFAULT '{}',
            tags TEXT NOT NULL DEFAULT '[]',
            owner_agent_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX blocks_label ON blocks (label);

        CREATE TABLE agent_blocks (
            agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
            block_id TEXT NOT NULL REFERENCES blocks (id) ON DELETE CASCADE,
            attached_at TEXT NOT NULL,
            PRIMARY KEY (agent_id, block_id)
        );
        CREATE INDEX agent_blocks_block ON agent_blocks (block_id);

        CREATE TABLE passages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{}',
            embedding_handle TEXT NOT NULL,
            embedding BLOB,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX passages_agent_created ON passages (agent_id, created_at, seq);
        CREATE VIRTUAL TABLE passages_fts USING fts5 (
            text, content='passages', content_rowid='seq',
            tokenize='porter unicode61 remove_diacritics 2'
        );

        -- Bumped on every passage insert/delete, so an in-memory vector index can tell when
        -- another process changed an agent's passages.
        CREATE TABLE passage_versions (
            agent_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL
        );
        CREATE TRIGGER passages_version_insert AFTER INSERT ON passages BEGIN
            INSERT INTO passage_versions (agent_id, version) VALUES (new.agent_id, 1)
            ON CONFLICT (agent_id) DO UPDATE SET version = version + 1;
        END;
        CREATE TRIGGER passages_version_delete AFTER DELETE ON passages BEGIN
            INSERT INTO passage_versions (agent_id, version) VALUES (old.agent_id, 1)
            ON CONFLICT (agent_id) DO UPDATE SET version = version + 1;
        END;

        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
            message_type TEXT NOT NULL,
            content TEXT NOT NULL,
            conversation_id TEXT,
            tool_name TEXT,
            tool_call_id TEXT,
            is_err INTEGER NOT NULL DEFAULT 0,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX messages_agent_created ON messages (agent_id, created_at, seq);
        CREATE INDEX messages_conversation ON messages (conversation_id);
        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            content, content='messages', content_rowid='seq',
            tokenize='porter unicode61 remove_diacritics 2'
        );

        CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            request_hash TEXT NOT NULL,
            status_code INTEGER,
            body BLOB,
            media_type TEXT,
            complete INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        """
        + _fts_triggers("passages", "text")
        + _fts_triggers("messages", "content"),
    )


@migration
def m002_keyword_postings(conn: sqlite3.Connection) -> None:
    """Keyword search over terms analysed in Python (mnemo/text.py) instead of FTS5's porter
    tokenizer, so both backends index and rank alike. Existing passages get their postings
    from the re-analysis that runs when `lexical_index.analyzer` is not the current one."""
    _run_script(
        conn,
        """
        DROP TRIGGER passages_fts_insert;
        DROP TRIGGER passages_fts_delete;
        DROP TRIGGER passages_fts_update;
        DROP TABLE passages_fts;
        ALTER TABLE passages ADD COLUMN context TEXT NOT NULL DEFAULT '';
        CREATE TABLE passage_postings (
            term TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            tf INTEGER NOT NULL,
            doclen INTEGER NOT NULL,
            PRIMARY KEY (term, agent_id, seq)
        ) WITHOUT ROWID;
        CREATE INDEX passage_postings_seq ON passage_postings (seq);
        CREATE TRIGGER passages_postings_delete AFTER DELETE ON passages BEGIN
            DELETE FROM passage_postings WHERE seq = old.seq;
        END;
        CREATE TABLE lexical_index (
            only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
            analyzer TEXT NOT NULL
        );
        INSERT INTO lexical_index (only_row, analyzer) VALUES (1, '');
        """,
    )


@migration
def m003_passages_by_embedding(conn: sqlite3.Connection) -> None:
    """Which of an agent's passages are embedded with another model than its own: searches ask
    this on every call while `mnemo reindex --embeddings` is moving an agent to a new model."""
    conn.execute("CREATE INDEX passages_agent_handle ON passages (agent_id, embedding_handle)")


@migration
def m004_idempotency_keys_by_age(conn: sqlite3.Connection) -> None:
    """Expired Idempotency-Keys are deleted by age on every claim."""
    conn.execute("CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)")


@migration
def m005_passages_by_type(conn: sqlite3.Connection) -> None:
    """A project's passages of one type, newest first (session summaries at every session
    start, the viewer's and the CLI's type filters) from an index instead of a scan of every
    passage's metadata. The filters write the type's path as this literal to use it."""
    # The type leads: an index led by agent_id would tempt the planner for every agent's
    # listing, reading rows in index order instead of scanning the table.
    conn.execute(
        "CREATE INDEX passages_type_agent ON passages"
        """ (json_extract(metadata, '$."type"'), agent_id, created_at, seq)"""
    )


@migration
def m006_message_terms(conn: sqlite3.Connection) -> None:
    """Recall messages searched as passages are: terms analysed in Python (mnemo/text.py) with
    the terms of the messages before them in their conversation, ranked by store/bm25.py, so
    both backends rank them alike. The terms are stored with each message (`terms`, `context`,
    `doclen`) and FTS5 indexes them as they are: the `ascii` tokenizer splits them only at the
    spaces between them and folds no other letter (unicode61 folds the Greek final sigma and
    other letters the analyzer keeps). `messages_vocab` reads each term's occurrences per
    message. Existing messages get their terms from the re-analysis that runs while
    `lexical_index.analyzer` is not the current one. A message's context is the latest
    messages of its conversation, read from the conversation's index in time order."""
    _run_script(
        conn,
        """
        DROP TRIGGER messages_fts_insert;
        DROP TRIGGER messages_fts_delete;
        DROP TRIGGER messages_fts_update;
        DROP TABLE messages_fts;
        ALTER TABLE messages ADD COLUMN terms TEXT NOT NULL DEFAULT '';
        ALTER TABLE messages ADD COLUMN context TEXT NOT NULL DEFAULT '';
        ALTER TABLE messages ADD COLUMN doclen INTEGER NOT NULL DEFAULT 0;
        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            terms, context, content='messages', content_rowid='seq',
            tokenize='ascii'
        );
        CREATE VIRTUAL TABLE messages_vocab USING fts5vocab (messages_fts, 'instance');
        INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, terms, context)
            VALUES (new.seq, new.terms, new.context);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, terms, context)
            VALUES ('delete', old.seq, old.terms, old.context);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF terms, context ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, terms, context)
            VALUES ('delete', old.seq, old.terms, old.context);
            INSERT INTO messages_fts (rowid, terms, context)
            VALUES (new.seq, new.terms, new.context);
        END;
        DROP INDEX messages_conversation;
        CREATE INDEX messages_conversation ON messages (conversation_id, created_at, seq);
        UPDATE lexical_index SET analyzer = '' WHERE EXISTS (SELECT 1 FROM messages);
        """,
    )
