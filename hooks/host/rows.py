"""Stored rows ↔ the contract's models, and the secrets encrypted at rest.

The SQLite and PostgreSQL repositories keep the same tables (``hooks.host.migrations``) with the
same encodings: JSON as text, and the integrations' secrets and webhook URL tokens, the host's
signing key and the webhook bodies (which carry Bitrix24's application token) encrypted with the
host key (``hooks.host.host_key``). So what a row holds, and how a model becomes one and back,
is written here once. A backend keeps only its dialect: the SQL with its placeholders (every
parameter set here is a dict, for named ones), how it stores a time, and how its driver reports
a foreign-key failure (the last two given to ``Rows``).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets as secrets_module
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from hooks.errors import Conflict, NotFound
from hooks.host.host_key import ENV, HostKeyError
from hooks.host.repository import AppealQuery, InboxItem, InboxOutcome, NewInboxItem
from hooks.models import (
    Appeal,
    HookRequest,
    Integration,
    IntegrationHealth,
    MessengerLinkFigures,
    SessionBinding,
    StoredAppeal,
)

_KEY_CHECK_VALUE = b"the host key of this database"
# The integrations' encrypted columns opened so far, kept by their ciphertext (see
# ``Rows.open_column``); the oldest is dropped past this many.
OPENED_MAX = 4096


class Row(Protocol):
    """A fetched row by column name: ``sqlite3.Row`` or psycopg's ``DictRow``."""

    def __getitem__(self, key: str, /) -> Any: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """``value``, refused if naive: it would be read in some machine's own time zone."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the repository needs aware times")
    return value


def _json_object(stored: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(stored)
    return value


class Rows:
    """The conversions for one database, with what its backend tells them: the host key
    (``fernet``), how it stores a time (``to_db``) and reads one back, aware and in UTC
    (``from_db``), and how its driver reports a foreign-key failure."""

    # The columns each conversion reads, in the order ``SELECT``/``RETURNING`` list them.
    INTEGRATION_COLUMNS: Final = (
        "id, plugin, name, settings, secrets, connection, webhook_token, version,"
        " created_at, updated_at"
    )
    INBOX_COLUMNS: Final = (
        "id, integration_id, status, request, body, attempts, next_attempt_at, last_error,"
        " outcome, created_at, updated_at"
    )
    BINDING_COLUMNS: Final = "integration_id, external_id, session_id, created_at"
    APPEAL_COLUMNS: Final = "record, first_seen_at, updated_at"

    # ``host_meta`` keys: the signing key, and a value encrypted with the host key so that
    # opening the database with another key fails at once instead of reading garbage later.
    HOST_SECRET_KEY: Final = "secret_key"
    KEY_CHECK: Final = "key_check"

    def __init__(
        self,
        fernet: Fernet,
        *,
        to_db: Callable[[datetime], Any],
        from_db: Callable[[Any], datetime],
        foreign_key_failure: Callable[[Exception], bool],
    ) -> None:
        self._fernet = fernet
        self._to_db = to_db
        self._from_db = from_db
        self._foreign_key_failure = foreign_key_failure
        self._opened: dict[str, bytes] = {}

    @contextmanager
    def integration_must_exist(self, integration_id: int) -> Iterator[None]:
        """Turn the foreign-key failure of a write for an unknown integration into ``NotFound``."""
        try:
            yield
        except Exception as error:
            if not self._foreign_key_failure(error):
                raise
            raise NotFound(f"integration {integration_id} not found") from error

    # --- encryption at rest -------------------------------------------------------------

    def encrypt(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def encrypt_text(self, plain: str) -> str:
        """For a text column (the integrations' secrets): Fernet tokens are ASCII."""
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: bytes, what: str) -> bytes:
        """``HostKeyError`` naming ``what`` if the host key is not the one it was encrypted with."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            # ``from None``: InvalidToken says nothing more, and a traceback need not show it.
            raise HostKeyError(
                f"{what} cannot be decrypted with {ENV}: it is not the key it was encrypted with"
            ) from None

    def key_check(self) -> bytes:
        """The ``KEY_CHECK`` value a database takes when it adopts the host key."""
        return self.encrypt(_KEY_CHECK_VALUE)

    def check_key(self, stored: bytes) -> None:
        """``HostKeyError`` unless the database's ``KEY_CHECK`` opens with the host key."""
        self.decrypt(stored, "The database")

    def new_signing_key(self) -> bytes:
        """32 random bytes, encrypted, for ``HOST_SECRET_KEY`` (kept from the first use on)."""
        return self.encrypt(secrets_module.token_bytes(32))

    def signing_key(self, stored: bytes) -> bytes:
        return self.decrypt(stored, "The host's signing key")

    def dump_secrets(self, values: Mapping[str, SecretStr]) -> str:
        plain = json.dumps({key: value.get_secret_value() for key, value in values.items()})
        return self.encrypt_text(plain)

    def open_column(self, stored: str, what: str) -> bytes:
        """An integration's encrypted column, decrypted once per ciphertext: every webhook
        reads its integration, and two Fernet decryptions were a few percent of an answer. A
        new value is a new ciphertext (Fernet's IV is random), so a cached one is never stale."""
        plain = self._opened.get(stored)
        if plain is None:
            plain = self.decrypt(stored.encode(), what)
            if len(self._opened) >= OPENED_MAX:
                del self._opened[next(iter(self._opened))]
            self._opened[stored] = plain
        return plain

    def load_secrets(self, stored: str, integration_id: int) -> dict[str, SecretStr]:
        plain: dict[str, str] = json.loads(
            self.open_column(stored, f"The secrets of integration {integration_id}")
        )
        return {key: SecretStr(value) for key, value in plain.items()}

    def webhook_token(self, stored: str, integration_id: int) -> SecretStr:
        """The Webhook URL's token, encrypted rather than hashed: the settings page shows the
        URL again, and the host finds an integration by its id, never by its token, so the
        check stays one constant-time comparison (``hooks.host.inbox``)."""
        what = f"The webhook token of integration {integration_id}"
        return SecretStr(self.open_column(stored, what).decode())

    # --- integrations -------------------------------------------------------------------

    def new_integration(self, plugin: str, name: str) -> dict[str, Any]:
        """The parameters of a new integration's row: empty settings, secrets and connection,
        a fresh unguessable webhook token, version 1 (in the SQL), created and updated now."""
        return {
            "plugin": plugin,
            "name": name,
            "settings": json.dumps({}),
            "secrets": self.dump_secrets({}),
            "connection": json.dumps({}),
            "webhook_token": self.encrypt_text(secrets_module.token_urlsafe(32)),
            "now": self._to_db(utc_now()),
        }

    def integration_update(
        self,
        current: Integration,
        *,
        expected_version: int,
        settings: Mapping[str, Any] | None,
        secrets: Mapping[str, SecretStr | None] | None,
        connection: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The parameters of ``update_integration``'s compare-and-swap ``UPDATE`` (``id``,
        ``expected_version`` and the new columns): ``settings`` replaces, ``secrets`` and
        ``connection`` merge key by key, a ``None`` secret deletes its key."""
        new_settings = current.settings if settings is None else dict(settings)
        new_secrets = dict(current.secrets)
        for key, value in (secrets or {}).items():
            if value is None:
                new_secrets.pop(key, None)
            else:
                new_secrets[key] = value
        new_connection = {**current.connection, **(connection or {})}
        return {
            "id": current.id,
            "expected_version": expected_version,
            "settings": json.dumps(new_settings),
            "secrets": self.dump_secrets(new_secrets),
            "connection": json.dumps(new_connection),
            "now": self._to_db(utc_now()),
        }

    def integration(self, row: Row) -> Integration:
        """From the ``INTEGRATION_COLUMNS`` of a row."""
        return Integration(
            id=row["id"],
            plugin=row["plugin"],
            name=row["name"],
            settings=_json_object(row["settings"]),
            secrets=self.load_secrets(row["secrets"], row["id"]),
            connection=_json_object(row["connection"]),
            webhook_token=self.webhook_token(row["webhook_token"], row["id"]),
            version=row["version"],
            created_at=self._from_db(row["created_at"]),
            updated_at=self._from_db(row["updated_at"]),
        )

    # --- bindings and appeals -----------------------------------------------------------

    def binding(self, row: Row) -> SessionBinding:
        """From the ``BINDING_COLUMNS`` of a row."""
        return SessionBinding(
            integration_id=row["integration_id"],
            external_id=row["external_id"],
            session_id=row["session_id"],
            created_at=self._from_db(row["created_at"]),
        )

    def appeal_params(self, appeal: Appeal, when: datetime) -> dict[str, Any]:
        """The parameters of an appeal's upsert, at ``when`` (``now``: its first seen and
        updated time). ``created_at`` has a column of its own, for the newest-first order."""
        return {
            "key": appeal.key,
            "integration_id": appeal.integration_id,
            "created_at": self._to_db(appeal.created_at),
            "record": appeal.model_dump_json(),
            "now": self._to_db(when),
        }

    def appeal_filter(
        self, mark: Callable[[str], str], filters: AppealQuery
    ) -> tuple[str, dict[str, Any]]:
        """The ``WHERE`` clause (empty without a filter) and parameters of ``list_appeals`` and
        ``count_appeals``; ``mark`` writes a named placeholder in the backend's dialect."""
        conditions = {
            "integration_id": "integration_id = {}",
            "created_from": "created_at >= {}",
            "created_before": "created_at < {}",
        }
        clauses, params = [], {}
        for name, clause in conditions.items():
            value = filters.get(name)
            if value is not None:
                clauses.append(clause.format(mark(name)))
                params[name] = self._to_db(value) if isinstance(value, datetime) else value
        after = filters.get("after")
        if after is not None:
            at, key = mark("after_at"), mark("after_key")
            clauses.append(f"(created_at < {at} OR (created_at = {at} AND key < {key}))")
            params |= {"after_at": self._to_db(after[0]), "after_key": after[1]}
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params

    def stored_appeal(self, row: Row) -> StoredAppeal:
        """From the ``APPEAL_COLUMNS`` of a row."""
        return StoredAppeal(
            appeal=Appeal.model_validate_json(row["record"]),
            first_seen_at=self._from_db(row["first_seen_at"]),
            updated_at=self._from_db(row["updated_at"]),
        )

    def health_params(
        self, integration_id: int, *, today: datetime, week: datetime, failures_since: datetime
    ) -> dict[str, Any]:
        """The parameters of ``integration_health``'s queries, in the backend's time format."""
        return {
            "id": integration_id,
            "today": self._to_db(today),
            "week": self._to_db(week),
            "since": self._to_db(failures_since),
            # Clicks are counted by the account's day: those from the week's first day on.
            "week_day": week.date().isoformat(),
        }

    def health(
        self,
        counts: Row,
        failure: Row | None,
        clicks: Sequence[Row] = (),
        chats: Sequence[Row] = (),
    ) -> IntegrationHealth:
        """From ``HEALTH_COUNTS``, the newest failure's ``last_error, updated_at``, and the
        ``channel, n`` rows of the week's messenger clicks and of its chats that took a code."""

        def at(value: Any) -> datetime | None:
            return None if value is None else self._from_db(value)

        return IntegrationHealth(
            last_event_at=at(counts["last_event_at"]),
            last_appeal_at=at(counts["last_appeal_at"]),
            appeals_today=counts["appeals_today"],
            appeals_week=counts["appeals_week"],
            failures_day=counts["failures_day"],
            last_failure=None if failure is None else failure["last_error"],
            last_failure_at=None if failure is None else at(failure["updated_at"]),
            messenger_links=_figures(clicks, chats),
        )

    # --- the webhook inbox --------------------------------------------------------------

    def new_inbox_item(self, item: NewInboxItem) -> dict[str, Any]:
        """The parameters of a delivery's row: pending (or ignored, with the reason as its
        outcome), due from when it was received. ``body_sha256`` is the dedupe digest (of the
        dedupe key, by default of the body), unique per integration. The body is kept apart
        from the request's JSON (raw bytes need not be UTF-8), and encrypted: it carries the
        webhook's credentials."""
        request, dedupe_key, ignored = item.request, item.dedupe_key, item.ignored
        digest = hashlib.sha256(dedupe_key.encode() if dedupe_key else request.body).hexdigest()
        outcome: dict[str, Any] = {"result": "ignored", "reason": ignored}
        if item.ignored_text is not None:
            outcome["reason_text"] = item.ignored_text.model_dump()
        return {
            "integration_id": item.integration_id,
            "body_sha256": digest,
            "request": request.model_dump_json(exclude={"body"}),
            "body": self.encrypt(request.body),
            "status": "pending" if ignored is None else "ignored",
            "outcome": None if ignored is None else json.dumps(outcome),
            "next_attempt_at": self._to_db(request.received_at),
            "now": self._to_db(utc_now()),
        }

    def inbox_item(self, row: Row) -> InboxItem:
        """From the ``INBOX_COLUMNS`` of a row."""
        body = self.decrypt(bytes(row["body"]), f"The body of inbox item {row['id']}")
        request = HookRequest.model_validate_json(row["request"]).model_copy(update={"body": body})
        return InboxItem(
            id=row["id"],
            integration_id=row["integration_id"],
            status=row["status"],
            request=request,
            attempts=row["attempts"],
            next_attempt_at=self._from_db(row["next_attempt_at"]),
            last_error=row["last_error"],
            outcome=None if row["outcome"] is None else _json_object(row["outcome"]),
            created_at=self._from_db(row["created_at"]),
            updated_at=self._from_db(row["updated_at"]),
        )

    def inserted_inbox_item(
        self, row: Row, item: NewInboxItem, params: Mapping[str, Any]
    ) -> InboxItem:
        """The item a delivery was just inserted as: what ``inbox_item`` would read back, made
        from what was written (``item`` and its ``new_inbox_item`` ``params``) and the row's
        ``id``, ``created_at`` and ``updated_at``, without decrypting the body just encrypted."""
        return InboxItem(
            id=row["id"],
            integration_id=item.integration_id,
            status=params["status"],
            request=item.request,
            attempts=0,
            next_attempt_at=self._from_db(params["next_attempt_at"]),
            last_error=None,
            outcome=None if params["outcome"] is None else _json_object(params["outcome"]),
            created_at=self._from_db(row["created_at"]),
            updated_at=self._from_db(row["updated_at"]),
        )

    def outcome_params(self, outcome: InboxOutcome, when: datetime) -> dict[str, Any]:
        """The parameters that record one drain outcome of an inbox item, for an ``UPDATE`` of
        one shape whatever the outcome: ``finished`` (done/ignored) sets ``outcome``; the others
        add ``attempt`` to the attempts and set ``error``, and a retry is pending again from
        ``next_attempt_at`` (``None``: unchanged)."""
        finished = outcome.status in ("done", "ignored")
        next_attempt_at = None
        if outcome.status == "retry":
            if outcome.next_attempt_at is None:
                raise ValueError("a retry outcome needs next_attempt_at")
            next_attempt_at = self._to_db(outcome.next_attempt_at)
        return {
            "id": outcome.item_id,
            "status": "pending" if outcome.status == "retry" else outcome.status,
            "finished": finished,
            "outcome": json.dumps(outcome.outcome or {}) if finished else None,
            "attempt": 0 if finished else 1,
            "error": outcome.error,
            "next_attempt_at": next_attempt_at,
            "now": self._to_db(when),
        }


def _figures(clicks: Sequence[Row], chats: Sequence[Row]) -> dict[str, MessengerLinkFigures]:
    """Per channel, from the ``channel, n`` rows of clicks and of chats that took a code."""
    found: dict[str, dict[str, int]] = {}
    for rows, what in ((clicks, "clicks"), (chats, "chats")):
        for row in rows:
            found.setdefault(str(row["channel"]), {})[what] = int(row["n"])
    return {channel: MessengerLinkFigures(**n) for channel, n in sorted(found.items())}


def version_conflict(current: Integration, expected_version: int) -> Conflict:
    """What ``update_integration`` raises when the row has moved on from ``expected_version``."""
    return Conflict(
        f"integration {current.id} is at version {current.version},"
        f" not {expected_version}: reload and try again"
    )


def rate_params(
    key: str, *, rate: float, now: float, count: float, at_least: float
) -> dict[str, Any]:
    """The parameters of ``take_rate``'s upsert; ``ValueError`` for a negative or non-finite
    number, which would corrupt the shared bucket."""
    values = {"rate": rate, "now": now, "count": count, "at_least": at_least}
    for name, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"take_rate needs a finite, non-negative {name}, not {value!r}")
    return {"key": key, **{name: float(value) for name, value in values.items()}}
