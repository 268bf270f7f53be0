"""The embedded ``Repository``: one SQLite file, all the host's SQL in one place.

Methods are ``async`` to match the seam, but run the stdlib ``sqlite3`` calls directly on the
event loop: each call is well under a millisecond, and a method that never awaits is also never
interleaved with another, which keeps the read-modify-write ones simple. Every write runs in an
explicit ``BEGIN IMMEDIATE`` … ``COMMIT`` and is committed before the method returns, because the
host acknowledges a webhook as soon as ``add_inbox_item`` returns.

Secrets (the integrations', the host's signing key and the webhook bodies, which carry
Bitrix24's application token) are stored encrypted with the host key
(``hooks.host.host_key``); the database remembers a value encrypted with it, so that opening
it with another key fails at once instead of reading garbage later.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets as secrets_module
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from hooks.errors import Conflict, NotFound
from hooks.host.database import MEMORY
from hooks.host.host_key import ENV, HostKeyError, cipher
from hooks.host.migrations import apply_migrations
from hooks.host.repository import InboxItem, InboxOutcome, InboxStatus
from hooks.models import (
    Appeal,
    Catalog,
    HookRequest,
    Integration,
    SessionBinding,
    StoredAppeal,
    VisitorSession,
)

_INTEGRATION_COLUMNS = (
    "id, plugin, name, settings, secrets, connection, webhook_token, version,"
    " created_at, updated_at"
)
_INBOX_COLUMNS = (
    "id, integration_id, status, request, body, attempts, next_attempt_at, last_error, outcome,"
    " created_at, updated_at"
)
_HOST_SECRET_KEY = "secret_key"
_KEY_CHECK = "key_check"
_KEY_CHECK_VALUE = b"the host key of this database"


class SqliteRepository:
    """``hooks.host.repository.Repository`` on one SQLite connection. Create with ``open``."""

    def __init__(self, db: sqlite3.Connection, fernet: Fernet) -> None:
        self._db = db
        self._fernet = fernet
        self._secret_key: bytes | None = None

    @classmethod
    async def open(cls, path: str, *, key: SecretStr | None) -> SqliteRepository:
        """Open (or create) the database at ``path``, bring its schema up to date and check
        that ``key`` is the one its secrets are encrypted with."""
        fernet = cipher(key)
        if path != MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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
            repository = cls(db, fernet)
            repository._adopt_key()
        except BaseException:
            db.close()
            raise
        return repository

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
        by a version that kept secrets in the clear) takes this one and is encrypted with it."""
        with self._write() as db:
            check = self._meta(_KEY_CHECK)
            if check is not None:
                self._decrypt(check, "The database")
                return
            for plain in db.execute("SELECT id, secrets FROM integrations").fetchall():
                db.execute(
                    "UPDATE integrations SET secrets = ? WHERE id = ?",
                    (self._fernet.encrypt(plain["secrets"].encode()).decode(), plain["id"]),
                )
            for plain in db.execute("SELECT id, body FROM webhook_inbox").fetchall():
                db.execute(
                    "UPDATE webhook_inbox SET body = ? WHERE id = ?",
                    (self._fernet.encrypt(bytes(plain["body"])), plain["id"]),
                )
            signing_key = self._meta(_HOST_SECRET_KEY)
            if signing_key is not None:
                db.execute(
                    "UPDATE host_meta SET value = ? WHERE key = ?",
                    (self._fernet.encrypt(signing_key), _HOST_SECRET_KEY),
                )
            db.execute(
                "INSERT INTO host_meta (key, value) VALUES (?, ?)",
                (_KEY_CHECK, self._fernet.encrypt(_KEY_CHECK_VALUE)),
            )

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM host_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row["value"])

    def _decrypt(self, token: bytes, what: str) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            # ``from None``: InvalidToken says nothing more, and a traceback need not show it.
            raise HostKeyError(
                f"{what} cannot be decrypted with {ENV}: it is not the key it was encrypted with"
            ) from None

    # --- integrations ------------------------------------------------------------------

    async def create_integration(self, plugin: str, name: str) -> Integration:
        now = _db_time(_now())
        with self._write() as db:
            row = db.execute(
                f"""
                INSERT INTO integrations
                    (plugin, name, settings, secrets, connection, webhook_token, version,
                     created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)
                RETURNING {_INTEGRATION_COLUMNS}
                """,
                (
                    plugin,
                    name,
                    json.dumps({}),
                    self._dump_secrets({}),
                    json.dumps({}),
                    secrets_module.token_urlsafe(32),
                    now,
                    now,
                ),
            ).fetchall()[0]
        return self._integration(row)

    async def get_integration(self, integration_id: int) -> Integration | None:
        row = self._db.execute(
            f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE id = ?", (integration_id,)
        ).fetchone()
        return None if row is None else self._integration(row)

    async def list_integrations(self) -> list[Integration]:
        rows = self._db.execute(
            f"SELECT {_INTEGRATION_COLUMNS} FROM integrations ORDER BY id"
        ).fetchall()
        return [self._integration(row) for row in rows]

    async def update_integration(
        self,
        integration_id: int,
        *,
        expected_version: int,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, SecretStr | None] | None = None,
        connection: Mapping[str, Any] | None = None,
    ) -> Integration:
        """Compare-and-swap on ``version``; see the Protocol for the merge rules."""
        with self._write() as db:
            row = db.execute(
                f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE id = ?",
                (integration_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"integration {integration_id} not found")
            current = self._integration(row)
            new_settings = current.settings if settings is None else dict(settings)
            new_secrets = dict(current.secrets)
            for key, value in (secrets or {}).items():
                if value is None:
                    new_secrets.pop(key, None)
                else:
                    new_secrets[key] = value
            new_connection = {**current.connection, **(connection or {})}
            # The version check lives in the UPDATE itself, so the write is a real CAS.
            updated = db.execute(
                f"""
                UPDATE integrations
                SET settings = ?, secrets = ?, connection = ?, version = version + 1,
                    updated_at = ?
                WHERE id = ? AND version = ?
                RETURNING {_INTEGRATION_COLUMNS}
                """,
                (
                    json.dumps(new_settings),
                    self._dump_secrets(new_secrets),
                    json.dumps(new_connection),
                    _db_time(_now()),
                    integration_id,
                    expected_version,
                ),
            ).fetchall()
            if not updated:
                raise Conflict(
                    f"integration {integration_id} is at version {current.version},"
                    f" not {expected_version}: reload and try again"
                )
        return self._integration(updated[0])

    def _dump_secrets(self, values: Mapping[str, SecretStr]) -> str:
        plain = json.dumps({key: value.get_secret_value() for key, value in values.items()})
        return self._fernet.encrypt(plain.encode()).decode()

    def _load_secrets(self, stored: str, integration_id: int) -> dict[str, SecretStr]:
        plain: dict[str, str] = json.loads(
            self._decrypt(stored.encode(), f"The secrets of integration {integration_id}")
        )
        return {key: SecretStr(value) for key, value in plain.items()}

    def _integration(self, row: sqlite3.Row) -> Integration:
        return Integration(
            id=row["id"],
            plugin=row["plugin"],
            name=row["name"],
            settings=_json_object(row["settings"]),
            secrets=self._load_secrets(row["secrets"], row["id"]),
            connection=_json_object(row["connection"]),
            webhook_token=SecretStr(row["webhook_token"]),
            version=row["version"],
            created_at=_py_time(row["created_at"]),
            updated_at=_py_time(row["updated_at"]),
        )

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
                (catalog.model_dump_json(), _db_time(_now())),
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
        """Idempotent: the first binding of ``external_id`` wins and is returned again."""
        with self._write() as db, _integration_must_exist(integration_id):
            db.execute(
                """
                INSERT INTO session_bindings (integration_id, external_id, session_id, created_at)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (integration_id, external_id) DO NOTHING
                """,
                (integration_id, external_id, session_id, _db_time(_now())),
            )
            row = self._select_binding(integration_id, external_id)
        assert row is not None  # inserted or already there, inside the same transaction
        return _binding(row)

    async def get_binding(self, integration_id: int, external_id: str) -> SessionBinding | None:
        row = self._select_binding(integration_id, external_id)
        return None if row is None else _binding(row)

    def _select_binding(self, integration_id: int, external_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            """
            SELECT integration_id, external_id, session_id, created_at FROM session_bindings
            WHERE integration_id = ? AND external_id = ?
            """,
            (integration_id, external_id),
        ).fetchone()
        return row

    # --- appeals -----------------------------------------------------------------------

    async def upsert_appeal(self, appeal: Appeal) -> StoredAppeal:
        """Insert, or replace every field of the appeal with this key; ``first_seen_at`` stays."""
        with self._write() as db, _integration_must_exist(appeal.integration_id):
            return self._upsert_appeal(db, appeal)

    def _upsert_appeal(self, db: sqlite3.Connection, appeal: Appeal) -> StoredAppeal:
        now = _db_time(_now())
        row = db.execute(
            """
            INSERT INTO appeals
                (key, integration_id, created_at, record, first_seen_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET
                integration_id = excluded.integration_id,
                created_at = excluded.created_at,
                record = excluded.record,
                updated_at = excluded.updated_at
            RETURNING record, first_seen_at, updated_at
            """,
            (
                appeal.key,
                appeal.integration_id,
                _db_time(appeal.created_at),
                appeal.model_dump_json(),
                now,
                now,
            ),
        ).fetchall()[0]
        return _stored_appeal(row)

    async def get_appeal(self, key: str) -> StoredAppeal | None:
        row = self._db.execute(
            "SELECT record, first_seen_at, updated_at FROM appeals WHERE key = ?", (key,)
        ).fetchone()
        return _stored_appeal(row) if row is not None else None

    async def list_appeals(
        self, *, integration_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredAppeal]:
        """Newest first by the appeal's ``created_at`` (stored in UTC, so text order is time
        order), then by key so that pages are stable."""
        where = "" if integration_id is None else "WHERE integration_id = :integration_id"
        rows = self._db.execute(
            f"""
            SELECT record, first_seen_at, updated_at FROM appeals {where}
            ORDER BY created_at DESC, key DESC LIMIT :limit OFFSET :offset
            """,
            {"integration_id": integration_id, "limit": limit, "offset": offset},
        ).fetchall()
        return [_stored_appeal(row) for row in rows]

    # --- the webhook inbox -------------------------------------------------------------

    async def add_inbox_item(
        self,
        integration_id: int,
        request: HookRequest,
        *,
        dedupe_key: str | None = None,
        ignored: str | None = None,
    ) -> InboxItem:
        """Persist a delivery as pending (or as ignored, with the reason), due from when it was
        received. A delivery with the same dedupe key (by default: the same body) for the same
        integration is a redelivery: the existing item comes back unchanged."""
        digest = hashlib.sha256(dedupe_key.encode() if dedupe_key else request.body).hexdigest()
        status = "pending" if ignored is None else "ignored"
        outcome = None if ignored is None else json.dumps({"result": "ignored", "reason": ignored})
        now = _db_time(_now())
        with self._write() as db, _integration_must_exist(integration_id):
            db.execute(
                """
                INSERT INTO webhook_inbox
                    (integration_id, body_sha256, request, body, status, outcome, attempts,
                     next_attempt_at, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
                ON CONFLICT (integration_id, body_sha256) DO NOTHING
                """,
                (
                    integration_id,
                    digest,
                    request.model_dump_json(exclude={"body"}),
                    self._fernet.encrypt(request.body),
                    status,
                    outcome,
                    _db_time(request.received_at),
                    now,
                    now,
                ),
            )
            row = db.execute(
                f"""
                SELECT {_INBOX_COLUMNS} FROM webhook_inbox
                WHERE integration_id = ? AND body_sha256 = ?
                """,
                (integration_id, digest),
            ).fetchone()
        return self._inbox_item(row)

    async def due_inbox_items(
        self, integration_id: int, *, now: datetime, limit: int = 50
    ) -> list[InboxItem]:
        """Pending items whose ``next_attempt_at`` has come, oldest first."""
        rows = self._db.execute(
            f"""
            SELECT {_INBOX_COLUMNS} FROM webhook_inbox
            WHERE integration_id = ? AND status = 'pending' AND next_attempt_at <= ?
            ORDER BY id LIMIT ?
            """,
            (integration_id, _db_time(now), limit),
        ).fetchall()
        return [self._inbox_item(row) for row in rows]

    async def next_inbox_attempt(self, integration_id: int) -> datetime | None:
        """When the integration's earliest pending item is due, if it has one."""
        row = self._db.execute(
            """
            SELECT MIN(next_attempt_at) AS due FROM webhook_inbox
            WHERE integration_id = ? AND status = 'pending'
            """,
            (integration_id,),
        ).fetchone()
        return None if row["due"] is None else _py_time(row["due"])

    async def pending_integrations(self) -> list[int]:
        """Integrations with pending items, due or not (their drains reschedule themselves)."""
        rows = self._db.execute(
            """
            SELECT DISTINCT integration_id FROM webhook_inbox WHERE status = 'pending'
            ORDER BY integration_id
            """
        ).fetchall()
        return [int(row["integration_id"]) for row in rows]

    async def finish_drain(
        self, outcomes: Sequence[InboxOutcome], appeals: Sequence[Appeal]
    ) -> None:
        """Appeals and outcomes in one transaction; see the Protocol."""
        now = _db_time(_now())
        with self._write() as db:
            for appeal in appeals:
                with _integration_must_exist(appeal.integration_id):
                    self._upsert_appeal(db, appeal)
            for outcome in outcomes:
                assignments, values = _outcome_assignments(outcome)
                cursor = db.execute(
                    f"UPDATE webhook_inbox SET {assignments}, updated_at = ? WHERE id = ?",
                    (*values, now, outcome.item_id),
                )
                if cursor.rowcount == 0:
                    raise NotFound(f"inbox item {outcome.item_id} not found")

    def _inbox_item(self, row: sqlite3.Row) -> InboxItem:
        # The body is kept apart from the JSON (raw bytes need not be UTF-8), and encrypted: a
        # webhook's body carries its credentials (Bitrix24's auth[application_token]).
        body = self._decrypt(bytes(row["body"]), f"The body of inbox item {row['id']}")
        request = HookRequest.model_validate_json(row["request"]).model_copy(update={"body": body})
        return InboxItem(
            id=row["id"],
            integration_id=row["integration_id"],
            status=row["status"],
            request=request,
            attempts=row["attempts"],
            next_attempt_at=_py_time(row["next_attempt_at"]),
            last_error=row["last_error"],
            outcome=None if row["outcome"] is None else _json_object(row["outcome"]),
            created_at=_py_time(row["created_at"]),
            updated_at=_py_time(row["updated_at"]),
        )

    async def requeue_inbox_item(self, item_id: int, *, now: datetime) -> InboxItem | None:
        """A person asked to retry a failed item: make it pending and due now. Anything but a
        failed item is left alone (``None``): a pending one is already queued, a done one is
        done. ``attempts`` starts again from zero (a fresh retry budget); ``last_error`` stays."""
        with self._write() as db:
            rows = db.execute(
                f"""
                UPDATE webhook_inbox
                SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?
                WHERE id = ? AND status = 'failed'
                RETURNING {_INBOX_COLUMNS}
                """,
                (_db_time(now), _db_time(_now()), item_id),
            ).fetchall()
        return self._inbox_item(rows[0]) if rows else None

    async def list_inbox(
        self, *, status: InboxStatus | None = None, limit: int = 100
    ) -> list[InboxItem]:
        """Newest first."""
        where = "" if status is None else "WHERE status = :status"
        rows = self._db.execute(
            f"SELECT {_INBOX_COLUMNS} FROM webhook_inbox {where} ORDER BY id DESC LIMIT :limit",
            {"status": status, "limit": limit},
        ).fetchall()
        return [self._inbox_item(row) for row in rows]

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
        with self._write() as db:
            row = db.execute(_TAKE_RATE, _rate_params(key, rate, now, count, at_least)).fetchone()
        return float(row["level"])

    # --- host secrets ------------------------------------------------------------------

    async def host_secret_key(self) -> bytes:
        """32 random bytes made on first use and kept, so signed OAuth ``state`` values stay
        valid across restarts."""
        if self._secret_key is None:
            with self._write() as db:
                db.execute(
                    "INSERT INTO host_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (_HOST_SECRET_KEY, self._fernet.encrypt(secrets_module.token_bytes(32))),
                )
                stored = self._meta(_HOST_SECRET_KEY)
            assert stored is not None  # inserted or already there, inside the same transaction
            self._secret_key = self._decrypt(stored, "The host's signing key")
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


def _rate_params(
    key: str, rate: float, now: float, count: float, at_least: float
) -> dict[str, Any]:
    values = {"rate": rate, "now": now, "count": count, "at_least": at_least}
    for name, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"take_rate needs a finite, non-negative {name}, not {value!r}")
    return {"key": key, **{name: float(value) for name, value in values.items()}}


