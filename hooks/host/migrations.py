"""The schema as named, ordered, append-only migrations, for SQLite and for PostgreSQL.

A released migration is never edited: a change to the schema is a new ``Migration`` at the end,
with a body for each engine under the same name, so that both databases remember the same list.
Each migration runs in its own transaction together with the row that records it (in the
``_migrations`` table), so a crash leaves the database either before or after it, never
half-way; and two processes opening a database at once apply each migration once (SQLite:
``BEGIN IMMEDIATE`` takes the write lock before the check; PostgreSQL: an advisory lock taken
inside each migration's transaction).

SQLite: times are ISO 8601 strings in UTC with a fixed width, so that text order is time order;
JSON columns are TEXT, since a column declared ``JSON`` would get NUMERIC affinity.
PostgreSQL: times are ``timestamptz``; JSON is ``json`` (kept as written, byte for byte, unlike
``jsonb``, which reorders keys and refuses ``\\u0000`` that chat text may carry); encrypted
bodies and keys are ``bytea``; keys that pages are sorted by use the ``C`` collation, byte order
as in SQLite, whatever the database's locale.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor

SqliteBody = Callable[[sqlite3.Connection], None]

# Any fixed number: the key of the advisory lock that serialises migrations on PostgreSQL.
POSTGRES_LOCK = 0x686F6F6B732D6D  # "hooks-m"


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its ``name`` (what the databases remember), the function that
    applies it to a SQLite connection, and its PostgreSQL SQL (text, or a function that makes
    the text when it is applied)."""

    name: str
    sqlite: SqliteBody
    postgres: str | Callable[[], str]

    def postgres_sql(self) -> str:
        return self.postgres if isinstance(self.postgres, str) else self.postgres()


MIGRATIONS: list[Migration] = []


def migration(*, postgres: str | Callable[[], str]) -> Callable[[SqliteBody], Migration]:
    """Register the decorated SQLite function, with ``postgres`` beside it, as the next
    migration; the function's name is the migration's."""

    def register(fn: SqliteBody) -> Migration:
        step = Migration(fn.__name__, fn, postgres)
        MIGRATIONS.append(step)
        return step

    return register


# AUTOINCREMENT and IDENTITY: an integration id is part of its webhook URL and must never be
# reused (a sequence hands out each number once, even to a transaction that rolls back).
@migration(
    postgres="""
    CREATE TABLE integrations (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        plugin text NOT NULL,
        name text NOT NULL,
        settings json NOT NULL DEFAULT '{}',
        secrets text NOT NULL DEFAULT '{}',
        connection json NOT NULL DEFAULT '{}',
        webhook_token text NOT NULL UNIQUE,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    """
)
def m001_integrations(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE integrations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            plugin TEXT NOT NULL,
            name TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            secrets TEXT NOT NULL DEFAULT '{}',
            connection TEXT NOT NULL DEFAULT '{}',
            webhook_token TEXT NOT NULL UNIQUE,
            version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )


