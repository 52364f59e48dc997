"""PostgreSQL schema migrations: an ordered list of named steps, each applied once, under an
advisory lock so replicas starting together never apply one twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mnemo.config import DEFAULT_EMBEDDING
from mnemo.store.postgres_postings import (
    POSTINGS_FILL,
    POSTINGS_KEY,
    POSTINGS_KEY_NAME,
    build_blocks,
    create_schema,
)

Migration = Callable[[Any], None]
MIGRATIONS: list[tuple[str, Migration]] = []
LOCK_KEY = 0x6D6E656D6F  # "mnemo"
# The HNSW index is partial on the default embedder; searches write the predicate as this
# literal so a prepared (generic) plan can still prove it and use the index.
INDEXED_HANDLE = "'" + DEFAULT_EMBEDDING.replace("'", "''") + "'"
# m 16 (m 12 built faster, but its recall varied from build to build of the same rows), on
# half-precision copies of the embeddings (`halfvec`, m009: a smaller index, the same recall).
# The measurements: docs/benchmarks.md.
HNSW_INDEX_NAME = "passages_minilm_hnsw"
HNSW_DIMENSION = 384
HNSW_TYPE = "halfvec"
HNSW_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX_NAME} ON passages"
    f" USING hnsw ((embedding::{HNSW_TYPE}({HNSW_DIMENSION})) {HNSW_TYPE}_cosine_ops)"
    " WITH (m = 16, ef_construction = 128)"
    f" WHERE embedding_handle = {INDEXED_HANDLE}"
)
# The same index built without blocking writers, for a database that is in use.
HNSW_INDEX_CONCURRENTLY = HNSW_INDEX.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)


def hnsw_index_type(conn: Any) -> str:
    """What the HNSW index holds: `vector` (built before m009, kept by a populated database until
    rebuilt), `halfvec`, or HNSW_TYPE when there is no index. A search must order by the same
    expression as the index to use it."""
    row = conn.execute(
        "SELECT pg_get_indexdef(to_regclass(%s)) AS definition", (HNSW_INDEX_NAME,)
    ).fetchone()
    definition = row["definition"] or ""
    if "vector_cosine_ops" in definition and "halfvec" not in definition:
        return "vector"
    return HNSW_TYPE


def hnsw_index_valid(conn: Any) -> bool:
    """Whether the HNSW index exists and is usable. A bulk load that died before building it
    leaves none; a CREATE INDEX CONCURRENTLY that failed leaves an invalid one."""
    row = conn.execute(
        "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)),"
        " false) AS valid",
        (HNSW_INDEX_NAME,),
    ).fetchone()
    return bool(row["valid"])


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
            WITH (m = 16, ef_construction = 128)
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


@migration
def m002_bm25_postings(conn: Any) -> None:
    """Keyword search ranked by BM25 from a postings table (term, agent, passage) read by an
    index-only scan. ts_rank over the GIN index had to read every matching row (268 ms at
    1,000,000 passages); the postings need only index pages. Kept in step by triggers, so COPY,
    cascaded deletes and every replica maintain it without application code."""
    for statement in (
        """CREATE FUNCTION mnemo_token_count(tsvector) RETURNS integer
           LANGUAGE sql IMMUTABLE PARALLEL SAFE
           AS $$ SELECT coalesce(sum(greatest(cardinality(positions), 1)), 0)::integer
                 FROM unnest($1) $$""",
        # agent_key is a 64-bit hash of the agent id, computable from a passage row alone,
        # so the delete trigger works even when the agent row is already gone (cascade).
        """CREATE TABLE passage_terms (
            term TEXT NOT NULL,
            agent_key BIGINT NOT NULL,
            passage_seq BIGINT NOT NULL,
            tf INTEGER NOT NULL,
            doclen INTEGER NOT NULL
        )""",
        f"ALTER TABLE passage_terms ADD {POSTINGS_KEY}",
        """CREATE FUNCTION mnemo_passage_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             """
        + POSTINGS_FILL.format(source="new_rows")
        + """;
             RETURN NULL;
           END $$""",
        """CREATE FUNCTION mnemo_passage_terms_delete() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             DELETE FROM passage_terms t
             USING (SELECT u.lexeme AS term, hashtextextended(o.agent_id, 0) AS agent_key,
                           o.seq FROM old_rows o, unnest(o.text_tsv) u) d
             WHERE t.term = d.term AND t.agent_key = d.agent_key AND t.passage_seq = d.seq;
             RETURN NULL;
           END $$""",
        """CREATE FUNCTION mnemo_passage_terms_update() RETURNS trigger LANGUAGE plpgsql AS $$
           DECLARE
             length integer := mnemo_token_count(NEW.text_tsv);
           BEGIN
             DELETE FROM passage_terms
             WHERE term = ANY(tsvector_to_array(OLD.text_tsv))
               AND agent_key = hashtextextended(OLD.agent_id, 0) AND passage_seq = OLD.seq;
             INSERT INTO passage_terms (term, agent_key, passage_seq, tf, doclen)
             SELECT u.lexeme, hashtextextended(NEW.agent_id, 0), NEW.seq,
                    greatest(cardinality(u.positions), 1), length
             FROM unnest(NEW.text_tsv) u;
             RETURN NULL;
           END $$""",
        """CREATE TRIGGER passages_terms_insert AFTER INSERT ON passages
           REFERENCING NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION mnemo_passage_terms_insert()""",
        """CREATE TRIGGER passages_terms_delete AFTER DELETE ON passages
           REFERENCING OLD TABLE AS old_rows
           FOR EACH STATEMENT EXECUTE FUNCTION mnemo_passage_terms_delete()""",
        """CREATE TRIGGER passages_terms_update AFTER UPDATE OF text ON passages
           FOR EACH ROW WHEN (OLD.text IS DISTINCT FROM NEW.text)
           EXECUTE FUNCTION mnemo_passage_terms_update()""",
        POSTINGS_FILL.format(source="passages"),
        "DROP INDEX passages_tsv",
    ):
        conn.execute(statement)


@migration
def m003_posting_blocks(conn: Any) -> None:
    """Postings packed a thousand to a row for keyword search (store/postgres_postings.py):
    common words at 1,000,000 passages read some 240,000 index tuples before."""
    create_schema(conn)
    conn.execute("LOCK TABLE passages IN SHARE MODE")
    build_blocks(conn)


def _rebuild_hnsw_if_empty(conn: Any) -> None:
    """Only an empty database's index is rebuilt by a migration: a rebuild would hold every
    replica's start for minutes (about 8 per million passages). docs/postgres.md says how to
    rebuild a populated one without stopping searches."""
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM passages) AS empty").fetchone()["empty"]:
        conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX_NAME}")
        conn.execute(HNSW_INDEX)


@migration
def m004_hnsw_m12(conn: Any) -> None:
    """Rebuilt an empty database's index with m 12; m007 went back to m 16."""
    _rebuild_hnsw_if_empty(conn)


