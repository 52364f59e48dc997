"""PostgreSQL schema migrations: an ordered list of named steps, each applied once, under an
advisory lock so replicas starting together never apply one twice.

A migration holds the SQL it shipped with, written out: it never calls live code, so what an
old migration does cannot change when today's code does. The constants above the migrations
describe today's schema, for the code that runs against it (bulk loads, repairs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mnemo.embed.catalog import MINILM, MPNET

Migration = Callable[[Any], None]
MIGRATIONS: list[tuple[str, Migration]] = []
LOCK_KEY = 0x6D6E656D6F  # "mnemo"
HNSW_TYPE = "halfvec"


@dataclass(frozen=True)
class HnswIndex:
    """An HNSW index on half-precision copies of one bundled model's embeddings, partial on its
    handle. m 16 (m 12 built faster, but its recall varied from build to build of the same
    rows); halfvec (m009: a smaller index, the same recall). The measurements:
    docs/benchmarks.md."""

    name: str
    handle: str
    dimension: int

    @property
    def handle_literal(self) -> str:
        """The partial index's predicate value, written into searches as a literal so that a
        prepared (generic) plan can still prove it and use the index."""
        return "'" + self.handle.replace("'", "''") + "'"

    def create(self, concurrently: bool = False) -> str:
        return (
            f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS {self.name}"
            f" ON passages USING hnsw ((embedding::{HNSW_TYPE}({self.dimension}))"
            f" {HNSW_TYPE}_cosine_ops) WITH (m = 16, ef_construction = 128)"
            f" WHERE embedding_handle = {self.handle_literal}"
        )


HNSW_INDEXES = (
    HnswIndex("passages_mpnet_hnsw", MPNET.handle, MPNET.dim),
    HnswIndex("passages_minilm_hnsw", MINILM.handle, MINILM.dim),
)
HNSW_BY_HANDLE = {index.handle: index for index in HNSW_INDEXES}


def hnsw_index_type(conn: Any, index: HnswIndex) -> str:
    """What an HNSW index holds: `vector` (MiniLM's, built before m009, kept by a populated
    database until rebuilt), `halfvec`, or HNSW_TYPE when there is no index. A search must
    order by the same expression as the index to use it."""
    row = conn.execute(
        "SELECT pg_get_indexdef(to_regclass(%s)) AS definition", (index.name,)
    ).fetchone()
    definition = row["definition"] or ""
    if "vector_cosine_ops" in definition and "halfvec" not in definition:
        return "vector"
    return HNSW_TYPE


def invalid_hnsw_indexes(conn: Any) -> list[HnswIndex]:
    """The HNSW indexes that are missing or unusable. A bulk load that died before building
    them leaves none; a CREATE INDEX CONCURRENTLY that failed leaves an invalid one."""
    return [
        index
        for index in HNSW_INDEXES
        if not conn.execute(
            "SELECT coalesce((SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = to_regclass(%s)), false) AS valid",
            (index.name,),
        ).fetchone()["valid"]
    ]


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def apply(conn: Any) -> list[str]:
    """Apply what this database has not seen, in one transaction. `conn` is a psycopg
    connection."""
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
        "ALTER TABLE passage_terms ADD CONSTRAINT passage_terms_pkey"
        " PRIMARY KEY (term, agent_key, passage_seq) INCLUDE (tf, doclen)",
        """CREATE FUNCTION mnemo_passage_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             INSERT INTO passage_terms (term, agent_key, passage_seq, tf, doclen)
             SELECT u.lexeme AS term, p.agent_key, p.seq AS passage_seq,
                    greatest(cardinality(u.positions), 1) AS tf, p.doclen
             FROM (SELECT seq, hashtextextended(agent_id, 0) AS agent_key, text_tsv,
                          (SELECT coalesce(sum(greatest(cardinality(l.positions), 1)),
                                           0)::integer
                           FROM unnest(text_tsv) l) AS doclen
                   FROM new_rows OFFSET 0) p,
                  unnest(p.text_tsv) u;
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
        """INSERT INTO passage_terms (term, agent_key, passage_seq, tf, doclen)
           SELECT u.lexeme AS term, p.agent_key, p.seq AS passage_seq,
                  greatest(cardinality(u.positions), 1) AS tf, p.doclen
           FROM (SELECT seq, hashtextextended(agent_id, 0) AS agent_key, text_tsv,
                        (SELECT coalesce(sum(greatest(cardinality(l.positions), 1)), 0)::integer
                         FROM unnest(text_tsv) l) AS doclen
                 FROM passages OFFSET 0) p,
                unnest(p.text_tsv) u""",
        "DROP INDEX passages_tsv",
    ):
        conn.execute(statement)


