"""The ``Repository`` on PostgreSQL: any number of host processes and workers, on any machines.

It behaves as the SQLite one (``hooks.host.sqlite``) does, method for method, with the same
errors; the contract tests run against both. The differences are the engine's: connections come
from a pool (``psycopg_pool``, the driver procrastinate uses too), a write that must be atomic
is one statement or one explicit transaction, and the races that SQLite's single writer rules
out are settled by the database (row locks, ``ON CONFLICT``, an advisory lock for migrations).
Each method has committed its writes when it returns, since the host acknowledges a webhook as
soon as ``add_inbox_items`` does.

Rows become the contract's models, and secrets are encrypted at rest, as ``hooks.host.rows``
says (the same for SQLite); here are the SQL and the ``timestamptz`` times.

The database URL may hold a password: no error message here ever includes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Unpack
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, TupleRow, dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import SecretStr

from hooks.errors import NotFound
from hooks.host.database import DatabaseReadOnly, DatabaseUnavailable
from hooks.host.host_key import cipher
from hooks.host.migrations import PLAIN_WEBHOOK_TOKENS, apply_postgres_migrations
from hooks.host.pg_pool import pool_checking_quietly
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

_CONNECT_TIMEOUT = "10"  # seconds, unless the URL says otherwise
_APPLICATION_NAME = "hooks.host"

_UPSERT_APPEAL = """
    INSERT INTO appeals (key, integration_id, created_at, record, first_seen_at, updated_at)
    VALUES (%(key)s, %(integration_id)s, %(created_at)s, %(record)s, %(now)s, %(now)s)
    ON CONFLICT (key) DO UPDATE SET
        integration_id = excluded.integration_id,
        created_at = excluded.created_at,
        record = excluded.record,
        updated_at = excluded.updated_at
"""
# Every outcome of a drain in one statement shape (see ``Rows.outcome_params``), so that a
# drain's outcomes go in one batch.
_WRITE_OUTCOME = """
    UPDATE webhook_inbox SET
        status = %(status)s::text,
        outcome = CASE WHEN %(finished)s::boolean THEN %(outcome)s::json ELSE outcome END,
        attempts = attempts + %(attempt)s::integer,
        last_error = CASE WHEN %(finished)s::boolean THEN last_error ELSE %(error)s::text END,
        next_attempt_at = COALESCE(%(next_attempt_at)s::timestamptz, next_attempt_at),
        updated_at = %(now)s
    WHERE id = %(id)s
"""

# The bucket drains by ``rate`` per second since its last update, never below zero and never by
# a negative time (a clock behind the one that wrote last drains nothing, and the later update
# time is kept); then ``count`` is added and the level raised to ``at_least``.
_TAKE_RATE = """
    INSERT INTO rate_buckets AS bucket (key, level, updated_at)
    VALUES (%(key)s, GREATEST(%(count)s, %(at_least)s), %(now)s)
    ON CONFLICT (key) DO UPDATE SET
        level = GREATEST(
            GREATEST(
                0,
                bucket.level - GREATEST(0, excluded.updated_at - bucket.updated_at) * %(rate)s
            ) + %(count)s,
            %(at_least)s
        ),
        updated_at = GREATEST(bucket.updated_at, excluded.updated_at)
    RETURNING level
"""

# ``add_inbox_items``' ``INSERT``: one array per column, whatever the number of rows, so the
# statement is one text that PostgreSQL prepares once (a multi-row ``VALUES`` of N rows is a new
# statement for each N, parsed and planned again). ``unnest`` yields the rows in array order,
# which is the order their ids are given in.
_NEW_INBOX_ARRAYS = (
    ("integration_id", "bigint"),
    ("body_sha256", "text"),
    ("request", "text"),
    ("body", "bytea"),
    ("status", "text"),
    ("outcome", "text"),
    ("next_attempt_at", "timestamptz"),
    ("now", "timestamptz"),
)
_ADD_INBOX_ITEMS = f"""
    INSERT INTO webhook_inbox
        (integration_id, body_sha256, request, body, status, outcome,
         next_attempt_at, created_at, updated_at, attempts)
    SELECT integration_id, body_sha256, request::json, body, status, outcome::json,
           next_attempt_at, now, now, 0
    FROM unnest({", ".join(f"%s::{kind}[]" for _, kind in _NEW_INBOX_ARRAYS)})
        AS row ({", ".join(name for name, _ in _NEW_INBOX_ARRAYS)})
    ON CONFLICT (integration_id, body_sha256) DO NOTHING
    RETURNING integration_id, body_sha256, id, created_at, updated_at