@migration
def m005_inline_embeddings(conn: Any) -> None:
    """Keep embeddings in the passage row. A row with a 384-float embedding (1.5 KB), its text
    and tsvector passes PostgreSQL's 2 KB toasting threshold, and pgvector's storage moved the
    embedding out of line: two rows in three at 10,000 bench passages, each a TOAST lookup for
    the HNSW build and every exact scan. Applies to rows written from now on."""
    conn.execute("ALTER TABLE passages SET (toast_tuple_target = 8160)")


@migration
def m006_recent_passage_terms(conn: Any) -> None:
    """`passage_terms` keeps only what no block holds: postings of passages above covered_seq
    and of those changed since they were blocked (store/postgres_postings.py). Its key is
    renamed so that older replicas, which rebuild blocks from it, stop compacting."""
    conn.execute("LOCK TABLE passages IN SHARE MODE")
    old_key = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'passage_terms_pkey') AS found"
    ).fetchone()["found"]
    if old_key:
        conn.execute(
            f"ALTER TABLE passage_terms RENAME CONSTRAINT passage_terms_pkey TO {POSTINGS_KEY_NAME}"
        )
    # Copied out and back: a TRUNCATE gives the disk back at once, a DELETE only to a VACUUM.
    conn.execute(
        "CREATE TEMPORARY TABLE kept_terms ON COMMIT DROP AS SELECT * FROM passage_terms t"
        " WHERE t.passage_seq > (SELECT covered_seq FROM posting_blocks_state)"
        "  OR t.passage_seq IN (SELECT passage_seq FROM posting_changes)"
    )
    conn.execute("TRUNCATE passage_terms")
    conn.execute("INSERT INTO passage_terms SELECT * FROM kept_terms")


@migration
def m007_hnsw_m16(conn: Any) -> None:
    """The HNSW index with m 16 again (HNSW_INDEX): m 12's recall varied between builds."""
    _rebuild_hnsw_if_empty(conn)


@migration
def m008_passage_neighbourhood(conn: Any) -> None:
    """A bulk load's sort key for a passage (store/row_order.py): which k-means centre its
    embedding is nearest, or a random negative number for the rows that go first. The load
    clusters the table by it so that the HNSW index builds from rows grouped by neighbourhood.
    Set by bulk loads only; it means nothing afterwards."""
    conn.execute("ALTER TABLE passages ADD COLUMN IF NOT EXISTS neighbourhood integer")


@migration
def m009_hnsw_halfvec(conn: Any) -> None:
    """The HNSW index on half-precision copies of the embeddings (HNSW_INDEX). A populated
    database keeps its `vector` index until rebuilt; searches use whichever it has
    (hnsw_index_type)."""
    _rebuild_hnsw_if_empty(conn)


@migration
def m010_python_lexemes(conn: Any) -> None:
    """Keyword search over terms analysed in Python (mnemo/text.py), written by the store as a
    tsvector literal in `lexemes`, instead of to_tsvector('english', text): both backends then
    index and rank alike. Existing passages get their lexemes, and all postings are rebuilt,
    by the re-analysis that runs while `lexical_index.analyzer` is not the current one."""
    for statement in (
        "ALTER TABLE passages ADD COLUMN context TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE passages ADD COLUMN lexemes TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE passages DROP COLUMN text_tsv",
        "ALTER TABLE passages ADD COLUMN text_tsv tsvector"
        " GENERATED ALWAYS AS (lexemes::tsvector) STORED",
        """CREATE TABLE lexical_index (
            only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
            analyzer TEXT NOT NULL DEFAULT ''
        )""",
        "INSERT INTO lexical_index DEFAULT VALUES",
    ):
        conn.execute(statement)


@migration
def m011_idempotency_keys_by_age(conn: Any) -> None:
    """Expired Idempotency-Keys are deleted by age on every claim."""
    conn.execute("CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)")