# The catalog is small and always read whole: one row holding it as JSON.
@migration(
    postgres="""
    CREATE TABLE catalog (
        id integer PRIMARY KEY CHECK (id = 1),
        data json NOT NULL,
        updated_at timestamptz NOT NULL
    );
    """
)
def m002_catalog(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE catalog (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )


# No foreign key to visitor_sessions: a plugin may bind a session id the host never saw.
@migration(
    postgres="""
    CREATE TABLE visitor_sessions (
        id text PRIMARY KEY,
        data json NOT NULL,
        created_at timestamptz NOT NULL
    );
    CREATE TABLE session_bindings (
        integration_id bigint NOT NULL REFERENCES integrations (id),
        external_id text NOT NULL,
        session_id text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (integration_id, external_id)
    );
    """
)
def m003_visitor_sessions(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE visitor_sessions (
            id TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE session_bindings (
            integration_id INTEGER NOT NULL REFERENCES integrations (id),
            external_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (integration_id, external_id)
        )
        """
    )


@migration(
    postgres="""
    CREATE TABLE appeals (
        key text COLLATE "C" PRIMARY KEY,
        integration_id bigint NOT NULL REFERENCES integrations (id),
        created_at timestamptz NOT NULL,
        record json NOT NULL,
        first_seen_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX appeals_by_integration ON appeals (integration_id, created_at);
    CREATE INDEX appeals_by_time ON appeals (created_at);
    """
)
def m004_appeals(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE appeals (
            key TEXT PRIMARY KEY,
            integration_id INTEGER NOT NULL REFERENCES integrations (id),
            created_at TEXT NOT NULL,
            record TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX appeals_by_integration ON appeals (integration_id, created_at)")
    db.execute("CREATE INDEX appeals_by_time ON appeals (created_at)")


# The request is JSON without its body; the body is kept as raw bytes because signatures are
# checked over the exact bytes and a body need not be valid UTF-8.
@migration(
    postgres="""
    CREATE TABLE webhook_inbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        integration_id bigint NOT NULL REFERENCES integrations (id),
        body_sha256 text NOT NULL,
        request json NOT NULL,
        body bytea NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'done', 'ignored', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        last_error text,
        outcome json,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        UNIQUE (integration_id, body_sha256)
    );
    CREATE INDEX webhook_inbox_due ON webhook_inbox (integration_id, status, next_attempt_at);
    CREATE INDEX webhook_inbox_by_status ON webhook_inbox (status);
    """
)
def m005_webhook_inbox(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE webhook_inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            integration_id INTEGER NOT NULL REFERENCES integrations (id),
            body_sha256 TEXT NOT NULL,
            request TEXT NOT NULL,
            body BLOB NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('pending', 'done', 'ignored', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            outcome TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (integration_id, body_sha256)
        )
        """
    )
    db.execute(
        "CREATE INDEX webhook_inbox_due ON webhook_inbox (integration_id, status, next_attempt_at)"
    )
    db.execute("CREATE INDEX webhook_inbox_by_status ON webhook_inbox (status)")


@migration(postgres="CREATE TABLE host_meta (key text PRIMARY KEY, value bytea NOT NULL);")
def m006_host_meta(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE host_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")


# Spent single-use values (OAuth states), each kept until it would have expired anyway.
@migration(
    postgres="""
    CREATE TABLE used_nonces (nonce text PRIMARY KEY, expires_at timestamptz NOT NULL);
    CREATE INDEX used_nonces_by_expiry ON used_nonces (expires_at);
    """
)
def m007_used_nonces(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE used_nonces (nonce TEXT PRIMARY KEY, expires_at TEXT NOT NULL)")
    db.execute("CREATE INDEX used_nonces_by_expiry ON used_nonces (expires_at)")


def _procrastinate_schema() -> str:
    """procrastinate's schema, as the installed version ships it. Applied once, here: a later
    procrastinate whose schema differs needs its migration scripts
    (``procrastinate/sql/migrations``) applied as new migrations of ours."""
    from procrastinate.schema import SchemaManager

    return str(SchemaManager.get_schema())


# The host's jobs, so that none lives only in a process. On PostgreSQL procrastinate holds them
# (``hooks.host.pg_jobs``); on SQLite this table does (``hooks.host.sqlite_jobs``), with the
# same concurrency model as procrastinate's schema in its two partial unique indexes: one
# waiting job per (name, key), one running job per lock. Times are Unix seconds.
@migration(postgres=_procrastinate_schema)
def m008_job_queue(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            key TEXT NOT NULL,
            lock TEXT,
            status TEXT NOT NULL CHECK (status IN ('todo', 'doing')),
            scheduled_at REAL NOT NULL,
            worker TEXT,
            heartbeat_at REAL
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX jobs_one_waiting ON jobs (name, key) WHERE status = 'todo'")
    db.execute("CREATE UNIQUE INDEX jobs_one_running ON jobs (lock) WHERE status = 'doing'")
    db.execute("CREATE INDEX jobs_due ON jobs (status, scheduled_at)")


# When each periodic task last ran, so that it runs once per period however many workers
# there are (``Repository.claim_period``).
@migration(
    postgres="""
    CREATE TABLE periodic_claims (name text PRIMARY KEY, claimed_at timestamptz NOT NULL);
    """
)
def m009_periodic_claims(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE periodic_claims (name TEXT PRIMARY KEY, claimed_at TEXT NOT NULL)")


# Leaky buckets shared by every process (``Repository.take_rate``): a remote service's request
# rate limit, counted on our side. Times are Unix seconds of the hosts' wall clocks.
@migration(
    postgres="""
    CREATE TABLE rate_buckets (
        key text PRIMARY KEY,
        level double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    """
)
def m010_rate_buckets(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE rate_buckets (key TEXT PRIMARY KEY, level REAL NOT NULL,"
        " updated_at REAL NOT NULL)"
    )


# Webhook URL tokens were kept in the clear until now. Encrypting them needs the host key, which
# a migration does not have, so this one only marks the database (a ``host_meta`` row); the
# repository that opens it next encrypts the tokens and removes the mark in one transaction.
PLAIN_WEBHOOK_TOKENS = "plain_webhook_tokens"


@migration(
    postgres=f"INSERT INTO host_meta (key, value) VALUES ('{PLAIN_WEBHOOK_TOKENS}', '\\x01');"
)
def m011_encrypt_webhook_tokens(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO host_meta (key, value) VALUES (?, x'01')", (PLAIN_WEBHOOK_TOKENS,))


# Workers on SQLite prove they are alive here even while idle (``/readyz``: "a worker seen
# recently"); on PostgreSQL procrastinate's own ``procrastinate_workers`` does. Unix seconds.
@migration(postgres="SELECT 1; -- procrastinate_workers holds the workers' heartbeats")
def m012_job_workers(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE job_workers (name TEXT PRIMARY KEY, heartbeat_at REAL NOT NULL)")


# A deleted integration stays as a row marked deleted: its appeals are the client's raw data and
# stay in "Raw data → Appeals and goals"; only its secrets, connection, inbox and bindings go.
@migration(postgres="ALTER TABLE integrations ADD COLUMN deleted_at timestamptz;")
def m013_integration_deleted_at(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE integrations ADD COLUMN deleted_at TEXT")


# Short codes that carry a visit into a messenger chat (``Repository.add_messenger_code``): a
# code is the integration's, names one visit, and is taken by the first dialog that redeems it
# (``external_id``, null until then) before ``expires_at``.
@migration(
    postgres="""
    CREATE TABLE messenger_codes (
        code text PRIMARY KEY,
        integration_id bigint NOT NULL REFERENCES integrations (id),
        session_id text NOT NULL,
        external_id text,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL
    );
    """
)
def m014_messenger_codes(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE messenger_codes (
            code TEXT PRIMARY KEY,
            integration_id INTEGER NOT NULL REFERENCES integrations (id),
            session_id TEXT NOT NULL,
            external_id TEXT,
            expires_at TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )


# Messenger links, measured (issue 15): a visit asks for its code again while it is unused
# (``session_id`` indexed), a code remembers the channel of the dialog that took it and when,
# and clicks are counted per integration, day (the account's, ``YYYY-MM-DD``) and channel.
@migration(
    postgres="""
    ALTER TABLE messenger_codes ADD COLUMN channel text;
    ALTER TABLE messenger_codes ADD COLUMN redeemed_at timestamptz;
    CREATE INDEX messenger_codes_by_visit ON messenger_codes (integration_id, session_id);
    CREATE INDEX messenger_codes_by_redeemed ON messenger_codes (integration_id, redeemed_at);
    CREATE TABLE messenger_clicks (
        integration_id bigint NOT NULL REFERENCES integrations (id),
        day date NOT NULL,
        channel text NOT NULL,
        clicks bigint NOT NULL,
        PRIMARY KEY (integration_id, day, channel)
    );
    """
)
def m015_messenger_clicks(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE messenger_codes ADD COLUMN channel TEXT")
    db.execute("ALTER TABLE messenger_codes ADD COLUMN redeemed_at TEXT")
    db.execute(
        "CREATE INDEX messenger_codes_by_visit ON messenger_codes (integration_id, session_id)"
    )
    db.execute(
        "CREATE INDEX messenger_codes_by_redeemed ON messenger_codes (integration_id, redeemed_at)"
    )
    db.execute(
        """
        CREATE TABLE messenger_clicks (
            integration_id INTEGER NOT NULL REFERENCES integrations (id),
            day TEXT NOT NULL,
            channel TEXT NOT NULL,
            clicks INTEGER NOT NULL,
            PRIMARY KEY (integration_id, day, channel)
        )
        """
    )


# --- SQLite ----------------------------------------------------------------------------------


def applied_migrations(db: sqlite3.Connection) -> list[str]:
    """Names of the migrations this SQLite database has, in the order they were applied."""
    _ensure_tracking_table(db)
    rows = db.execute("SELECT name FROM _migrations ORDER BY applied_at, rowid").fetchall()
    return [str(row[0]) for row in rows]


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this SQLite database lacks, in order; return the names applied now."""
    if db.in_transaction:
        raise RuntimeError("apply_migrations needs a connection outside a transaction")
    _ensure_tracking_table(db)
    newly_applied: list[str] = []
    for step in MIGRATIONS:
        # IMMEDIATE takes the write lock before the check, so two processes opening the same
        # file at once cannot both apply a migration.
        db.execute("BEGIN IMMEDIATE")
        try:
            done = db.execute("SELECT 1 FROM _migrations WHERE name = ?", (step.name,)).fetchone()
            if done is None:
                step.sqlite(db)
                db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (step.name, datetime.now(UTC).isoformat(timespec="microseconds")),
                )
                newly_applied.append(step.name)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return newly_applied


def _ensure_tracking_table(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )


# --- PostgreSQL ------------------------------------------------------------------------------

_POSTGRES_TRACKING_TABLE = """
CREATE TABLE _migrations (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


async def applied_postgres_migrations(conn: AsyncConnection[Any]) -> list[str]:
    """Names of the migrations this PostgreSQL database has, in the order they were applied."""
    _outside_a_transaction(conn, "applied_postgres_migrations")
    async with conn.transaction():
        cursor = await _lock_and_track(conn)
        await cursor.execute("SELECT name FROM _migrations ORDER BY seq")
        rows = await cursor.fetchall()
    return [str(row[0]) for row in rows]


async def apply_postgres_migrations(conn: AsyncConnection[Any]) -> list[str]:
    """Apply the migrations this PostgreSQL database lacks, in order; return the names applied
    now. Each one in its own transaction, which first takes the migrations' advisory lock:
    another process applying them at the same moment waits, then finds the migration done."""
    _outside_a_transaction(conn, "apply_postgres_migrations")
    newly_applied: list[str] = []
    for step in MIGRATIONS:
        async with conn.transaction():
            cursor = await _lock_and_track(conn)
            await cursor.execute("SELECT 1 FROM _migrations WHERE name = %s", (step.name,))
            if await cursor.fetchone() is None:
                # No parameters: psycopg sends the text as it is, several statements at once.
                await cursor.execute(step.postgres_sql().encode())
                await cursor.execute("INSERT INTO _migrations (name) VALUES (%s)", (step.name,))
                newly_applied.append(step.name)
    return newly_applied


async def _lock_and_track(conn: AsyncConnection[Any]) -> AsyncCursor[tuple[Any, ...]]:
    """Take the migrations' lock, then make the tracking table if there is none (under the
    lock: two ``CREATE TABLE IF NOT EXISTS`` at once can still collide). Returns a cursor that
    gives tuples, whatever the connection's row factory."""
    from psycopg.rows import tuple_row

    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute("SELECT pg_advisory_xact_lock(%s)", (POSTGRES_LOCK,))
    await cursor.execute("SELECT to_regclass('_migrations') IS NULL")
    missing = await cursor.fetchone()
    if missing is not None and missing[0]:
        await cursor.execute(_POSTGRES_TRACKING_TABLE)
    return cursor


def _outside_a_transaction(conn: AsyncConnection[Any], what: str) -> None:
    from psycopg.pq import TransactionStatus

    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError(f"{what} needs a connection outside a transaction")
