"""The SQLite repository against the ``Repository`` contract, on real database files."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from hooks.errors import Conflict, NotFound
from hooks.host.migrations import MIGRATIONS, apply_migrations
from hooks.host.sqlite import SqliteRepository, open_repository
from hooks.models import (
    Appeal,
    Attribution,
    Campaign,
    Catalog,
    Contact,
    CrmRef,
    Employee,
    HookRequest,
    Message,
    PortalRef,
    Site,
    Source,
    Utm,
    VisitorSession,
)
from tests.conftest import HOST_KEY

MSK = timezone(timedelta(hours=3))
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

TABLES = {
    "_migrations",
    "integrations",
    "catalog",
    "visitor_sessions",
    "session_bindings",
    "appeals",
    "webhook_inbox",
    "host_meta",
    "used_nonces",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "data" / "host.sqlite3")


@pytest.fixture
async def repo(db_path: str) -> AsyncIterator[SqliteRepository]:
    repository = await SqliteRepository.open(db_path, key=HOST_KEY)
    try:
        yield repository
    finally:
        await repository.close()


def make_appeal(
    key: str = "b24:m1:session:1",
    *,
    integration_id: int = 1,
    created_at: datetime = T0,
    text: str = "Hello",
    name: str | None = "Anna",
) -> Appeal:
    return Appeal(
        key=key,
        integration_id=integration_id,
        created_at=created_at,
        channel="telegrambot",
        contact=Contact(name=name, phones=["+79990001122"]),
        attribution=Attribution(method="default", traffic_type="source", source_id=7),
        employee_id=3,
        messages=[Message(at=created_at, author="visitor", text=text)],
        text=text,
        crm=CrmRef(entity_type="lead", entity_id=42),
        portal=PortalRef(domain="example.bitrix24.ru", member_id="m1"),
    )


def make_request(body: bytes, *, received_at: datetime = T0) -> HookRequest:
    return HookRequest(
        method="POST",
        path="/webhooks/1/",
        query={"a": ["1", "2"]},
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=body,
        client_ip="203.0.113.5",
        received_at=received_at,
    )


def table_names(path: str) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return {row[0] for row in rows}


# --- schema -----------------------------------------------------------------------------


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.sqlite3")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert apply_migrations(db) == [fn.__name__ for fn in MIGRATIONS]
        assert apply_migrations(db) == []
        recorded = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert recorded == [fn.__name__ for fn in MIGRATIONS]
    assert table_names(path) == TABLES


def test_migration_names_are_ordered_and_unique() -> None:
    names = [fn.__name__ for fn in MIGRATIONS]
    assert names == sorted(set(names))
    assert all(name.startswith("m") and name[1:4].isdigit() for name in names)


@pytest.mark.anyio
async def test_open_creates_parent_dirs_uses_wal_and_reopen_applies_nothing(db_path: str) -> None:
    for _ in range(2):
        repository = await SqliteRepository.open(db_path, key=HOST_KEY)
        await repository.close()
    assert table_names(db_path) == TABLES
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


# --- integrations -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_get_and_list_integrations(repo: SqliteRepository) -> None:
    first = await repo.create_integration("b24_openlines", "Shop")
    second = await repo.create_integration("b24_openlines", "Clinic")

    assert (first.plugin, first.name, first.version) == ("b24_openlines", "Shop", 1)
    assert first.settings == {} and first.secrets == {} and first.connection == {}
    assert first.created_at.utcoffset() == timedelta(0)
    assert first.created_at == first.updated_at
    tokens = {first.webhook_token.get_secret_value(), second.webhook_token.get_secret_value()}
    assert len(tokens) == 2 and all(len(token) >= 40 for token in tokens)

    assert await repo.get_integration(first.id) == first
    assert await repo.get_integration(9999) is None
    assert [i.name for i in await repo.list_integrations()] == ["Shop", "Clinic"]


@pytest.mark.anyio
async def test_update_is_compare_and_swap(repo: SqliteRepository) -> None:
    created = await repo.create_integration("b24_openlines", "Shop")

    # Two writers both read version 1: the first wins, the second must reload.
    saved = await repo.update_integration(
        created.id, expected_version=1, settings={"employee_id": 3}
    )
    with pytest.raises(Conflict):
        await repo.update_integration(created.id, expected_version=1, settings={"employee_id": 9})

    assert saved.version == 2 and saved.settings == {"employee_id": 3}
    assert saved.updated_at >= created.updated_at and saved.created_at == created.created_at
    assert await repo.get_integration(created.id) == saved

    again = await repo.update_integration(created.id, expected_version=2)
    assert again.version == 3 and again.settings == {"employee_id": 3}


@pytest.mark.anyio
async def test_update_of_missing_integration_is_not_found(repo: SqliteRepository) -> None:
    with pytest.raises(NotFound):
        await repo.update_integration(404, expected_version=1, settings={})


@pytest.mark.anyio
async def test_settings_replace_while_secrets_and_connection_merge(
    repo: SqliteRepository,
) -> None:
    created = await repo.create_integration("b24_openlines", "Shop")
    one = await repo.update_integration(
        created.id,
        expected_version=1,
        settings={"a": 1, "nested": {"x": [1, 2]}},
        secrets={"client_secret": SecretStr("s3cret"), "refresh_token": SecretStr("r1")},
        connection={"domain": "example.bitrix24.ru"},
    )
    two = await repo.update_integration(
        created.id,
        expected_version=one.version,
        settings={"b": 2},
        secrets={"refresh_token": SecretStr("r2"), "access_token": SecretStr("a2")},
        connection={"member_id": "m1"},
    )
    three = await repo.update_integration(
        created.id, expected_version=two.version, secrets={"client_secret": None, "gone": None}
    )

    assert two.settings == {"b": 2}
    assert two.connection == {"domain": "example.bitrix24.ru", "member_id": "m1"}
    plain = {key: value.get_secret_value() for key, value in three.secrets.items()}
    assert plain == {"refresh_token": "r2", "access_token": "a2"}
    assert three.settings == {"b": 2}
    assert await repo.get_integration(created.id) == three


# --- catalog, sessions, bindings --------------------------------------------------------


@pytest.mark.anyio
async def test_catalog_starts_empty_and_is_replaced_whole(repo: SqliteRepository) -> None:
    assert await repo.get_catalog() == Catalog()
    catalog = Catalog(
        employees=[Employee(id=3, name="Ivan")],
        sources=[Source(id=7, name="Telegram", utm_source="tg")],
        sites=[Site(id=1, name="Shop", domain="shop.example")],
        campaigns=[Campaign(id=5, name="Spring", site_id=1, utm_campaign="spring")],
    )
    await repo.replace_catalog(catalog)
    assert await repo.get_catalog() == catalog

    smaller = Catalog(employees=[Employee(id=4, name="Olga")])
    await repo.replace_catalog(smaller)
    assert await repo.get_catalog() == smaller


@pytest.mark.anyio
async def test_visitor_session_round_trip_keeps_the_first_record(repo: SqliteRepository) -> None:
    session = VisitorSession(
        id="vs-1",
        created_at=datetime(2024, 5, 1, 15, 0, tzinfo=MSK),
        landing_url="https://shop.example/?utm_source=tg",
        referrer="https://t.me/",
        site_id=1,
        source_id=7,
        utm=Utm(utm_source="tg"),
    )
    await repo.add_visitor_session(session)
    await repo.add_visitor_session(session.model_copy(update={"landing_url": "https://other/"}))

    assert await repo.get_visitor_session("vs-1") == session
    assert await repo.get_visitor_session("nope") is None


@pytest.mark.anyio
async def test_bind_session_is_idempotent_and_first_wins(repo: SqliteRepository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    other = await repo.create_integration("b24_openlines", "Clinic")

    first = await repo.bind_session(integration.id, "ol-100", "vs-1")
    again = await repo.bind_session(integration.id, "ol-100", "vs-2")
    elsewhere = await repo.bind_session(other.id, "ol-100", "vs-3")

    assert first.session_id == "vs-1" and again == first
    assert elsewhere.session_id == "vs-3"
    assert await repo.get_binding(integration.id, "ol-100") == first
    assert await repo.get_binding(integration.id, "ol-999") is None


@pytest.mark.anyio
async def test_writes_for_an_unknown_integration_are_not_found(repo: SqliteRepository) -> None:
    with pytest.raises(NotFound):
        await repo.bind_session(77, "ol-1", "vs-1")
    with pytest.raises(NotFound):
        await repo.upsert_appeal(make_appeal(integration_id=77))
    with pytest.raises(NotFound):
        await repo.add_inbox_item(77, make_request(b"x"))
    assert await repo.list_appeals() == [] and await repo.list_inbox() == []


# --- appeals ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_upsert_replaces_fields_and_keeps_first_seen(repo: SqliteRepository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    first = await repo.upsert_appeal(make_appeal(integration_id=integration.id, name=None))
    later = make_appeal(
        integration_id=integration.id,
        created_at=T0 - timedelta(minutes=5),
        text="Hello, a longer transcript",
        name="Anna Petrova",
    )
    second = await repo.upsert_appeal(later)

    assert second.appeal == later
    assert second.first_seen_at == first.first_seen_at
    assert second.updated_at >= first.updated_at
    assert first.first_seen_at.utcoffset() == timedelta(0)
    assert await repo.list_appeals() == [second]


@pytest.mark.anyio
async def test_redoable_writes_commit_and_leave_acknowledged_writes_waiting_for_the_disk(
    repo: SqliteRepository, db_path: str
) -> None:
    def synchronous() -> int:
        # Per connection, so only the repository's own shows it: 2 is FULL, 1 NORMAL.
        value: int = repo._db.execute("PRAGMA synchronous").fetchone()[0]
        return value

    integration = await repo.create_integration("b24_openlines", "Shop")
    item = await repo.add_inbox_item(integration.id, make_request(b"chat"))
    appeal = make_appeal(integration_id=integration.id)
    await repo.upsert_appeal(appeal, redoable=True)
    await repo.finish_inbox_item(item.id, "done", {"result": "processed"})
    assert synchronous() == 2
    with pytest.raises(NotFound):  # a redoable write that fails restores FULL too
        await repo.upsert_appeal(make_appeal(integration_id=77), redoable=True)
    assert synchronous() == 2
    # Committed: another connection (the web process, say) sees both writes.
    with closing(sqlite3.connect(db_path)) as other:
        assert other.execute("SELECT count(*) FROM appeals").fetchone()[0] == 1
        assert other.execute("SELECT status FROM webhook_inbox").fetchone()[0] == "done"


@pytest.mark.anyio
async def test_list_appeals_newest_first_across_time_zones(repo: SqliteRepository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    # 10:00+03:00 is 07:00 UTC: older than 08:00 UTC though it sorts later as text.
    moscow = make_appeal(
        "k-msk", integration_id=shop.id, created_at=datetime(2024, 5, 1, 10, tzinfo=MSK)
    )
    utc = make_appeal(
        "k-utc", integration_id=shop.id, created_at=datetime(2024, 5, 1, 8, tzinfo=UTC)
    )
    tie = make_appeal(
        "k-tie", integration_id=clinic.id, created_at=datetime(2024, 5, 1, 8, tzinfo=UTC)
    )
    for appeal in (moscow, utc, tie):
        await repo.upsert_appeal(appeal)

    assert [s.appeal.key for s in await repo.list_appeals()] == ["k-utc", "k-tie", "k-msk"]
    assert [s.appeal.key for s in await repo.list_appeals(integration_id=shop.id)] == [
        "k-utc",
        "k-msk",
    ]
    assert [s.appeal.key for s in await repo.list_appeals(limit=1, offset=1)] == ["k-tie"]
    # The record keeps the offset it came with; only the sort column is normalised.
    stored = await repo.list_appeals(integration_id=shop.id)
    assert stored[1].appeal.created_at.utcoffset() == timedelta(hours=3)


# --- the webhook inbox ------------------------------------------------------------------


@pytest.mark.anyio
async def test_inbox_dedupes_on_integration_and_body(repo: SqliteRepository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    body = b"event=ONIMCONNECTORMESSAGEADD&data[x]=\xff\x00"  # not UTF-8: kept byte for byte

    item = await repo.add_inbox_item(shop.id, make_request(body))
    duplicate = await repo.add_inbox_item(
        shop.id, make_request(body, received_at=T0 + timedelta(1))
    )
    other_portal = await repo.add_inbox_item(clinic.id, make_request(body))
    other_body = await repo.add_inbox_item(shop.id, make_request(body + b"!"))

    assert item.status == "pending" and item.attempts == 0
    assert item.request == make_request(body)
    assert item.next_attempt_at == T0
    assert duplicate == item
    assert len({item.id, other_portal.id, other_body.id}) == 3
    assert [i.id for i in await repo.list_inbox()] == [other_body.id, other_portal.id, item.id]


@pytest.mark.anyio
async def test_inbox_item_life_cycle(repo: SqliteRepository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))
    b = await repo.add_inbox_item(shop.id, make_request(b"b"))
    c = await repo.add_inbox_item(shop.id, make_request(b"c", received_at=T0 + timedelta(hours=1)))

    assert [i.id for i in await repo.due_inbox_items(shop.id, now=T0)] == [a.id, b.id]
    assert [i.id for i in await repo.due_inbox_items(shop.id, now=T0, limit=1)] == [a.id]
    assert await repo.due_inbox_items(clinic.id, now=T0) == []
    assert await repo.next_inbox_attempt(shop.id) == T0
    assert await repo.next_inbox_attempt(clinic.id) is None
    assert await repo.pending_integrations() == [shop.id]

    # a: a transient failure, retried later.
    later = T0 + timedelta(minutes=2)
    await repo.retry_inbox_item(a.id, error="rate limited", next_attempt_at=later)
    # b: processed.
    await repo.finish_inbox_item(b.id, "done", {"result": "processed", "appeal_keys": ["k"]})
    assert await repo.due_inbox_items(shop.id, now=T0) == []
    assert await repo.next_inbox_attempt(shop.id) == later
    assert [i.id for i in await repo.due_inbox_items(shop.id, now=later)] == [a.id]

    # a: fails for good; c: ignored.
    await repo.fail_inbox_item(a.id, error="upstream_error: 400")
    await repo.finish_inbox_item(c.id, "ignored", {"result": "ignored"})
    assert await repo.pending_integrations() == []
    assert await repo.next_inbox_attempt(shop.id) is None

    failed = await repo.list_inbox(status="failed")
    assert [(i.id, i.attempts, i.last_error) for i in failed] == [(a.id, 2, "upstream_error: 400")]
    done = (await repo.list_inbox(status="done"))[0]
    assert (done.id, done.attempts) == (b.id, 0)
    assert done.outcome == {"result": "processed", "appeal_keys": ["k"]}
    assert [i.id for i in await repo.list_inbox(status="ignored")] == [c.id]
    assert len(await repo.list_inbox(limit=2)) == 2

    # A person retries the failed one: pending and due at ``now``; nothing else is requeued.
    now = T0 + timedelta(days=1)
    requeued = await repo.requeue_inbox_item(a.id, now=now)
    assert requeued is not None
    assert (requeued.status, requeued.next_attempt_at, requeued.attempts) == ("pending", now, 0)
    assert await repo.requeue_inbox_item(a.id, now=now) is None  # pending, not failed
    assert await repo.requeue_inbox_item(b.id, now=now) is None  # done
    assert await repo.requeue_inbox_item(12345, now=now) is None
    assert [i.id for i in await repo.due_inbox_items(shop.id, now=now)] == [a.id]
    assert await repo.pending_integrations() == [shop.id]


@pytest.mark.anyio
async def test_inbox_updates_of_a_missing_item_are_not_found(repo: SqliteRepository) -> None:
    with pytest.raises(NotFound):
        await repo.finish_inbox_item(1, "done", {})
    with pytest.raises(NotFound):
        await repo.retry_inbox_item(1, error="x", next_attempt_at=T0)
    with pytest.raises(NotFound):
        await repo.fail_inbox_item(1, error="x")


@pytest.mark.anyio
async def test_naive_datetimes_are_refused(repo: SqliteRepository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    with pytest.raises(ValueError, match="naive"):
        await repo.due_inbox_items(integration.id, now=datetime(2024, 5, 1, 12))


# --- durability -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_data_survives_close_and_reopen(db_path: str) -> None:
    first = await SqliteRepository.open(db_path, key=HOST_KEY)
    try:
        integration = await first.create_integration("b24_openlines", "Shop")
        integration = await first.update_integration(
            integration.id, expected_version=1, secrets={"client_secret": SecretStr("s")}
        )
        stored = await first.upsert_appeal(make_appeal(integration_id=integration.id))
        item = await first.add_inbox_item(integration.id, make_request(b"payload"))
        binding = await first.bind_session(integration.id, "ol-1", "vs-1")
        await first.replace_catalog(Catalog(employees=[Employee(id=1, name="Ivan")]))
        key = await first.host_secret_key()
    finally:
        await first.close()

    second = await SqliteRepository.open(db_path, key=HOST_KEY)
    try:
        assert await second.get_integration(integration.id) == integration
        assert await second.list_appeals() == [stored]
        assert await second.list_inbox() == [item]
        assert await second.get_binding(integration.id, "ol-1") == binding
        assert (await second.get_catalog()).employees == [Employee(id=1, name="Ivan")]
        assert await second.host_secret_key() == key
        assert len(key) == 32
    finally:
        await second.close()


@pytest.mark.anyio
async def test_host_secret_key_is_made_once(repo: SqliteRepository) -> None:
    key = await repo.host_secret_key()
    assert await repo.host_secret_key() == key
    assert len(key) == 32


# --- opening by URL ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_open_repository_accepts_paths_and_sqlite_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url, created in [
        (str(tmp_path / "plain" / "a.db"), tmp_path / "plain" / "a.db"),
        ("sqlite:///relative/b.db", tmp_path / "relative" / "b.db"),
        (f"sqlite:///{tmp_path}/absolute/c.db", tmp_path / "absolute" / "c.db"),
        (":memory:", None),
        ("sqlite://", None),
    ]:
        repository = await open_repository(url, key=HOST_KEY)
        try:
            integration = await repository.create_integration("p", "n")
            assert await repository.get_integration(integration.id) == integration
        finally:
            await repository.close()
        if created is not None:
            assert created.is_file(), url


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://user:pw@db/host", "PostgreSQL is not implemented yet"),
        ("postgres://db/host", "PostgreSQL is not implemented yet"),
        ("mysql://user:pw@db/host", "unsupported database URL scheme 'mysql'"),
        ("sqlite://host/file.db", "sqlite:///"),
    ],
)
async def test_open_repository_refuses_other_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        await open_repository(url, key=HOST_KEY)
    assert "pw" not in str(raised.value)
