"""The SQLite schema as named, ordered, append-only migrations.

A released migration is never edited: a change to the schema is a new function at the end.
Each migration runs in its own transaction together with the row that records it, so a crash
leaves the database either before or after it, never half-way.

Times are ISO 8601 strings in UTC with a fixed width, so that text order is time order.
JSON columns are TEXT: a column declared ``JSON`` would get NUMERIC affinity in SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration; its name is what the database remembers."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_integrations(db: sqlite3.Connection) -> None:
    # AUTOINCREMENT: an integration id is part of its webhook URL and must never be reused.
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


@migration
def m002_catalog(db: sqlite3.Connection) -> None:
    # The catalog is small and always read whole: one row holding it as JSON.
    db.execute(
        """
        CREATE TABLE catalog (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )


@migration
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
    # No foreign key to visitor_sessions: a plugin may bind a session id the host never saw.
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


@migration
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


@migration
def m005_webhook_inbox(db: sqlite3.Connection) -> None:
    # The request is JSON without its body; the body is kept as raw bytes because signatures
    # are checked over the exact bytes and a body need not be valid UTF-8.
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


@migration
def m006_host_meta(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE host_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")


@migration
def m007_used_nonces(db: sqlite3.Connection) -> None:
    # Spent single-use values (OAuth states), each kept until it would have expired anyway.
    db.execute("CREATE TABLE used_nonces (nonce TEXT PRIMARY KEY, expires_at TEXT NOT NULL)")
    db.execute("CREATE INDEX used_nonces_by_expiry ON used_nonces (expires_at)")


def applied_migrations(db: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database has, in the order they were applied."""
    _ensure_tracking_table(db)
    rows = db.execute("SELECT name FROM _migrations ORDER BY applied_at, rowid").fetchall()
    return [str(row[0]) for row in rows]


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks, in order; return the names applied now."""
    if db.in_transaction:
        raise RuntimeError("apply_migrations needs a connection outside a transaction")
    _ensure_tracking_table(db)
    newly_applied: list[str] = []
    for fn in MIGRATIONS:
        name = fn.__name__
        # IMMEDIATE takes the write lock before the check, so two processes opening the same
        # file at once cannot both apply a migration.
        db.execute("BEGIN IMMEDIATE")
        try:
            done = db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone()
            if done is None:
                fn(db)
                db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (name, datetime.now(UTC).isoformat(timespec="microseconds")),
                )
                newly_applied.append(name)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return newly_applied


def _ensure_tracking_table(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
