"""The embedded ``Repository``: one SQLite file, all the host's SQL in one place.

Methods are ``async`` to match the seam, but run the stdlib ``sqlite3`` calls directly on the
event loop: each call is well under a millisecond, and a method that never awaits is also never
interleaved with another, which keeps the read-modify-write ones simple. Every write runs in an
explicit ``BEGIN IMMEDIATE`` … ``COMMIT`` and is committed before the method returns, because the
host acknowledges a webhook as soon as ``add_inbox_items`` returns.

Rows become the contract's models, and secrets are encrypted at rest, as ``hooks.host.rows``
says (the same for PostgreSQL); here are the SQL and the time format.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Unpack

from pydantic import SecretStr

from hooks.errors import NotFound
from hooks.host.database import MEMORY, DatabaseReadOnly
from hooks.host.host_key import cipher
from hooks.host.migrations import PLAIN_WEBHOOK_TOKENS, apply_migrations
from hooks.host.private_files import private_sqlite_files
from hooks.host.repository import (
    DELETED_WITH_INTEGRATION,
    AppealQuery,
    InboxItem,
    InboxOutcome,
    InboxStatus,
    NewInboxItem,
)
from hooks.host.rows import Rows, aware, rate_params, utc_now, version_conflict
from hooks.models import (
    Appeal,
    Catalog,
    HookRequest,
    Integration,
    IntegrationHealth,
    LocalizedText,
    SessionBinding,
    StoredAppeal,
    VisitorSession,
)


class SqliteRepository:
    """``hooks.host.repository.Repository`` on one SQLite connection. Create with ``open``."""

    def __init__(self, db: sqlite3.Connection, rows: Rows) -> None:
        self._db = db
        self._rows = rows
        self._secret_key: bytes | None = None

    @classmethod
    async def open(cls, path: str, *, key: SecretStr | None) -> SqliteRepository:
        """Open (or create) the database at ``path``, bring its schema up to date and check
        that ``key`` is the one its secrets are encrypted with."""
        rows = Rows(cipher(key), to_db=_db_time, from_db=_py_time, foreign_key_failure=_fk_failure)
        if path != MEMORY:
            private_sqlite_files(Path(path))
        # Autocommit mode: transactions are the explicit ones in ``_write``, never implicit.
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            # WAL lets readers (a CLI, a second host process) work while the host writes;
            # NORMAL keeps commits durable across a process crash without an fsync per commit.
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: an inbox row must survive a power cut, not only a crash, once it is answered.
            db.execute("PRAGMA synchronous=FULL")
            # Web process and workers share the file: wait for the other's write lock.
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA foreign_keys=ON")
            apply_migrations(db)
            repository = cls(db, rows)
            repository._adopt_key()
            repository._check_writable()
            await repository.host_secret_key()  # made now: no page writes it later
        except sqlite3.OperationalError as error:
            db.close()
            if "readonly" in str(error).replace(" ", "").lower():
                raise _read_only(path) from None
            raise
        except BaseException:
            db.close()
            raise
        return repository

    def _check_writable(self) -> None:
        """A write that changes nothing, to learn now rather than at the first webhook that
        the file, its folder or its disk is read-only."""
        with self._write() as db:
            db.execute("UPDATE host_meta SET value = value WHERE key = ?", (Rows.KEY_CHECK,))

    async def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the lock up front so reads inside it are
        consistent with the write even when another process shares the file."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a failed COMMIT leaves it open too
                self._db.execute("ROLLBACK")
            raise

    def _adopt_key(self) -> None:
        """Check the key against the database; a database without a key yet (new, or written
        by a version that kept secrets in the clear) takes this one and is encrypted with it.
        Webhook tokens kept in the clear (``m011``) are encrypted then too."""
        with self._write() as db:
            check = self._meta(Rows.KEY_CHECK)
            if check is None:
                self._encrypt_plain_secrets(db)
            else:
                self._rows.check_key(check)
            self._encrypt_plain_webhook_tokens(db)

    def _encrypt_plain_secrets(self, db: sqlite3.Connection) -> None:
        """A database that never had a key: encrypt what it holds in the clear, adopt the key."""
        for plain in db.execute("SELECT id, secrets FROM integrations").fetchall():
            db.execute(
                "UPDATE integrations SET secrets = ? WHERE id = ?",
                (self._rows.encrypt_text(plain["secrets"]), plain["id"]),
            )
        for plain in db.execute("SELECT id, body FROM webhook_inbox").fetchall():
            db.execute(
                "UPDATE webhook_inbox SET body = ? WHERE id = ?",
                (self._rows.encrypt(bytes(plain["body"])), plain["id"]),
            )
        signing_key = self._meta(Rows.HOST_SECRET_KEY)
        if signing_key is not None:
            db.execute(
                "UPDATE host_meta SET value = ? WHERE key = ?",
                (self._rows.encrypt(signing_key), Rows.HOST_SECRET_KEY),
            )
        db.execute(
            "INSERT INTO host_meta (key, value) VALUES (?, ?)",
            (Rows.KEY_CHECK, self._rows.key_check()),
        )

    def _encrypt_plain_webhook_tokens(self, db: sqlite3.Connection) -> None:
        """Once per database: whoever removes ``m011``'s mark encrypts the tokens."""
        unmarked = db.execute("DELETE FROM host_meta WHERE key = ?", (PLAIN_WEBHOOK_TOKENS,))
        if unmarked.rowcount == 0:
            return
        for plain in db.execute("SELECT id, webhook_token FROM integrations").fetchall():
            db.execute(
                "UPDATE integrations SET webhook_token = ? WHERE id = ?",
                (self._rows.encrypt_text(plain["webhook_token"]), plain["id"]),
            )

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM host_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row["value"])

    # --- integrations ------------------------------------------------------------------

    async def create_integration(self, plugin: str, name: str) -> Integration:
        params = self._rows.new_integration(plugin, name)
        with self._write() as db:
            row = db.execute(
                f"""
                INSERT INTO integrations
                    (plugin, name, settings, secrets, connection, webhook_token, version,
                     created_at, updated_at)
                VALUES (:plugin, :name, :settings, :secrets, :connection, :webhook_token, 1,
                        :now, :now)
                RETURNING {Rows.INTEGRATION_COLUMNS}
                """,
                params,
            ).fetchall()[0]
        return self._rows.integration(row)

    async def get_integration(self, integration_id: int) -> Integration | None:
        row = self._db.execute(
            f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations"
            " WHERE id = ? AND deleted_at IS NULL",
            (integration_id,),
        ).fetchone()
        return None if row is None else self._rows.integration(row)

    async def get_integrations(self, ids: Collection[int]) -> dict[int, Integration]:
        rows = self._db.execute(
            f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations"
            " WHERE id IN (SELECT value FROM json_each(?)) AND deleted_at IS NULL",
            (f"[{','.join(map(str, map(int, ids)))}]",),
        ).fetchall()
        return {row["id"]: self._rows.integration(row) for row in rows}

    async def list_integrations(self) -> list[Integration]:
        rows = self._db.execute(
            f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations"
            " WHERE deleted_at IS NULL ORDER BY id"
        ).fetchall()
        return [self._rows.integration(row) for row in rows]

    async def update_integration(
        self,
        integration_id: int,
        *,
        expected_version: int,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, SecretStr | None] | None = None,
        connection: Mapping[str, Any] | None = None,
    ) -> Integration:
        """A real compare-and-swap: the version check is part of the ``UPDATE`` itself."""
        with self._write() as db:
            row = db.execute(
                f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations WHERE id = ?",
                (integration_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"integration {integration_id} not found")
            current = self._rows.integration(row)
            updated = db.execute(
                f"""
                UPDATE integrations
                SET settings = :settings, secrets = :secrets, connection = :connection,
                    version = version + 1, updated_at = :now
                WHERE id = :id AND version = :expected_version
                RETURNING {Rows.INTEGRATION_COLUMNS}
                """,
                self._rows.integration_update(
                    current,
                    expected_version=expected_version,
                    settings=settings,
                    secrets=secrets,
                    connection=connection,
                ),
            ).fetchall()
            if not updated:
                raise version_conflict(current, expected_version)
        return self._rows.integration(updated[0])

    async def rename_integration(self, integration_id: int, name: str) -> Integration:
        with self._write() as db:
            rows = db.execute(
                f"""
                UPDATE integrations SET name = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL
                RETURNING {Rows.INTEGRATION_COLUMNS}
                """,
                (name, _db_time(utc_now()), integration_id),
            ).fetchall()
        if not rows:
            raise NotFound(f"integration {integration_id} not found")
        return self._rows.integration(rows[0])

    async def delete_integration(self, integration_id: int) -> bool:
        with self._write() as db:
            deleted = db.execute(
                """
                UPDATE integrations SET deleted_at = ?, secrets = ?, connection = '{}',
                    version = version + 1
                WHERE id = ? AND deleted_at IS NULL
                """,
                (_db_time(utc_now()), self._rows.dump_secrets({}), integration_id),
            )
            if deleted.rowcount == 0:
                return False
            for table in DELETED_WITH_INTEGRATION:
                db.execute(f"DELETE FROM {table} WHERE integration_id = ?", (integration_id,))
            return True

    async def integration_health(
        self, integration_id: int, *, today: datetime, week: datetime, failures_since: datetime
    ) -> IntegrationHealth:
        params = self._rows.health_params(
            integration_id, today=today, week=week, failures_since=failures_since
        )
        counts = self._db.execute(_HEALTH_COUNTS, params).fetchone()
        failure = self._db.execute(_NEWEST_FAILURE, params).fetchone()
        clicks = self._db.execute(_WEEK_CLICKS, params).fetchall()
        chats = self._db.execute(_WEEK_CODE_CHATS, params).fetchall()
        return self._rows.health(counts, failure, clicks, chats)

    # --- the account catalog -----------------------------------------------------------

    async def get_catalog(self) -> Catalog:
        row = self._db.execute("SELECT data FROM catalog WHERE id = 1").fetchone()
        return Catalog() if row is None else Catalog.model_validate_json(row["data"])

    async def replace_catalog(self, catalog: Catalog) -> None:
        with self._write() as db:
            db.execute(
                """
                INSERT INTO catalog (id, data, updated_at) VALUES (1, ?, ?)
                ON CONFLICT (id) DO UPDATE
                SET data = excluded.data, updated_at = excluded.updated_at
                """,
                (catalog.model_dump_json(), _db_time(utc_now())),
            )

    # --- visitor sessions and bindings -------------------------------------------------

    async def add_visitor_session(self, session: VisitorSession) -> None:
        """Keep the first record of a session id: a visit's origin does not change later."""
        with self._write() as db:
            db.execute(
                """
                INSERT INTO visitor_sessions (id, data, created_at) VALUES (?, ?, ?)
                ON CONFLICT (id) DO NOTHING
                """,
                (session.id, session.model_dump_json(), _db_time(session.created_at)),
            )

    async def get_visitor_session(self, session_id: str) -> VisitorSession | None:
        row = self._db.execute(
            "SELECT data FROM visitor_sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return None if row is None else VisitorSession.model_validate_json(row["data"])

    async def bind_session(
        self, integration_id: int, external_id: str, session_id: str
    ) -> SessionBinding:
        with self._write() as db, self._rows.integration_must_exist(integration_id):
            db.execute(
                """
                INSERT INTO session_bindings (integration_id, external_id, session_id, created_at)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (integration_id, external_id) DO NOTHING
                """,
                (integration_id, external_id, session_id, _db_time(utc_now())),
            )
            row = self._select_binding(integration_id, external_id)
        assert row is not None  # inserted or already there, inside the same transaction
        return self._rows.binding(row)

    async def get_binding(self, integration_id: int, external_id: str) -> SessionBinding | None:
        row = self._select_binding(integration_id, external_id)
        return None if row is None else self._rows.binding(row)

    async def add_messenger_code(
        self,
        integration_id: int,
        code: str,
        session_id: str,
        *,
        expires_at: datetime,
        now: datetime,
    ) -> bool:
        with self._write() as db, self._rows.integration_must_exist(integration_id):
            cursor = db.execute(
                """
                INSERT INTO messenger_codes
                    (code, integration_id, session_id, expires_at, created_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (code) DO NOTHING
                """,
                (code, integration_id, session_id, _db_time(expires_at), _db_time(now)),
            )
        return cursor.rowcount == 1

    async def redeem_messenger_code(
        self,
        integration_id: int,
        code: str,
        external_id: str,
        *,
        now: datetime,
        channel: str | None = None,
    ) -> str | None:
        with self._write() as db:
            row = db.execute(
                _REDEEM_CODE,
                {
                    "code": code,
                    "integration_id": integration_id,
                    "external_id": external_id,
                    "now": _db_time(now),
                    "channel": channel,
                },
            ).fetchone()
        return None if row is None else str(row["session_id"])

    async def unused_messenger_code(
        self, integration_id: int, session_id: str, *, valid_after: datetime
    ) -> str | None:
        row = self._db.execute(
            """
            SELECT code FROM messenger_codes
            WHERE integration_id = ? AND session_id = ? AND external_id IS NULL
              AND expires_at > ?
            ORDER BY expires_at DESC LIMIT 1
            """,
            (integration_id, session_id, _db_time(valid_after)),
        ).fetchone()
        return None if row is None else str(row["code"])

    async def count_messenger_click(self, integration_id: int, channel: str, day: date) -> None:
        with self._write() as db, self._rows.integration_must_exist(integration_id):
            db.execute(
                """
                INSERT INTO messenger_clicks (integration_id, day, channel, clicks)
                VALUES (?, ?, ?, 1)
                ON CONFLICT (integration_id, day, channel) DO UPDATE SET clicks = clicks + 1
                """,
                (integration_id, day.isoformat(), channel),
            )

    def _select_binding(self, integration_id: int, external_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            f"""
            SELECT {Rows.BINDING_COLUMNS} FROM session_bindings
            WHERE integration_id = ? AND external_id = ?
            """,
            (integration_id, external_id),
        ).fetchone()
        return row

    # --- appeals -----------------------------------------------------------------------

    async def upsert_appeal(self, appeal: Appeal) -> StoredAppeal:
        with self._write() as db, self._rows.integration_must_exist(appeal.integration_id):
            return self._upsert_appeal(db, appeal)

    def _upsert_appeal(self, db: sqlite3.Connection, appeal: Appeal) -> StoredAppeal:
        row = db.execute(
            f"""
            INSERT INTO appeals
                (key, integration_id, created_at, record, first_seen_at, updated_at)
            VALUES (:key, :integration_id, :created_at, :record, :now, :now)
            ON CONFLICT (key) DO UPDATE SET
                integration_id = excluded.integration_id,
                created_at = excluded.created_at,
                record = excluded.record,
                updated_at = excluded.updated_at
            RETURNING {Rows.APPEAL_COLUMNS}
            """,
            self._rows.appeal_params(appeal, utc_now()),
        ).fetchall()[0]
        return self._rows.stored_appeal(row)

    async def get_appeal(self, key: str) -> StoredAppeal | None:
        row = self._db.execute(
            f"SELECT {Rows.APPEAL_COLUMNS} FROM appeals WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else self._rows.stored_appeal(row)

    async def get_appeals(self, keys: Collection[str]) -> dict[str, StoredAppeal]:
        rows = self._db.execute(
            f"SELECT {Rows.APPEAL_COLUMNS} FROM appeals"
            " WHERE key IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(keys))),),
        ).fetchall()
        found = (self._rows.stored_appeal(row) for row in rows)
        return {stored.appeal.key: stored for stored in found}

    async def list_appeals(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[AppealQuery]
    ) -> list[StoredAppeal]:
        """Newest first by the appeal's ``created_at`` (stored in UTC, so text order is time
        order, and the range compares as text), then by key so that pages are stable."""
        where, params = self._rows.appeal_filter(_mark, filters)
        rows = self._db.execute(
            f"""
            SELECT {Rows.APPEAL_COLUMNS} FROM appeals {where}
            ORDER BY created_at DESC, key DESC LIMIT :limit OFFSET :offset
            """,
            {**params, "limit": limit, "offset": offset},
        ).fetchall()
        return [self._rows.stored_appeal(row) for row in rows]

    async def count_appeals(self, **filters: Unpack[AppealQuery]) -> int:
        where, params = self._rows.appeal_filter(_mark, filters)
        row = self._db.execute(f"SELECT COUNT(*) AS n FROM appeals {where}", params).fetchone()
        return int(row["n"])

    # --- the webhook inbox -------------------------------------------------------------

    async def add_inbox_item(
        self,
        integration_id: int,
        request: HookRequest,
        *,
        dedupe_key: str | None = None,
        ignored: str | None = None,
        ignored_text: LocalizedText | None = None,
    ) -> InboxItem:
        new = NewInboxItem(integration_id, request, dedupe_key, ignored, ignored_text)
        return (await self.add_inbox_items([new]))[0]

    async def add_inbox_items(self, items: Sequence[NewInboxItem]) -> list[InboxItem]:
        """One write transaction (no round trips here: a statement per item); the first
        unknown integration stops it."""
        params = [self._rows.new_inbox_item(item) for item in items]
        rows: list[sqlite3.Row] = []
        with self._write() as db:
            for one in params:
                with self._rows.integration_must_exist(one["integration_id"]):
                    db.execute(
                        """
                        INSERT INTO webhook_inbox
                            (integration_id, body_sha256, request, body, status, outcome,
                             attempts, next_attempt_at, created_at, updated_at)
                        VALUES (:integration_id, :body_sha256, :request, :body, :status,
                                :outcome, 0, :next_attempt_at, :now, :now)
                        ON CONFLICT (integration_id, body_sha256) DO NOTHING
                        """,
                        one,
                    )
                row = db.execute(
                    f"""
                    SELECT {Rows.INBOX_COLUMNS} FROM webhook_inbox
                    WHERE integration_id = :integration_id AND body_sha256 = :body_sha256
                    """,
                    one,
                ).fetchone()
                assert row is not None  # inserted, or there before, in this transaction
                rows.append(row)
        return [self._rows.inbox_item(row) for row in rows]

    async def due_inbox_items(
        self,
        integration_id: int,
        *,
        now: datetime,
        limit: int = 50,
        exclude: Collection[int] = (),
    ) -> list[InboxItem]:
        rows = self._db.execute(
            f"""
            SELECT {Rows.INBOX_COLUMNS} FROM webhook_inbox
            WHERE integration_id = ? AND status = 'pending' AND next_attempt_at <= ?
              AND id NOT IN (SELECT value FROM json_each(?))
            ORDER BY id LIMIT ?
            """,
            (integration_id, _db_time(now), f"[{','.join(map(str, map(int, exclude)))}]", limit),
        ).fetchall()
        return [self._rows.inbox_item(row) for row in rows]

    async def next_inbox_attempt(self, integration_id: int) -> datetime | None:
        row = self._db.execute(
            """
            SELECT MIN(next_attempt_at) AS due FROM webhook_inbox
            WHERE integration_id = ? AND status = 'pending'
            """,
            (integration_id,),
        ).fetchone()
        return None if row["due"] is None else _py_time(row["due"])

    async def pending_integrations(self) -> list[int]:
        """Due or not (their drains reschedule themselves)."""
        rows = self._db.execute(
            """
            SELECT DISTINCT integration_id FROM webhook_inbox WHERE status = 'pending'
            ORDER BY integration_id
            """
        ).fetchall()
        return [int(row["integration_id"]) for row in rows]

    async def inbox_counts(self) -> dict[tuple[int, InboxStatus], int]:
        rows = self._db.execute(
            """
            SELECT integration_id, status, count(*) AS n FROM webhook_inbox
            GROUP BY integration_id, status
            """
        ).fetchall()
        return {(int(row["integration_id"]), row["status"]): int(row["n"]) for row in rows}

    async def appeal_counts(self) -> dict[int, int]:
        rows = self._db.execute(
            "SELECT integration_id, count(*) AS n FROM appeals GROUP BY integration_id"
        ).fetchall()
        return {int(row["integration_id"]): int(row["n"]) for row in rows}

    async def finish_drain(
        self, outcomes: Sequence[InboxOutcome], appeals: Sequence[Appeal]
    ) -> None:
        """One write transaction; the first unknown item or integration stops it."""
        now = utc_now()
        with self._write() as db:
            for appeal in appeals:
                with self._rows.integration_must_exist(appeal.integration_id):
                    self._upsert_appeal(db, appeal)
            for outcome in outcomes:
                cursor = db.execute(_WRITE_OUTCOME, self._rows.outcome_params(outcome, now))
                if cursor.rowcount == 0:
                    raise NotFound(f"inbox item {outcome.item_id} not found")

    async def requeue_inbox_item(self, item_id: int, *, now: datetime) -> InboxItem | None:
        """Only a failed item (else ``None``)."""
        with self._write() as db:
            rows = db.execute(
                f"""
                UPDATE webhook_inbox
                SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = ?,
                    updated_at = ?
                WHERE id = ? AND status = 'failed'
                RETURNING {Rows.INBOX_COLUMNS}
                """,
                (_db_time(now), _db_time(utc_now()), item_id),
            ).fetchall()
        return self._rows.inbox_item(rows[0]) if rows else None

    async def list_inbox(
        self, *, status: InboxStatus | None = None, limit: int = 100
    ) -> list[InboxItem]:
        where = "" if status is None else "WHERE status = :status"
        rows = self._db.execute(
            f"SELECT {Rows.INBOX_COLUMNS} FROM webhook_inbox {where} ORDER BY id DESC LIMIT :limit",
            {"status": status, "limit": limit},
        ).fetchall()
        return [self._rows.inbox_item(row) for row in rows]

    async def claim_period(self, name: str, *, period_seconds: float, now: datetime) -> bool:
        before = _db_time(now - timedelta(seconds=period_seconds))
        with self._write() as db:
            cursor = db.execute(
                """
                INSERT INTO periodic_claims (name, claimed_at) VALUES (?, ?)
                ON CONFLICT (name) DO UPDATE SET claimed_at = excluded.claimed_at
                WHERE periodic_claims.claimed_at <= ?
                """,
                (name, _db_time(now), before),
            )
        return cursor.rowcount == 1

    # --- rate limits -------------------------------------------------------------------

    async def take_rate(
        self, key: str, *, rate: float, now: float, count: float = 1.0, at_least: float = 0.0
    ) -> float:
        """One upsert under the write lock; every expression of its ``SET`` reads the row as it
        was, so another process's count between read and write is impossible."""
        params = rate_params(key, rate=rate, now=now, count=count, at_least=at_least)
        with self._write() as db:
            row = db.execute(_TAKE_RATE, params).fetchone()
        return float(row["level"])

    # --- host secrets ------------------------------------------------------------------

    async def host_secret_key(self) -> bytes:
        """Read, and written only the first time ever: a page that signs a token writes nothing."""
        if self._secret_key is None:
            stored = self._meta(Rows.HOST_SECRET_KEY)
            if stored is None:
                with self._write() as db:
                    db.execute(
                        "INSERT INTO host_meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO NOTHING",
                        (Rows.HOST_SECRET_KEY, self._rows.new_signing_key()),
                    )
                    stored = self._meta(Rows.HOST_SECRET_KEY)
            assert stored is not None  # inserted or already there, inside the same transaction
            self._secret_key = self._rows.signing_key(stored)
        return self._secret_key

    async def use_nonce(self, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        with self._write() as db:
            db.execute("DELETE FROM used_nonces WHERE expires_at < ?", (_db_time(now),))
            cursor = db.execute(
                """
                INSERT INTO used_nonces (nonce, expires_at) VALUES (?, ?)
                ON CONFLICT (nonce) DO NOTHING
                """,
                (nonce, _db_time(expires_at)),
            )
        return cursor.rowcount == 1


# The code's first dialog takes it while it is valid; the same dialog finds it again later.
_REDEEM_CODE = """
    UPDATE messenger_codes SET external_id = :external_id,
        channel = COALESCE(channel, :channel), redeemed_at = COALESCE(redeemed_at, :now)
    WHERE code = :code AND integration_id = :integration_id
      AND (external_id = :external_id OR (external_id IS NULL AND expires_at > :now))
    RETURNING session_id
"""

# Every outcome of a drain in one statement shape (see ``Rows.outcome_params``): ``finished``
# (done/ignored) sets the outcome; the others count an attempt and set the error, and a retry
# moves ``next_attempt_at``.
_WRITE_OUTCOME = """
    UPDATE webhook_inbox SET
        status = :status,
        outcome = CASE WHEN :finished THEN :outcome ELSE outcome END,
        attempts = attempts + :attempt,
        last_error = CASE WHEN :finished THEN last_error ELSE :error END,
        next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
        updated_at = :now
    WHERE id = :id
"""

# The bucket drains by ``rate`` per second since its last update, never below zero and never by
# a negative time (a clock behind the one that wrote last drains nothing, and the later update
# time is kept); then ``count`` is added and the level raised to ``at_least``.
_TAKE_RATE = """
    INSERT INTO rate_buckets (key, level, updated_at)
    VALUES (:key, max(:count, :at_least), :now)
    ON CONFLICT (key) DO UPDATE SET
        level = max(
            max(
                0.0,
                rate_buckets.level
                - max(0.0, excluded.updated_at - rate_buckets.updated_at) * :rate
            ) + :count,
            :at_least
        ),
        updated_at = max(rate_buckets.updated_at, excluded.updated_at)
    RETURNING level
"""


def _mark(name: str) -> str:
    """A named placeholder, as sqlite3 writes it."""
    return f":{name}"


# Times are UTC text of one width, so MAX and >= compare them as times.
_HEALTH_COUNTS = """
    SELECT
        (SELECT MAX(created_at) FROM webhook_inbox WHERE integration_id = :id) AS last_event_at,
        (SELECT MAX(updated_at) FROM appeals WHERE integration_id = :id) AS last_appeal_at,
        (SELECT COUNT(*) FROM appeals WHERE integration_id = :id AND created_at >= :today)
            AS appeals_today,
        (SELECT COUNT(*) FROM appeals WHERE integration_id = :id AND created_at >= :week)
            AS appeals_week,
        (SELECT COUNT(*) FROM webhook_inbox
         WHERE integration_id = :id AND status = 'failed' AND updated_at >= :since) AS failures_day
"""
_WEEK_CLICKS = """
    SELECT channel, SUM(clicks) AS n FROM messenger_clicks
    WHERE integration_id = :id AND day >= :week_day GROUP BY channel
"""
_WEEK_CODE_CHATS = """
    SELECT channel, COUNT(*) AS n FROM messenger_codes
    WHERE integration_id = :id AND redeemed_at >= :week AND channel IS NOT NULL GROUP BY channel
"""
_NEWEST_FAILURE = """
    SELECT last_error, updated_at FROM webhook_inbox
    WHERE integration_id = :id AND status = 'failed' AND updated_at >= :since
    ORDER BY updated_at DESC, id DESC LIMIT 1
"""


def _db_time(value: datetime) -> str:
    """UTC, fixed width (always microseconds), so that comparing the text compares times."""
    return aware(value).astimezone(UTC).isoformat(timespec="microseconds")


def _py_time(stored: str) -> datetime:
    return datetime.fromisoformat(stored)


def _fk_failure(error: Exception) -> bool:
    """sqlite3 says so in the message of an ``IntegrityError``."""
    return isinstance(error, sqlite3.IntegrityError) and "FOREIGN KEY" in str(error)


def _read_only(path: str) -> DatabaseReadOnly:
    return DatabaseReadOnly(
        f"the database {path} can be read but not written (a read-only file, folder or disk):"
        " the host must be able to write it"
    )