@migration
def m003_posting_blocks(conn: Any) -> None:
    """Postings packed a thousand to a row for keyword search (store/postgres_postings.py):
    common words at 1,000,000 passages read some 240,000 index tuples before."""
    for statement in (
        """CREATE TABLE posting_blocks (
            term TEXT NOT NULL,
            agent_key BIGINT NOT NULL,
            first_seq BIGINT NOT NULL,
            last_seq BIGINT NOT NULL,
            n INTEGER NOT NULL,
            postings BYTEA NOT NULL,
            PRIMARY KEY (term, agent_key, first_seq)
        )""",
        # Out of line and uncompressed: packed postings hardly compress, and a search reads
        # them whole.
        "ALTER TABLE posting_blocks ALTER COLUMN postings SET STORAGE EXTERNAL",
        "CREATE INDEX posting_blocks_agent ON posting_blocks (agent_key)",
        """CREATE TABLE posting_blocks_state (
            only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
            covered_seq BIGINT NOT NULL DEFAULT 0
        )""",
        "INSERT INTO posting_blocks_state DEFAULT VALUES",
        # terms: the passage's lexemes before and after the change, so compaction knows which
        # blocks to rewrite once the passage itself is gone.
        """CREATE TABLE posting_changes (
            agent_key BIGINT NOT NULL,
            passage_seq BIGINT NOT NULL,
            terms TEXT[] NOT NULL
        )""",
        "CREATE INDEX posting_changes_agent ON posting_changes (agent_key, passage_seq)",
        # Passages deleted with their agent need no change rows: the agent's blocks go at once.
        """CREATE FUNCTION mnemo_posting_changes_delete() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             INSERT INTO posting_changes (agent_key, passage_seq, terms)
             SELECT hashtextextended(o.agent_id, 0), o.seq, tsvector_to_array(o.text_tsv)
             FROM old_rows o
             WHERE o.seq <= (SELECT covered_seq FROM posting_blocks_state)
               AND EXISTS (SELECT 1 FROM agents a WHERE a.id = o.agent_id);
             RETURN NULL;
           END $$""",
        """CREATE TRIGGER passages_posting_changes_delete AFTER DELETE ON passages
           REFERENCING OLD TABLE AS old_rows
           FOR EACH STATEMENT EXECUTE FUNCTION mnemo_posting_changes_delete()""",
        """CREATE FUNCTION mnemo_posting_changes_update() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF OLD.seq <= (SELECT covered_seq FROM posting_blocks_state) THEN
               INSERT INTO posting_changes (agent_key, passage_seq, terms)
               VALUES (hashtextextended(OLD.agent_id, 0), OLD.seq,
                       tsvector_to_array(OLD.text_tsv) || tsvector_to_array(NEW.text_tsv));
             END IF;
             RETURN NULL;
           END $$""",
        """CREATE TRIGGER passages_posting_changes_update AFTER UPDATE OF text ON passages
           FOR EACH ROW WHEN (OLD.text IS DISTINCT FROM NEW.text)
           EXECUTE FUNCTION mnemo_posting_changes_update()""",
        """CREATE FUNCTION mnemo_agent_postings_delete() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             DELETE FROM posting_blocks
             WHERE agent_key IN (SELECT hashtextextended(id, 0) FROM old_rows);
             DELETE FROM posting_changes
             WHERE agent_key IN (SELECT hashtextextended(id, 0) FROM old_rows);
             RETURN NULL;
           END $$""",
        """CREATE TRIGGER agents_postings_delete AFTER DELETE ON agents
           REFERENCING OLD TABLE AS old_rows
           FOR EACH STATEMENT EXECUTE FUNCTION mnemo_agent_postings_delete()""",
    ):
        conn.execute(statement)
    conn.execute("LOCK TABLE passages IN SHARE MODE")
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute("TRUNCATE posting_blocks, posting_changes, passage_terms")
    conn.execute(
        """INSERT INTO posting_blocks (term, agent_key, first_seq, last_seq, n, postings)
        SELECT t.term, t.agent_key, min(t.passage_seq), max(t.passage_seq), count(*)::integer,
               string_agg(t.packed, ''::bytea ORDER BY t.passage_seq)
        FROM (SELECT t.*, (row_number() OVER (PARTITION BY t.term, t.agent_key
                                              ORDER BY t.passage_seq) - 1) / 1024 AS block
              FROM (SELECT t.term COLLATE "C" AS term, t.agent_key, t.passage_seq,
                           int8send(t.passage_seq * 16777216 + least(t.tf, 255) * 65536
                                    + least(t.doclen, 65535)) AS packed
                    FROM (SELECT u.lexeme AS term, p.agent_key, p.seq AS passage_seq,
                                 greatest(cardinality(u.positions), 1) AS tf, p.doclen
                          FROM (SELECT seq, hashtextextended(agent_id, 0) AS agent_key,
                                       text_tsv,
                                       (SELECT coalesce(sum(greatest(cardinality(l.positions),
                                                                     1)), 0)::integer
                                        FROM unnest(text_tsv) l) AS doclen
                                FROM passages OFFSET 0) p,
                               unnest(p.text_tsv) u) t) t) t
        GROUP BY t.term, t.agent_key, t.block"""
    )
    conn.execute(
        "UPDATE posting_blocks_state SET covered_seq = (SELECT coalesce(max(seq), 0) FROM passages)"
    )