"""

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


class PostgresRepository:
    """``hooks.host.repository.Repository`` on a PostgreSQL connection pool. Create with
    ``open``; ``close`` when done."""

    def __init__(self, pool: Pool, rows: Rows) -> None:
        self._pool = pool
        self._rows = rows
        self._secret_key: bytes | None = None

    @classmethod
    async def open(
        cls, url: str, *, key: SecretStr | None, min_size: int = 1, max_size: int = 10
    ) -> PostgresRepository:
        """Connect to the database ``url`` names (``postgresql://user:password@host/dbname``),
        bring its schema up to date and check that ``key`` is the one its secrets are
        encrypted with. ``HostKeyError`` for a missing or wrong key, ``DatabaseUnavailable``
        when the server cannot be reached."""
        rows = Rows(cipher(key), to_db=_db_time, from_db=_py_time, foreign_key_failure=_fk_failure)
        kwargs = _connect_kwargs(url)
        # One connection of its own first: it fails at once, with the server's reason, when
        # the database cannot be reached (a pool would retry until its timeout), and it brings
        # the schema and the key in order before any other work.
        try:
            conn = await AsyncConnection.connect(url, **kwargs)
        except psycopg.Error as error:
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL: {_scrub(str(error), url)}"
            ) from None
        try:
            _read_json_as_text(conn)
            if (await (await conn.execute("SHOW transaction_read_only")).fetchone()) == ("on",):
                raise _read_only()
            await apply_postgres_migrations(conn)
            await _adopt_key(conn, rows)
        except psycopg.errors.ReadOnlySqlTransaction:
            raise _read_only() from None
        finally:
            await conn.close()
        # A connection is checked before it is lent: after a restart of the server the pool's
        # old connections are replaced instead of failing one request each (``pg_pool``).
        pool: Pool = pool_checking_quietly(
            conninfo=url,
            kwargs=kwargs,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=_configure,
            name="hooks.host",
        )
        try:
            await pool.open(wait=True, timeout=float(kwargs.get("connect_timeout", 10)) + 5)
        except PoolTimeout:
            await pool.close()
            raise DatabaseUnavailable(
                "cannot connect to PostgreSQL: the connection pool did not fill in time"
            ) from None
        repository = cls(pool, rows)
        try:
            await repository.host_secret_key()  # made now: no page writes it later
        except BaseException:
            await pool.close()
            raise
        return repository

    async def close(self) -> None:
        await self._pool.close()

    # --- connections ---------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncCursor[DictRow]]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self._pool.connection() as conn, conn.transaction():
            yield conn.cursor(row_factory=dict_row)

    async def _fetch_all(self, query: str, params: Params | None = None) -> list[DictRow]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(query, params)
            return await cursor.fetchall()

    async def _fetch_one(self, query: str, params: Params | None = None) -> DictRow | None:
        rows = await self._fetch_all(query, params)
        return rows[0] if rows else None

    async def _rowcount(self, query: str, params: Params | None = None) -> int:
        """One statement in a transaction of its own; how many rows it wrote."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return cursor.rowcount

    # --- integrations --------------------------------------------------------------------

    async def create_integration(self, plugin: str, name: str) -> Integration:
        row = await self._fetch_one(
            f"""
            INSERT INTO integrations
                (plugin, name, settings, secrets, connection, webhook_token, version,
                 created_at, updated_at)
            VALUES (%(plugin)s, %(name)s, %(settings)s, %(secrets)s, %(connection)s,
                    %(webhook_token)s, 1, %(now)s, %(now)s)
            RETURNING {Rows.INTEGRATION_COLUMNS}
            """,
            self._rows.new_integration(plugin, name),
        )
        assert row is not None  # RETURNING of an INSERT that cannot conflict
        return self._rows.integration(row)

    async def get_integration(self, integration_id: int) -> Integration | None:
        row = await self._fetch_one(
            f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations"
            " WHERE id = %s AND deleted_at IS NULL",
            (integration_id,),
        )
        return None if row is None else self._rows.integration(row)

    async def get_integrations(self, ids: Collection[int]) -> dict[int, Integration]:
        if not ids:
            return {}
        rows = await self._fetch_all(
            f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations"
            " WHERE id = ANY(%s::bigint[]) AND deleted_at IS NULL",
            (sorted({int(i) for i in ids}),),
        )
        return {row["id"]: self._rows.integration(row) for row in rows}

    async def list_integrations(self) -> list[Integration]:
        rows = await self._fetch_all(
            f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations"
            " WHERE deleted_at IS NULL ORDER BY id"
        )
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
        """Compare-and-swap on ``version``, the row locked from the read to the write."""
        async with self._transaction() as cursor:
            # FOR UPDATE: the row cannot move on between this read and the write below.
            await cursor.execute(
                f"SELECT {Rows.INTEGRATION_COLUMNS} FROM integrations WHERE id = %s FOR UPDATE",
                (integration_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                raise NotFound(f"integration {integration_id} not found")
            current = self._rows.integration(row)
            await cursor.execute(
                f"""
                UPDATE integrations
                SET settings = %(settings)s, secrets = %(secrets)s, connection = %(connection)s,
                    version = version + 1, updated_at = %(now)s
                WHERE id = %(id)s AND version = %(expected_version)s
                RETURNING {Rows.INTEGRATION_COLUMNS}
                """,
                self._rows.integration_update(
                    current,
                    expected_version=expected_version,
                    settings=settings,
                    secrets=secrets,
                    connection=connection,
                ),
            )
            updated = await cursor.fetchone()
            if updated is None:
                raise version_conflict(current, expected_version)
        return self._rows.integration(updated)

    async def rename_integration(self, integration_id: int, name: str) -> Integration:
        row = await self._fetch_one(
            f"""
            UPDATE integrations SET name = %s, updated_at = %s WHERE id = %s AND deleted_at IS NULL
            RETURNING {Rows.INTEGRATION_COLUMNS}
            """,
            (name, utc_now(), integration_id),
        )
        if row is None:
            raise NotFound(f"integration {integration_id} not found")
        return self._rows.integration(row)

    async def delete_integration(self, integration_id: int) -> bool:
        async with self._transaction() as cursor:
            await cursor.execute(
                """
                UPDATE integrations SET deleted_at = %s, secrets = %s, connection = '{}',
                    version = version + 1
                WHERE id = %s AND deleted_at IS NULL
                """,
                (_db_time(utc_now()), self._rows.dump_secrets({}), integration_id),
            )
            if cursor.rowcount == 0:
                return False
            for table in DELETED_WITH_INTEGRATION:
                await cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE integration_id = %s").format(
                        sql.Identifier(table)
                    ),
                    (integration_id,),
                )
            return True

    async def integration_health(
        self, integration_id: int, *, today: datetime, week: datetime, failures_since: datetime
    ) -> IntegrationHealth:
        params = self._rows.health_params(
            integration_id, today=today, week=week, failures_since=failures_since
        )
        counts = await self._fetch_one(_HEALTH_COUNTS, params)
        failure = await self._fetch_one(_NEWEST_FAILURE, params)
        clicks = await self._fetch_all(_WEEK_CLICKS, params)
        chats = await self._fetch_all(_WEEK_CODE_CHATS, params)
        assert counts is not None  # one row, always
        return self._rows.health(counts, failure, clicks, chats)

    # --- the account catalog -------------------------------------------------------------

    async def get_catalog(self) -> Catalog:
        row = await self._fetch_one("SELECT data FROM catalog WHERE id = 1")
        return Catalog() if row is None else Catalog.model_validate_json(row["data"])

    async def replace_catalog(self, catalog: Catalog) -> None:
        await self._rowcount(
            """
            INSERT INTO catalog (id, data, updated_at) VALUES (1, %s, %s)
            ON CONFLICT (id) DO UPDATE
            SET data = excluded.data, updated_at = excluded.updated_at
            """,
            (catalog.model_dump_json(), utc_now()),
        )

    # --- visitor sessions and bindings ---------------------------------------------------

    async def add_visitor_session(self, session: VisitorSession) -> None:
        """Keep the first record of a session id: a visit's origin does not change later."""
        await self._rowcount(
            """
            INSERT INTO visitor_sessions (id, data, created_at) VALUES (%s, %s, %s)
            ON CONFLICT (id) DO NOTHING
            """,
            (session.id, session.model_dump_json(), _db_time(session.created_at)),
        )

    async def get_visitor_session(self, session_id: str) -> VisitorSession | None:
        row = await self._fetch_one(
            "SELECT data FROM visitor_sessions WHERE id = %s", (session_id,)
        )
        return None if row is None else VisitorSession.model_validate_json(row["data"])

    async def bind_session(
        self, integration_id: int, external_id: str, session_id: str
    ) -> SessionBinding:
        with self._rows.integration_must_exist(integration_id):
            row = await self._fetch_one(
                f"""
                INSERT INTO session_bindings (integration_id, external_id, session_id, created_at)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (integration_id, external_id) DO NOTHING
                RETURNING {Rows.BINDING_COLUMNS}
                """,
                (integration_id, external_id, session_id, utc_now()),
            )
        if row is None:
            # Bound before (by anyone: ON CONFLICT waited for that commit): the first stays.
            row = await self._select_binding(integration_id, external_id)
        assert row is not None  # inserted, or there before; bindings are never deleted
        return self._rows.binding(row)

    async def get_binding(self, integration_id: int, external_id: str) -> SessionBinding | None:
        row = await self._select_binding(integration_id, external_id)
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
        with self._rows.integration_must_exist(integration_id):
            added = await self._rowcount(
                """
                INSERT INTO messenger_codes
                    (code, integration_id, session_id, expires_at, created_at)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (code) DO NOTHING
                """,
                (code, integration_id, session_id, _db_time(expires_at), _db_time(now)),
            )
        return added == 1

    async def redeem_messenger_code(
        self,
        integration_id: int,
        code: str,
        external_id: str,
        *,
        now: datetime,
        channel: str | None = None,
    ) -> str | None:
        # Row-locked: a second dialog's UPDATE waits for the first's commit, then finds the
        # code taken (READ COMMITTED evaluates the condition again on the new row).
        row = await self._fetch_one(
            """
            UPDATE messenger_codes SET external_id = %(external_id)s,
                channel = COALESCE(channel, %(channel)s::text),
                redeemed_at = COALESCE(redeemed_at, %(now)s)
            WHERE code = %(code)s AND integration_id = %(integration_id)s
              AND (
                external_id = %(external_id)s
                OR (external_id IS NULL AND expires_at > %(now)s)
              )
            RETURNING session_id
            """,
            {
                "code": code,
                "integration_id": integration_id,
                "external_id": external_id,
                "now": _db_time(now),
                "channel": channel,
            },
        )
        return None if row is None else str(row["session_id"])

    async def unused_messenger_code(
        self, integration_id: int, session_id: str, *, valid_after: datetime
    ) -> str | None:
        row = await self._fetch_one(
            """
            SELECT code FROM messenger_codes
            WHERE integration_id = %s AND session_id = %s AND external_id IS NULL
              AND expires_at > %s
            ORDER BY expires_at DESC LIMIT 1
            """,
            (integration_id, session_id, _db_time(valid_after)),
        )
        return None if row is None else str(row["code"])

    async def count_messenger_click(self, integration_id: int, channel: str, day: date) -> None:
        with self._rows.integration_must_exist(integration_id):
            await self._rowcount(
                """
                INSERT INTO messenger_clicks (integration_id, day, channel, clicks)
                VALUES (%s, %s, %s, 1)
                ON CONFLICT (integration_id, day, channel)
                DO UPDATE SET clicks = messenger_clicks.clicks + 1
                """,
                (integration_id, day, channel),
            )

    async def _select_binding(self, integration_id: int, external_id: str) -> DictRow | None:
        return await self._fetch_one(
            f"""
            SELECT {Rows.BINDING_COLUMNS} FROM session_bindings
            WHERE integration_id = %s AND external_id = %s
            """,
            (integration_id, external_id),
        )

    # --- appeals -------------------------------------------------------------------------

    async def upsert_appeal(self, appeal: Appeal) -> StoredAppeal:
        with self._rows.integration_must_exist(appeal.integration_id):
            row = await self._fetch_one(
                f"{_UPSERT_APPEAL} RETURNING {Rows.APPEAL_COLUMNS}",
                self._rows.appeal_params(appeal, utc_now()),
            )
        assert row is not None  # an upsert always returns its row
        return self._rows.stored_appeal(row)

    async def get_appeal(self, key: str) -> StoredAppeal | None:
        row = await self._fetch_one(
            f"SELECT {Rows.APPEAL_COLUMNS} FROM appeals WHERE key = %s", (key,)
        )
        return None if row is None else self._rows.stored_appeal(row)

    async def get_appeals(self, keys: Collection[str]) -> dict[str, StoredAppeal]:
        if not keys:
            return {}
        rows = await self._fetch_all(
            f"SELECT {Rows.APPEAL_COLUMNS} FROM appeals WHERE key = ANY(%s::text[])",
            (sorted(set(keys)),),
        )
        found = (self._rows.stored_appeal(row) for row in rows)
        return {stored.appeal.key: stored for stored in found}

    async def list_appeals(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[AppealQuery]
    ) -> list[StoredAppeal]:
        """Newest first by the appeal's ``created_at``, then by key (byte order, as SQLite's)
        so that pages are stable."""
        where, params = self._rows.appeal_filter(_mark, filters)
        rows = await self._fetch_all(
            f"""
            SELECT {Rows.APPEAL_COLUMNS} FROM appeals {where}
            ORDER BY created_at DESC, key DESC LIMIT %(limit)s OFFSET %(offset)s
            """,
            {**params, "limit": limit, "offset": offset},
        )
        return [self._rows.stored_appeal(row) for row in rows]

    async def count_appeals(self, **filters: Unpack[AppealQuery]) -> int:
        where, params = self._rows.appeal_filter(_mark, filters)
        row = await self._fetch_one(f"SELECT COUNT(*) AS n FROM appeals {where}", params)
        return 0 if row is None else int(row["n"])

    # --- the webhook inbox ---------------------------------------------------------------

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
        """One ``INSERT`` of every row, committed when it ends (the connection is in autocommit
        mode): the callers may acknowledge their deliveries as soon as this returns. Then, only
        if some were there before, one ``SELECT`` of those."""
        if not items:
            return []
        params = [self._rows.new_inbox_item(item) for item in items]
        keys = [(one["integration_id"], one["body_sha256"]) for one in params]
        # Duplicates within the batch are inserted once and share the stored row.
        distinct: dict[tuple[int, str], int] = {}  # the first of each key in ``items``
        for index, key in enumerate(keys):
            distinct.setdefault(key, index)
        # In arrival order: ids are the order the drain takes them in. (Two processes storing
        # the same deliveries in opposite orders could deadlock; PostgreSQL then fails one
        # statement and the batcher stores its items one by one.)
        columns = [[params[i][name] for i in distinct.values()] for name, _ in _NEW_INBOX_ARRAYS]
        stored: dict[tuple[int, str], InboxItem] = {}
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            with _integrations_must_exist(sorted({key[0] for key in distinct})):
                await cursor.execute(_ADD_INBOX_ITEMS, columns)
            for row in await cursor.fetchall():
                key = row["integration_id"], row["body_sha256"]
                first = distinct[key]
                stored[key] = self._rows.inserted_inbox_item(row, items[first], params[first])
            there_before = [key for key in distinct if key not in stored]
            if there_before:  # redeliveries: ON CONFLICT waited for the first ones' commit
                await cursor.execute(
                    f"""
                    SELECT body_sha256, {Rows.INBOX_COLUMNS} FROM webhook_inbox
                    WHERE (integration_id, body_sha256) IN (
                        SELECT * FROM unnest(%s::bigint[], %s::text[]))
                    """,
                    ([key[0] for key in there_before], [key[1] for key in there_before]),
                )
                for row in await cursor.fetchall():
                    stored[row["integration_id"], row["body_sha256"]] = self._rows.inbox_item(row)
        # Inserted, or there before; inbox items are never deleted (an integration's go with
        # it, and a deleted integration takes no webhooks).
        return [stored[key] for key in keys]

    async def due_inbox_items(
        self,
        integration_id: int,
        *,
        now: datetime,
        limit: int = 50,
        exclude: Collection[int] = (),
    ) -> list[InboxItem]:
        rows = await self._fetch_all(
            f"""
            SELECT {Rows.INBOX_COLUMNS} FROM webhook_inbox
            WHERE integration_id = %s AND status = 'pending' AND next_attempt_at <= %s
              AND id <> ALL(%s::bigint[])
            ORDER BY id LIMIT %s
            """,
            (integration_id, _db_time(now), [int(i) for i in exclude], limit),
        )
        return [self._rows.inbox_item(row) for row in rows]

    async def next_inbox_attempt(self, integration_id: int) -> datetime | None:
        row = await self._fetch_one(
            """
            SELECT MIN(next_attempt_at) AS due FROM webhook_inbox
            WHERE integration_id = %s AND status = 'pending'
            """,
            (integration_id,),
        )
        return None if row is None or row["due"] is None else _py_time(row["due"])

    async def pending_integrations(self) -> list[int]:
        """Due or not (their drains reschedule themselves)."""
        rows = await self._fetch_all(
            """
            SELECT DISTINCT integration_id FROM webhook_inbox WHERE status = 'pending'
            ORDER BY integration_id
            """
        )
        return [int(row["integration_id"]) for row in rows]

    async def inbox_counts(self) -> dict[tuple[int, InboxStatus], int]:
        rows = await self._fetch_all(
            """
            SELECT integration_id, status, count(*) AS n FROM webhook_inbox
            GROUP BY integration_id, status
            """
        )
        return {(int(row["integration_id"]), row["status"]): int(row["n"]) for row in rows}

    async def appeal_counts(self) -> dict[int, int]:
        rows = await self._fetch_all(
            "SELECT integration_id, count(*) AS n FROM appeals GROUP BY integration_id"
        )
        return {int(row["integration_id"]): int(row["n"]) for row in rows}

    async def finish_drain(
        self, outcomes: Sequence[InboxOutcome], appeals: Sequence[Appeal]
    ) -> None:
        """One transaction. Every unknown item or integration is found before anything is
        written, so the error names it; the writes then go in two batches (``executemany``), not
        one round trip per row."""
        now = utc_now()
        outcome_params = [self._rows.outcome_params(outcome, now) for outcome in outcomes]
        appeal_params = [self._rows.appeal_params(appeal, now) for appeal in appeals]
        async with self._transaction() as cursor:
            if appeals:
                wanted = [appeal.integration_id for appeal in appeals]
                await _all_exist(cursor, "integrations", wanted, "integration")
                with self._rows.integration_must_exist(wanted[0]):
                    await cursor.executemany(_UPSERT_APPEAL, appeal_params)
            if outcomes:
                wanted = [outcome.item_id for outcome in outcomes]
                await _all_exist(cursor, "webhook_inbox", wanted, "inbox item")
                await cursor.executemany(_WRITE_OUTCOME, outcome_params)

    async def requeue_inbox_item(self, item_id: int, *, now: datetime) -> InboxItem | None:
        """Only a failed item (else ``None``)."""
        row = await self._fetch_one(
            f"""
            UPDATE webhook_inbox
            SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = %s,
                updated_at = %s
            WHERE id = %s AND status = 'failed'
            RETURNING {Rows.INBOX_COLUMNS}
            """,
            (_db_time(now), utc_now(), item_id),
        )
        return None if row is None else self._rows.inbox_item(row)

    async def list_inbox(
        self, *, status: InboxStatus | None = None, limit: int = 100
    ) -> list[InboxItem]:
        where = "" if status is None else "WHERE status = %(status)s"
        rows = await self._fetch_all(
            f"""
            SELECT {Rows.INBOX_COLUMNS} FROM webhook_inbox {where}
            ORDER BY id DESC LIMIT %(limit)s
            """,
            {"status": status, "limit": limit},
        )
        return [self._rows.inbox_item(row) for row in rows]

    async def claim_period(self, name: str, *, period_seconds: float, now: datetime) -> bool:
        """One statement: ``ON CONFLICT DO UPDATE`` locks the row and checks the ``WHERE``
        against its latest version, so of concurrent claims exactly one writes."""
        written = await self._rowcount(
            """
            INSERT INTO periodic_claims (name, claimed_at) VALUES (%s, %s)
            ON CONFLICT (name) DO UPDATE SET claimed_at = excluded.claimed_at
            WHERE periodic_claims.claimed_at <= %s
            """,
            (name, _db_time(now), now - timedelta(seconds=period_seconds)),
        )
        return written == 1

    # --- rate limits ---------------------------------------------------------------------

    async def take_rate(
        self, key: str, *, rate: float, now: float, count: float = 1.0, at_least: float = 0.0
    ) -> float:
        """One statement: ``ON CONFLICT DO UPDATE`` locks the row (a concurrent first insert
        waits for the other's commit, then updates) and computes from its latest version, so
        no count is lost however many processes take at once."""
        row = await self._fetch_one(
            _TAKE_RATE, rate_params(key, rate=rate, now=now, count=count, at_least=at_least)
        )
        assert row is not None  # RETURNING of an upsert
        return float(row["level"])

    # --- host secrets --------------------------------------------------------------------

    async def host_secret_key(self) -> bytes:
        """The same in every process: the first insert wins. Read first, so that a page that
        signs a token writes nothing once the key exists."""
        if self._secret_key is None:
            select = "SELECT value FROM host_meta WHERE key = %s"
            row = await self._fetch_one(select, (Rows.HOST_SECRET_KEY,))
            if row is None:
                await self._rowcount(
                    "INSERT INTO host_meta (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    (Rows.HOST_SECRET_KEY, self._rows.new_signing_key()),
                )
                row = await self._fetch_one(select, (Rows.HOST_SECRET_KEY,))
            assert row is not None  # inserted now or before, never deleted
            self._secret_key = self._rows.signing_key(bytes(row["value"]))
        return self._secret_key

    async def use_nonce(self, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        async with self._transaction() as cursor:
            await cursor.execute("DELETE FROM used_nonces WHERE expires_at < %s", (_db_time(now),))
            await cursor.execute(
                """
                INSERT INTO used_nonces (nonce, expires_at) VALUES (%s, %s)
                ON CONFLICT (nonce) DO NOTHING
                """,
                (nonce, _db_time(expires_at)),
            )
            return cursor.rowcount == 1


@contextmanager
def _integrations_must_exist(ids: Sequence[int]) -> Iterator[None]:
    """The foreign-key failure of a write for an unknown integration as ``NotFound`` (as
    ``Rows.integration_must_exist``; a statement for several cannot tell which one)."""
    try:
        yield
    except Exception as error:
        if not _fk_failure(error):
            raise
        named = ", ".join(map(str, ids))
        what = f"integration {named}" if len(ids) == 1 else f"one of the integrations {named}"
        raise NotFound(f"{what} not found") from error


async def _all_exist(
    cursor: AsyncCursor[DictRow],
    table: Literal["integrations", "webhook_inbox"],
    ids: Sequence[int],
    what: str,
) -> None:
    """``NotFound`` naming the first of ``ids`` that ``table`` has no row for."""
    await cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (sorted(set(ids)),))
    known = {row["id"] for row in await cursor.fetchall()}
    for id_ in ids:
        if id_ not in known:
            raise NotFound(f"{what} {id_} not found")


# --- opening ---------------------------------------------------------------------------------


def _connect_kwargs(url: str) -> dict[str, Any]:
    """The connection options besides the URL: autocommit (a transaction is always explicit),
    and a connect timeout and application name unless the URL sets them."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error as error:
        raise DatabaseUnavailable(
            f"the PostgreSQL URL is not valid: {_scrub(str(error), url)}"
        ) from None
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in given:
        kwargs["connect_timeout"] = _CONNECT_TIMEOUT
    if "application_name" not in given:
        kwargs["application_name"] = _APPLICATION_NAME
    return kwargs


def _scrub(message: str, url: str) -> str:
    """``message`` without the URL or its password, in case the driver quoted them."""
    secrets_in_url = [url]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        secrets_in_url += [password, unquote(password)]
    for secret in sorted(secrets_in_url, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message.strip()


async def _configure(conn: AsyncConnection[TupleRow]) -> None:
    _read_json_as_text(conn)


def _read_json_as_text(conn: AsyncConnection[TupleRow]) -> None:
    """``json`` columns come back as their text, which pydantic parses (as with SQLite)."""
    conn.adapters.register_loader("json", TextLoader)


def _read_only() -> DatabaseReadOnly:
    return DatabaseReadOnly(
        "the PostgreSQL database can be read but not written (a standby, or read-only"
        " transactions by default): the host must be able to write it"
    )


async def _adopt_key(conn: AsyncConnection[TupleRow], rows: Rows) -> None:
    """Check the key against the database; a database without a key yet takes this one (and
    whatever it holds in the clear is encrypted with it), and webhook tokens kept in the clear
    (``m011``) are encrypted, as ``SqliteRepository`` does."""
    cursor = conn.cursor(row_factory=dict_row)
    async with conn.transaction():
        check = await _meta(cursor, Rows.KEY_CHECK)
        if check is None:
            # The first opener adopts; a concurrent one waits here and then finds the check.
            await cursor.execute("LOCK TABLE host_meta IN SHARE ROW EXCLUSIVE MODE")
            check = await _meta(cursor, Rows.KEY_CHECK)
        if check is None:
            await _encrypt_plain_secrets(cursor, rows)
        else:
            rows.check_key(check)
        await _encrypt_plain_webhook_tokens(cursor, rows)


async def _encrypt_plain_secrets(cursor: AsyncCursor[DictRow], rows: Rows) -> None:
    """A database that never had a key: encrypt what it holds in the clear, adopt the key."""
    await cursor.execute("SELECT id, secrets FROM integrations FOR UPDATE")
    for plain in await cursor.fetchall():
        await cursor.execute(
            "UPDATE integrations SET secrets = %s WHERE id = %s",
            (rows.encrypt_text(plain["secrets"]), plain["id"]),
        )
    await cursor.execute("SELECT id, body FROM webhook_inbox FOR UPDATE")
    for plain in await cursor.fetchall():
        await cursor.execute(
            "UPDATE webhook_inbox SET body = %s WHERE id = %s",
            (rows.encrypt(bytes(plain["body"])), plain["id"]),
        )
    signing_key = await _meta(cursor, Rows.HOST_SECRET_KEY)
    if signing_key is not None:
        await cursor.execute(
            "UPDATE host_meta SET value = %s WHERE key = %s",
            (rows.encrypt(signing_key), Rows.HOST_SECRET_KEY),
        )
    await cursor.execute(
        "INSERT INTO host_meta (key, value) VALUES (%s, %s)",
        (Rows.KEY_CHECK, rows.key_check()),
    )


async def _encrypt_plain_webhook_tokens(cursor: AsyncCursor[DictRow], rows: Rows) -> None:
    """Once per database: whoever deletes ``m011``'s mark encrypts the tokens (a concurrent
    opener waits on the mark's row lock, then finds it gone)."""
    await cursor.execute("DELETE FROM host_meta WHERE key = %s", (PLAIN_WEBHOOK_TOKENS,))
    if cursor.rowcount == 0:
        return
    await cursor.execute("SELECT id, webhook_token FROM integrations FOR UPDATE")
    for plain in await cursor.fetchall():
        await cursor.execute(
            "UPDATE integrations SET webhook_token = %s WHERE id = %s",
            (rows.encrypt_text(plain["webhook_token"]), plain["id"]),
        )


async def _meta(cursor: AsyncCursor[DictRow], key: str) -> bytes | None:
    await cursor.execute("SELECT value FROM host_meta WHERE key = %s", (key,))
    row = await cursor.fetchone()
    return None if row is None else bytes(row["value"])


# --- (de)serialisation -----------------------------------------------------------------------


def _mark(name: str) -> str:
    """A named placeholder, as psycopg writes it."""
    return f"%({name})s"


_HEALTH_COUNTS = """
    SELECT
        (SELECT MAX(created_at) FROM webhook_inbox WHERE integration_id = %(id)s)
            AS last_event_at,
        (SELECT MAX(updated_at) FROM appeals WHERE integration_id = %(id)s) AS last_appeal_at,
        (SELECT COUNT(*) FROM appeals WHERE integration_id = %(id)s AND created_at >= %(today)s)
            AS appeals_today,
        (SELECT COUNT(*) FROM appeals WHERE integration_id = %(id)s AND created_at >= %(week)s)
            AS appeals_week,
        (SELECT COUNT(*) FROM webhook_inbox
         WHERE integration_id = %(id)s AND status = 'failed' AND updated_at >= %(since)s)
            AS failures_day
"""
_WEEK_CLICKS = """
    SELECT channel, SUM(clicks) AS n FROM messenger_clicks
    WHERE integration_id = %(id)s AND day >= %(week_day)s::date GROUP BY channel
"""
_WEEK_CODE_CHATS = """
    SELECT channel, COUNT(*) AS n FROM messenger_codes
    WHERE integration_id = %(id)s AND redeemed_at >= %(week)s AND channel IS NOT NULL
    GROUP BY channel
"""
_NEWEST_FAILURE = """
    SELECT last_error, updated_at FROM webhook_inbox
    WHERE integration_id = %(id)s AND status = 'failed' AND updated_at >= %(since)s
    ORDER BY updated_at DESC, id DESC LIMIT 1
"""


def _db_time(value: datetime) -> datetime:
    """An aware time, as ``timestamptz`` stores it; a naive one is refused (the server would
    read it in its own time zone), as SQLite's repository does."""
    return aware(value)


def _py_time(stored: datetime) -> datetime:
    """In UTC, whatever the session's time zone (as the SQLite repository returns times)."""
    return stored.astimezone(UTC)


def _fk_failure(error: Exception) -> bool:
    return isinstance(error, psycopg.errors.ForeignKeyViolation)