# --- (de)serialisation ---------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _db_time(value: datetime) -> str:
    """UTC, fixed width (always microseconds), so that comparing the text compares times."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the repository needs aware times")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _py_time(stored: str) -> datetime:
    return datetime.fromisoformat(stored)


def _json_object(stored: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(stored)
    return value


def _outcome_assignments(outcome: InboxOutcome) -> tuple[str, tuple[Any, ...]]:
    """The ``SET`` clause and its values that record one drain outcome of an inbox item."""
    if outcome.status in ("done", "ignored"):
        return "status = ?, outcome = ?", (outcome.status, json.dumps(outcome.outcome or {}))
    if outcome.status == "retry":
        if outcome.next_attempt_at is None:
            raise ValueError("a retry outcome needs next_attempt_at")
        return (
            "status = 'pending', attempts = attempts + 1, last_error = ?, next_attempt_at = ?",
            (outcome.error, _db_time(outcome.next_attempt_at)),
        )
    return "status = 'failed', attempts = attempts + 1, last_error = ?", (outcome.error,)


def _binding(row: sqlite3.Row) -> SessionBinding:
    return SessionBinding(
        integration_id=row["integration_id"],
        external_id=row["external_id"],
        session_id=row["session_id"],
        created_at=_py_time(row["created_at"]),
    )


def _stored_appeal(row: sqlite3.Row) -> StoredAppeal:
    return StoredAppeal(
        appeal=Appeal.model_validate_json(row["record"]),
        first_seen_at=_py_time(row["first_seen_at"]),
        updated_at=_py_time(row["updated_at"]),
    )


@contextmanager
def _integration_must_exist(integration_id: int) -> Iterator[None]:
    """Turn the foreign-key failure of a write for an unknown integration into ``NotFound``."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "FOREIGN KEY" not in str(error):
            raise
        raise NotFound(f"integration {integration_id} not found") from error