def _rebuild_hnsw_if_empty(conn: Any, index: str) -> None:
    """Only an empty database's index is rebuilt by a migration: a rebuild would hold every
    replica's start for minutes. docs/postgres.md says how to rebuild a populated one without
    stopping searches."""
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM passages) AS empty").fetchone()["empty"]:
        conn.execute("DROP INDEX IF EXISTS passages_minilm_hnsw")
        conn.execute(index)


@migration
def m004_hnsw_m12(conn: Any) -> None:
    """Rebuilt an empty database's index with m 12; m007 went back to m 16."""
    _rebuild_hnsw_if_empty(
        conn,
        "CREATE INDEX IF NOT EXISTS passages_minilm_hnsw ON passages"
        " USING hnsw ((embedding::vector(384)) vector_cosine_ops)"
        " WITH (m = 12, ef_construction = 128)"
        " WHERE embedding_handle = 'mnemo/all-MiniLM-L6-v2'",
    )


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
            "ALTER TABLE passage_terms RENAME CONSTRAINT passage_terms_pkey TO passage_terms_key"
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
    """The HNSW index with m 16 again (HnswIndex): m 12's recall varied between builds."""
    _rebuild_hnsw_if_empty(
        conn,
        "CREATE INDEX IF NOT EXISTS passages_minilm_hnsw ON passages"
        " USING hnsw ((embedding::vector(384)) vector_cosine_ops)"
        " WITH (m = 16, ef_construction = 128)"
        " WHERE embedding_handle = 'mnemo/all-MiniLM-L6-v2'",
    )


@migration
def m008_passage_neighbourhood(conn: Any) -> None:
    """A bulk load's sort key for a passage (store/row_order.py): which k-means centre its
    embedding is nearest, or a random negative number for the rows that go first. The load
    clusters the table by it so that the HNSW index builds from rows grouped by neighbourhood.
    Set by bulk loads only; it means nothing afterwards."""
    conn.execute("ALTER TABLE passages ADD COLUMN IF NOT EXISTS neighbourhood integer")


@migration
def m009_hnsw_halfvec(conn: Any) -> None:
    """The HNSW index on half-precision copies of the embeddings (HnswIndex). A populated
    database keeps its `vector` index until rebuilt; searches use whichever it has
    (hnsw_index_type)."""
    _rebuild_hnsw_if_empty(
        conn,
        "CREATE INDEX IF NOT EXISTS passages_minilm_hnsw ON passages"
        " USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops)"
        " WITH (m = 16, ef_construction = 128)"
        " WHERE embedding_handle = 'mnemo/all-MiniLM-L6-v2'",
    )


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


@migration
def m012_hnsw_mpnet(conn: Any) -> None:
    """An HNSW index for all-mpnet-base-v2, the default model from now on. MiniLM's stays for
    the passages not yet moved by `mnemo reindex --embeddings`."""
    conn.execute(
        "CREATE INDEX IF NOT EXISTS passages_mpnet_hnsw ON passages"
        " USING hnsw ((embedding::halfvec(768)) halfvec_cosine_ops)"
        " WITH (m = 16, ef_construction = 128)"
        " WHERE embedding_handle = 'mnemo/all-mpnet-base-v2'"
    )


@migration
def m013_message_lexemes(conn: Any) -> None:
    """Recall messages searched as passages are: terms analysed in Python (mnemo/text.py) with
    the terms of the messages before them in their conversation, ranked by store/bm25.py, so
    both backends rank them alike. Each message's terms are a tsvector in `message_lexemes`
    (each term with as many positions as its frequency), a narrow table a search reads
    without the messages' text, through its GIN index and its agent index together.
    Existing messages get theirs from the re-analysis that runs while
    `lexical_index.analyzer` is not the current one. A message's context is the latest
    messages of its conversation, read from the conversation's index in time order."""
    for statement in (
        "ALTER TABLE messages ADD COLUMN context TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE messages DROP COLUMN content_tsv",
        """CREATE TABLE message_lexemes (
            message_seq BIGINT PRIMARY KEY REFERENCES messages (seq) ON DELETE CASCADE,
            agent_id TEXT NOT NULL,
            doclen INTEGER NOT NULL,
            lexemes tsvector NOT NULL
        )""",
        "CREATE INDEX message_lexemes_terms ON message_lexemes USING gin (lexemes)",
        "CREATE INDEX message_lexemes_agent ON message_lexemes (agent_id)",
        "DROP INDEX messages_conversation",
        "CREATE INDEX messages_conversation ON messages (conversation_id, created_at, seq)",
        "UPDATE lexical_index SET analyzer = '' WHERE EXISTS (SELECT 1 FROM messages)",
    ):
        conn.execute(statement)
