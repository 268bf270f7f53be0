"""The ``Repository`` contract, run against both implementations on real databases.

Every behavioural test takes the ``repo`` fixture, which is parametrized: ``sqlite`` (a file in
a temporary directory) and ``postgres`` (a fresh database of the test session's server,
``tests/pg_fixtures.py``). Tests of what only one engine has (SQLite's file, PostgreSQL's
server) come after them, each named after its engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from hooks.errors import Conflict, NotFound
from hooks.host.database import DatabaseUnavailable, is_postgres, open_repository, sqlite_path
from hooks.host.host_key import HostKeyError
from hooks.host.migrations import (
    MIGRATIONS,
    Migration,
    applied_migrations,
    applied_postgres_migrations,
    apply_migrations,
    apply_postgres_migrations,
)
from hooks.host.postgres import PostgresRepository
from hooks.host.repository import InboxOutcome, NewInboxItem, Repository
from hooks.host.sqlite import SqliteRepository
from hooks.models import (
    Appeal,
    Attribution,
    Campaign,
    Catalog,
    Contact,
    CrmRef,
    Employee,
    HookRequest,
    IntegrationHealth,
    LocalizedText,
    Message,
    MessengerLinkFigures,
    PortalRef,
    Site,
    Source,
    Utm,
    VisitorSession,
)
from tests.conftest import HOST_KEY
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio

MSK = timezone(timedelta(hours=3))
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OTHER_KEY = SecretStr(Fernet.generate_key().decode())
NAMES = [step.name for step in MIGRATIONS]

# The host's own tables; on PostgreSQL procrastinate's tables hold the jobs instead of ``jobs``.
HOST_TABLES = {
    "_migrations",
    "integrations",
    "catalog",
    "visitor_sessions",
    "session_bindings",
    "messenger_codes",
    "messenger_clicks",
    "appeals",
    "webhook_inbox",
    "host_meta",
    "used_nonces",
    "periodic_claims",
    "rate_buckets",
}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The database URL of this test's own empty database (the PostgreSQL server only starts
    for the tests that run against it)."""
    if backend == "sqlite":
        return str(tmp_path / "data" / "host.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def repo(db_url: str) -> AsyncIterator[Repository]:
    repository = await open_repository(db_url, key=HOST_KEY)
    try:
        yield repository
    finally:
        await repository.close()


@pytest.fixture
async def twin(db_url: str, repo: Repository) -> AsyncIterator[Repository]:
    """A second repository on ``repo``'s database, as another host process or worker has."""
    repository = await open_repository(db_url, key=HOST_KEY)
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


def done(item_id: int, **outcome: object) -> InboxOutcome:
    return InboxOutcome(item_id=item_id, status="done", outcome=dict(outcome) or None)


def stored_text(db_url: str) -> str:
    """Everything the database holds, as whoever copies it reads it: the SQLite files (and
    WAL), or every row of every PostgreSQL table as text (``bytea`` shows as hex)."""
    if not is_postgres(db_url):
        path = Path(sqlite_path(db_url))
        files = path.parent.glob(f"{path.name}*")
        return b"".join(file.read_bytes() for file in files).decode("latin-1")
    with psycopg.connect(db_url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        return "\n".join(
            str(row[0])
            for (table,) in tables
            for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
        )


def write_directly(db_url: str, *statements: str) -> None:
    """SQL run on the database itself, past the repository: what an older version wrote."""
    if is_postgres(db_url):
        with psycopg.connect(db_url) as conn:
            for statement in statements:
                conn.execute(statement.encode())
        return
    with closing(sqlite3.connect(sqlite_path(db_url))) as db, db:
        for statement in statements:
            db.execute(statement)


def assert_not_stored(secret: bytes, db_url: str) -> None:
    stored = stored_text(db_url)
    assert secret.decode("latin-1") not in stored
    assert secret.hex() not in stored  # a bytea's text form


# --- integrations ---------------------------------------------------------------------------


async def test_create_get_and_list_integrations(repo: Repository) -> None:
    first = await repo.create_integration("b24_openlines", "Shop")
    second = await repo.create_integration("b24_openlines", "Clinic")

    assert (first.plugin, first.name, first.version) == ("b24_openlines", "Shop", 1)
    assert first.settings == {} and first.secrets == {} and first.connection == {}
    assert first.created_at.utcoffset() == timedelta(0)
    assert first.created_at == first.updated_at
    assert second.id > first.id
    tokens = {first.webhook_token.get_secret_value(), second.webhook_token.get_secret_value()}
    assert len(tokens) == 2 and all(len(token) >= 40 for token in tokens)

    assert await repo.get_integration(first.id) == first
    assert await repo.get_integration(9999) is None
    assert [i.name for i in await repo.list_integrations()] == ["Shop", "Clinic"]


async def test_get_integrations_in_one_call(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    gone = await repo.create_integration("b24_openlines", "Gone")
    assert await repo.delete_integration(gone.id)

    found = await repo.get_integrations([clinic.id, gone.id, 9999, shop.id, shop.id])
    assert found == {shop.id: shop, clinic.id: clinic}  # deleted and unknown ones absent
    assert await repo.get_integrations([]) == {}


async def test_update_is_compare_and_swap(repo: Repository) -> None:
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


async def test_concurrent_updates_of_one_version_have_one_winner(
    repo: Repository, twin: Repository
) -> None:
    created = await repo.create_integration("b24_openlines", "Shop")
    results = await asyncio.gather(
        *(
            writer.update_integration(created.id, expected_version=1, settings={"by": n})
            for n, writer in enumerate([repo, twin] * 3)
        ),
        return_exceptions=True,
    )
    winners = [result for result in results if not isinstance(result, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(result, Conflict) for result in results if result not in winners)
    assert await repo.get_integration(created.id) == winners[0]
    assert winners[0].version == 2


async def test_update_of_missing_integration_is_not_found(repo: Repository) -> None:
    with pytest.raises(NotFound):
        await repo.update_integration(404, expected_version=1, settings={})


async def test_settings_replace_while_secrets_and_connection_merge(repo: Repository) -> None:
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


async def test_settings_come_back_as_written(repo: Repository) -> None:
    # Key order, text with a NUL character, big and fractional numbers: JSON kept as written.
    settings = {"z": "last\u0000first", "a": 1.0, "big": 2**62, "list": [3, 1, 2]}
    created = await repo.create_integration("b24_openlines", "Shop")
    saved = await repo.update_integration(created.id, expected_version=1, settings=settings)
    stored = await repo.get_integration(created.id)
    assert stored is not None and stored == saved
    assert list(stored.settings) == ["z", "a", "big", "list"]
    assert stored.settings == settings and isinstance(stored.settings["a"], float)


# --- catalog, sessions, bindings ------------------------------------------------------------


async def test_catalog_starts_empty_and_is_replaced_whole(repo: Repository) -> None:
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


async def test_visitor_session_round_trip_keeps_the_first_record(repo: Repository) -> None:
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


async def test_bind_session_is_idempotent_and_first_wins(repo: Repository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    other = await repo.create_integration("b24_openlines", "Clinic")

    first = await repo.bind_session(integration.id, "ol-100", "vs-1")
    again = await repo.bind_session(integration.id, "ol-100", "vs-2")
    elsewhere = await repo.bind_session(other.id, "ol-100", "vs-3")

    assert first.session_id == "vs-1" and again == first
    assert elsewhere.session_id == "vs-3"
    assert await repo.get_binding(integration.id, "ol-100") == first
    assert await repo.get_binding(integration.id, "ol-999") is None


async def test_concurrent_bindings_agree_on_the_first(repo: Repository, twin: Repository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    bindings = await asyncio.gather(
        *(
            writer.bind_session(integration.id, "ol-7", f"vs-{n}")
            for n, writer in enumerate([repo, twin] * 4)
        )
    )
    assert all(binding == bindings[0] for binding in bindings)
    assert await twin.get_binding(integration.id, "ol-7") == bindings[0]


async def test_a_messenger_code_goes_to_its_first_dialog_while_valid(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    expires = T0 + timedelta(days=30)
    assert await repo.add_messenger_code(shop.id, "K7PM2QXA", "vs-1", expires_at=expires, now=T0)
    # Taken already, by this integration or another: nothing written, the caller draws again.
    assert not await repo.add_messenger_code(
        shop.id, "K7PM2QXA", "vs-2", expires_at=expires, now=T0
    )
    assert not await repo.add_messenger_code(
        clinic.id, "K7PM2QXA", "vs-3", expires_at=expires, now=T0
    )
    await repo.add_messenger_code(shop.id, "EXP2RED3", "vs-4", expires_at=expires, now=T0)

    later = T0 + timedelta(days=29)
    assert await repo.redeem_messenger_code(clinic.id, "K7PM2QXA", "301", now=later) is None
    assert await repo.redeem_messenger_code(shop.id, "K7PM2QXA", "301", now=later) == "vs-1"
    assert await repo.redeem_messenger_code(shop.id, "K7PM2QXA", "302", now=later) is None
    # The dialog that took it keeps it, even once the code has expired.
    assert await repo.redeem_messenger_code(shop.id, "K7PM2QXA", "301", now=expires) == "vs-1"
    assert await repo.redeem_messenger_code(shop.id, "EXP2RED3", "303", now=expires) is None
    assert await repo.redeem_messenger_code(shop.id, "EXP2RED3", "303", now=later) == "vs-4"
    assert await repo.redeem_messenger_code(shop.id, "NOSUCHCD", "304", now=later) is None
    with pytest.raises(NotFound):
        await repo.add_messenger_code(77, "ABCDEFGH", "vs-1", expires_at=expires, now=T0)


async def test_concurrent_dialogs_agree_on_who_takes_a_code(
    repo: Repository, twin: Repository
) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    await repo.add_messenger_code(
        integration.id, "K7PM2QXA", "vs-1", expires_at=T0 + timedelta(days=30), now=T0
    )
    found = await asyncio.gather(
        *(
            writer.redeem_messenger_code(integration.id, "K7PM2QXA", f"ol-{n}", now=T0)
            for n, writer in enumerate([repo, twin] * 4)
        )
    )
    assert found.count("vs-1") == 1 and found.count(None) == 7


async def test_a_visits_unused_code_is_found_again(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    expires = T0 + timedelta(days=30)
    assert await repo.unused_messenger_code(shop.id, "vs-1", valid_after=T0) is None
    await repo.add_messenger_code(shop.id, "K7PM2QXA", "vs-1", expires_at=expires, now=T0)
    await repo.add_messenger_code(clinic.id, "CL1NCQXA", "vs-1", expires_at=expires, now=T0)
    assert await repo.unused_messenger_code(shop.id, "vs-1", valid_after=T0) == "K7PM2QXA"
    assert await repo.unused_messenger_code(clinic.id, "vs-1", valid_after=T0) == "CL1NCQXA"
    assert await repo.unused_messenger_code(shop.id, "vs-2", valid_after=T0) is None
    # Expiring by then, or taken by a dialog: not handed out again.
    assert await repo.unused_messenger_code(shop.id, "vs-1", valid_after=expires) is None
    await repo.redeem_messenger_code(shop.id, "K7PM2QXA", "301", now=T0, channel="telegram")
    assert await repo.unused_messenger_code(shop.id, "vs-1", valid_after=T0) is None


async def test_messenger_figures_of_the_week_per_channel(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    other = await repo.create_integration("b24_openlines", "Other")
    now = datetime.now(UTC)
    week = now - timedelta(days=6)
    bounds = {"today": now - timedelta(hours=1), "week": week, "failures_since": now}
    for day, channel, owner in [
        (now.date(), "telegram", shop),
        (now.date(), "telegram", shop),
        (week.date(), "whatsapp", shop),  # the week's first day counts
        ((week - timedelta(days=1)).date(), "whatsapp", shop),  # the day before does not
        (now.date(), "viber", other),
    ]:
        await repo.count_messenger_click(owner.id, channel, day)
    expires = now + timedelta(days=30)
    for code, taken_on, redeemed_at in [
        ("TGCHATQ2", "telegram", now),
        ("WACHATQ2", "whatsapp", now - timedelta(days=7)),  # before the week
        ("UNUSEDQ2", None, None),
    ]:
        await repo.add_messenger_code(shop.id, code, "vs", expires_at=expires, now=now)
        if redeemed_at is not None:
            await repo.redeem_messenger_code(shop.id, code, code, now=redeemed_at, channel=taken_on)
    # Taken again later (the appeal written again), on another channel: the first one stays.
    await repo.redeem_messenger_code(shop.id, "TGCHATQ2", "TGCHATQ2", now=now, channel="viber")
    health = await repo.integration_health(shop.id, **bounds)
    assert health.messenger_links == {
        "telegram": MessengerLinkFigures(clicks=2, chats=1),
        "whatsapp": MessengerLinkFigures(clicks=1, chats=0),
    }
    assert (await repo.integration_health(other.id, **bounds)).messenger_links == {
        "viber": MessengerLinkFigures(clicks=1)
    }
    with pytest.raises(NotFound):
        await repo.count_messenger_click(77, "telegram", now.date())


async def test_writes_for_an_unknown_integration_are_not_found(repo: Repository) -> None:
    with pytest.raises(NotFound):
        await repo.bind_session(77, "ol-1", "vs-1")
    with pytest.raises(NotFound):
        await repo.upsert_appeal(make_appeal(integration_id=77))
    with pytest.raises(NotFound):
        await repo.add_inbox_item(77, make_request(b"x"))
    assert await repo.list_appeals() == [] and await repo.list_inbox() == []


# --- appeals --------------------------------------------------------------------------------


async def test_upsert_replaces_fields_and_keeps_first_seen(repo: Repository) -> None:
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
    assert await repo.get_appeal(later.key) == second
    assert await repo.get_appeal("no-such-key") is None


async def test_get_appeals_in_one_call(repo: Repository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    # A key with a quote and non-ASCII: the keys travel as data, never as SQL text.
    keys = ["b24:m1:session:1", "b24:m1:session:'2'", "b24:m1:сессия:3"]
    stored = [await repo.upsert_appeal(make_appeal(k, integration_id=integration.id)) for k in keys]

    found = await repo.get_appeals([keys[2], "no-such-key", keys[0], keys[2]])
    assert found == {keys[0]: stored[0], keys[2]: stored[2]}
    assert await repo.get_appeals(keys) == dict(zip(keys, stored, strict=True))
    assert await repo.get_appeals([]) == {}


async def test_list_appeals_newest_first_across_time_zones(repo: Repository) -> None:
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


async def test_appeals_in_a_time_range_are_listed_and_counted(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    # The range is of instants: 02:30+03:00 on May 2 is 23:30 UTC on May 1, inside a range that
    # starts at midnight of May 2 in Moscow.
    times = {
        "before": datetime(2024, 5, 1, 20, 59, tzinfo=UTC),
        "first": datetime(2024, 5, 2, 2, 30, tzinfo=MSK),
        "last": datetime(2024, 5, 2, 20, 59, 59, tzinfo=UTC),
        "after": datetime(2024, 5, 2, 21, 0, tzinfo=UTC),
    }
    for key, created_at in times.items():
        await repo.upsert_appeal(make_appeal(key, integration_id=shop.id, created_at=created_at))
    await repo.upsert_appeal(make_appeal("other", integration_id=clinic.id, created_at=T0))
    since = datetime(2024, 5, 2, tzinfo=MSK)
    before = datetime(2024, 5, 3, tzinfo=MSK)

    listed = await repo.list_appeals(created_from=since, created_before=before)
    assert [s.appeal.key for s in listed] == ["last", "first"]
    assert await repo.count_appeals(created_from=since, created_before=before) == 2
    assert [s.appeal.key for s in await repo.list_appeals(created_from=since)] == [
        "after",
        "last",
        "first",
    ]
    assert await repo.count_appeals(created_before=since) == 2  # "before" and clinic's
    assert await repo.count_appeals() == 5
    assert await repo.count_appeals(integration_id=clinic.id) == 1
    assert await repo.count_appeals(integration_id=clinic.id, created_from=since) == 0
    paged = await repo.list_appeals(integration_id=shop.id, created_from=since, limit=1, offset=1)
    assert [s.appeal.key for s in paged] == ["last"]


async def test_appeals_paged_after_the_last_one_read_skip_and_repeat_nothing(
    repo: Repository,
) -> None:
    """The export reads page after page while appeals keep arriving (some with an earlier
    ``created_at``: a caught-up dialog): each page starts after the last row read."""
    shop = await repo.create_integration("b24_openlines", "Shop")
    for n in range(7):  # three share one instant: the key orders them
        at = T0 + timedelta(minutes=min(n, 4))
        await repo.upsert_appeal(make_appeal(f"k{n}", integration_id=shop.id, created_at=at))
    seen: list[str] = []
    query: dict[str, object] = {}
    while page := await repo.list_appeals(limit=2, **query):  # type: ignore[arg-type]
        seen += [s.appeal.key for s in page]
        if len(seen) == 2:  # arrivals meanwhile: one newer, one older than the rows read
            newer, older = T0 + timedelta(hours=1), T0 - timedelta(hours=1)
            await repo.upsert_appeal(make_appeal("new", integration_id=shop.id, created_at=newer))
            await repo.upsert_appeal(make_appeal("old", integration_id=shop.id, created_at=older))
        query["after"] = (page[-1].appeal.created_at, page[-1].appeal.key)
    assert seen == ["k6", "k5", "k4", "k3", "k2", "k1", "k0", "old"]


async def test_appeals_of_one_time_are_paged_in_byte_order_of_their_keys(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A database whose locale sorts like a dictionary (a before B, "-" ignored) still pages by
    # the keys' bytes, as SQLite does: the pages do not depend on where the database runs.
    if backend == "sqlite":
        url = str(tmp_path / "host.sqlite3")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"english_{uuid.uuid4().hex}"
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(
                f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu"
                " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        url = server.url(name)
    repository = await open_repository(url, key=HOST_KEY)
    try:
        shop = await repository.create_integration("b24_openlines", "Shop")
        for key in ("b24:B", "b24-c", "b24:a", "b24:C"):
            await repository.upsert_appeal(make_appeal(key, integration_id=shop.id))
        keys = [stored.appeal.key for stored in await repository.list_appeals()]
    finally:
        await repository.close()
    assert keys == ["b24:a", "b24:C", "b24:B", "b24-c"]


# --- the webhook inbox ----------------------------------------------------------------------


async def test_integration_health_counts_its_own_appeals_days_and_failures(
    repo: Repository,
) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    other = await repo.create_integration("b24_openlines", "Other")
    now = datetime.now(UTC)
    bounds = {
        "today": now - timedelta(hours=1),  # the account's midnight, as the host computes it
        "week": now - timedelta(days=6),
        "failures_since": now - timedelta(hours=24),
    }
    assert await repo.integration_health(shop.id, **bounds) == IntegrationHealth()
    for key, created_at, owner in [
        ("today", now.astimezone(MSK), shop),  # an offset of its own: compared as a time
        ("this week", now - timedelta(days=3), shop),
        ("last month", now - timedelta(days=30), shop),
        ("another's", now, other),
    ]:
        await repo.upsert_appeal(make_appeal(key, integration_id=owner.id, created_at=created_at))
    first = await repo.add_inbox_item(shop.id, make_request(b"a"))
    second = await repo.add_inbox_item(shop.id, make_request(b"b"))
    fine = await repo.add_inbox_item(shop.id, make_request(b"c"))
    await repo.add_inbox_item(other.id, make_request(b"d"))
    await repo.finish_drain([InboxOutcome(item_id=first.id, status="failed", error="x: 1")], [])
    denied = "bitrix24:ACCESS_DENIED: REST API is available only on commercial plans"
    await repo.finish_drain([InboxOutcome(item_id=second.id, status="failed", error=denied)], [])
    await repo.finish_drain([done(fine.id)], [])

    health = await repo.integration_health(shop.id, **bounds)
    assert (health.appeals_today, health.appeals_week, health.failures_day) == (1, 2, 2)
    assert health.last_failure == denied and health.last_failure_at is not None
    assert health.last_event_at is not None and health.last_appeal_at is not None
    assert health.last_failure_at >= health.last_event_at >= health.last_appeal_at >= now
    later = await repo.integration_health(
        shop.id, **{**bounds, "failures_since": datetime.now(UTC) + timedelta(seconds=1)}
    )
    assert later.failures_day == 0 and later.last_failure is None


async def test_rename_and_delete_an_integration_keeping_its_appeals(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    other = await repo.create_integration("b24_openlines", "Other")
    renamed = await repo.rename_integration(shop.id, "Магазин")
    assert renamed.name == "Магазин" and renamed.version == shop.version
    with pytest.raises(NotFound):
        await repo.rename_integration(999, "x")
    for owner in (shop, other):
        await repo.upsert_appeal(make_appeal(f"k{owner.id}", integration_id=owner.id))
        await repo.add_inbox_item(owner.id, make_request(b"body"))
        await repo.bind_session(owner.id, "301", "visit")
        code = f"SHQPAAA{'ABCDEFGHJK'[owner.id % 10]}"
        await repo.add_messenger_code(owner.id, code, "visit", expires_at=T0, now=T0)
    await repo.update_integration(
        shop.id, expected_version=shop.version, secrets={"access_token": SecretStr("t0ken")}
    )
    assert await repo.delete_integration(shop.id) is True
    assert await repo.get_integration(shop.id) is None
    assert [i.id for i in await repo.list_integrations()] == [other.id]
    kept = sorted(s.appeal.integration_id for s in await repo.list_appeals())
    assert kept == sorted([shop.id, other.id])  # the client's raw data stays
    assert await repo.count_appeals(integration_id=shop.id) == 1
    assert [i.integration_id for i in await repo.list_inbox()] == [other.id]
    assert await repo.get_binding(shop.id, "301") is None
    assert await repo.get_binding(other.id, "301") is not None
    # The deleted integration's codes are gone: the same code can be drawn again.
    again = f"SHQPAAA{'ABCDEFGHJK'[shop.id % 10]}"
    assert await repo.add_messenger_code(other.id, again, "visit", expires_at=T0, now=T0)
    assert await repo.delete_integration(shop.id) is False


async def test_inbox_dedupes_on_integration_and_body(repo: Repository) -> None:
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


async def test_inbox_dedupe_key_and_ignored_deliveries(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    first = await repo.add_inbox_item(shop.id, make_request(b"one"), dedupe_key="event-1")
    same_event = await repo.add_inbox_item(shop.id, make_request(b"two"), dedupe_key="event-1")
    ignored = await repo.add_inbox_item(shop.id, make_request(b"ping"), ignored="not a chat")
    worded = LocalizedText(ru="не чат", en="not a chat")
    said = await repo.add_inbox_item(
        shop.id, make_request(b"pong"), ignored="not a chat", ignored_text=worded
    )
    assert said.outcome == {
        "result": "ignored",
        "reason": "not a chat",
        "reason_text": {"ru": "не чат", "en": "not a chat"},
    }

    assert same_event == first and first.request.body == b"one"
    assert (ignored.status, ignored.outcome) == (
        "ignored",
        {"result": "ignored", "reason": "not a chat"},
    )
    assert [i.id for i in await repo.due_inbox_items(shop.id, now=T0)] == [first.id]


async def test_concurrent_redeliveries_make_one_item(repo: Repository, twin: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    items = await asyncio.gather(
        *(writer.add_inbox_item(shop.id, make_request(b"same")) for writer in [repo, twin] * 4)
    )
    assert len({item.id for item in items}) == 1
    assert len(await repo.list_inbox()) == 1


async def test_inbox_items_added_together(repo: Repository) -> None:
    """One call, in order: new ones, two identical bodies (one stored item for both), a
    redelivery of an earlier one (its stored item), an ignored one, another integration's."""
    shop = await repo.create_integration("b24_openlines", "Shop")
    clinic = await repo.create_integration("b24_openlines", "Clinic")
    earlier = await repo.add_inbox_item(shop.id, make_request(b"earlier"))
    worded = LocalizedText(ru="не чат", en="not a chat")

    items = await repo.add_inbox_items(
        [
            NewInboxItem(shop.id, make_request(b"a")),
            NewInboxItem(shop.id, make_request(b"twice")),
            NewInboxItem(shop.id, make_request(b"earlier", received_at=T0 + timedelta(1))),
            NewInboxItem(shop.id, make_request(b"twice", received_at=T0 + timedelta(1))),
            NewInboxItem(shop.id, make_request(b"ping"), ignored="not a chat", ignored_text=worded),
            NewInboxItem(clinic.id, make_request(b"a")),
            NewInboxItem(shop.id, make_request(b"one"), dedupe_key="event-1"),
            NewInboxItem(shop.id, make_request(b"two"), dedupe_key="event-1"),
        ]
    )
    a, twice, redelivered, twice_again, ignored, clinics, event, same_event = items

    assert a.request == make_request(b"a") and a.status == "pending" and a.attempts == 0
    assert twice_again == twice and twice.request == make_request(b"twice")
    assert redelivered == earlier
    assert same_event == event and event.request.body == b"one"
    assert (ignored.status, ignored.outcome) == (
        "ignored",
        {"result": "ignored", "reason": "not a chat", "reason_text": worded.model_dump()},
    )
    assert clinics.integration_id == clinic.id and clinics.id != a.id
    stored = {item.id: item for item in await repo.list_inbox()}
    assert len(stored) == 6  # earlier, a, twice, ping, the clinic's a, event-1
    assert all(stored[item.id] == item for item in items)
    due = [i.id for i in await repo.due_inbox_items(shop.id, now=T0 + timedelta(2))]
    assert due == [earlier.id, a.id, twice.id, event.id]
    assert await repo.add_inbox_items([]) == []


async def test_inbox_items_of_an_unknown_integration_write_nothing(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    with pytest.raises(NotFound):
        await repo.add_inbox_items(
            [NewInboxItem(shop.id, make_request(b"fine")), NewInboxItem(77, make_request(b"x"))]
        )
    with pytest.raises(NotFound, match="77"):
        await repo.add_inbox_items([NewInboxItem(77, make_request(b"x"))])
    assert await repo.list_inbox() == []


async def test_concurrent_batches_of_redeliveries_make_one_item(
    repo: Repository, twin: Repository
) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    batch = [NewInboxItem(shop.id, make_request(body)) for body in (b"x", b"same", b"y")]
    batches = await asyncio.gather(*(writer.add_inbox_items(batch) for writer in [repo, twin] * 4))
    assert len({items[1].id for items in batches}) == 1
    assert len(await repo.list_inbox()) == 3


async def test_inbox_item_life_cycle(repo: Repository) -> None:
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

    # a: a transient failure, retried later; b: processed.
    later = T0 + timedelta(minutes=2)
    await repo.finish_drain(
        [
            InboxOutcome(item_id=a.id, status="retry", error="rate limited", next_attempt_at=later),
            done(b.id, result="processed", appeal_keys=["k"]),
        ],
        [],
    )
    assert await repo.due_inbox_items(shop.id, now=T0) == []
    assert await repo.next_inbox_attempt(shop.id) == later
    assert [i.id for i in await repo.due_inbox_items(shop.id, now=later)] == [a.id]

    # a: fails for good; c: ignored.
    await repo.finish_drain(
        [
            InboxOutcome(item_id=a.id, status="failed", error="upstream_error: 400"),
            InboxOutcome(item_id=c.id, status="ignored", outcome={"result": "ignored"}),
        ],
        [],
    )
    assert await repo.pending_integrations() == []
    assert await repo.next_inbox_attempt(shop.id) is None

    failed = await repo.list_inbox(status="failed")
    assert [(i.id, i.attempts, i.last_error) for i in failed] == [(a.id, 2, "upstream_error: 400")]
    finished = (await repo.list_inbox(status="done"))[0]
    assert (finished.id, finished.attempts) == (b.id, 0)
    assert finished.outcome == {"result": "processed", "appeal_keys": ["k"]}
    assert [i.id for i in await repo.list_inbox(status="ignored")] == [c.id]
    assert len(await repo.list_inbox(limit=2)) == 2

    # A person retries the failed one: pending and due at ``now``; nothing else is requeued.
    now = T0 + timedelta(days=1)
    requeued = await repo.requeue_inbox_item(a.id, now=now)
    assert requeued is not None
    assert (requeued.status, requeued.next_attempt_at, requeued.attempts) == ("pending", now, 0)
    assert requeued.last_error is None  # the error of the attempts given up on is gone
    assert await repo.requeue_inbox_item(a.id, now=now) is None  # pending, not failed
    assert await repo.requeue_inbox_item(b.id, now=now) is None  # done
    assert await repo.requeue_inbox_item(12345, now=now) is None
    assert [i.id for i in await repo.due_inbox_items(shop.id, now=now)] == [a.id]
    assert await repo.pending_integrations() == [shop.id]


async def test_naive_datetimes_are_refused(repo: Repository) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    naive = datetime(2024, 5, 1, 12)
    with pytest.raises(ValueError, match="naive"):
        await repo.due_inbox_items(integration.id, now=naive)
    with pytest.raises(ValueError, match="naive"):
        await repo.claim_period("catch-up", period_seconds=60, now=naive)
    with pytest.raises(ValueError, match="naive"):
        await repo.use_nonce("n", expires_at=naive, now=T0)


# --- finishing a drain ----------------------------------------------------------------------


async def test_finish_drain_writes_appeals_and_outcomes_together(
    repo: Repository, twin: Repository
) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))
    b = await repo.add_inbox_item(shop.id, make_request(b"b"))
    appeals = [
        make_appeal("k-1", integration_id=shop.id),
        make_appeal("k-2", integration_id=shop.id, created_at=T0 + timedelta(minutes=1)),
    ]

    await repo.finish_drain(
        [
            done(a.id, result="processed", appeal_keys=["k-1", "k-2"]),
            InboxOutcome(item_id=b.id, status="ignored", outcome={"result": "ignored"}),
        ],
        appeals,
    )

    # Committed: another process sees all of it.
    assert [s.appeal for s in await twin.list_appeals()] == [appeals[1], appeals[0]]
    by_id = {item.id: item for item in await twin.list_inbox()}
    assert (by_id[a.id].status, by_id[a.id].outcome) == (
        "done",
        {"result": "processed", "appeal_keys": ["k-1", "k-2"]},
    )
    assert by_id[b.id].status == "ignored"
    assert by_id[a.id].updated_at >= a.updated_at
    assert await twin.pending_integrations() == []


async def test_finish_drain_with_an_unknown_item_writes_nothing(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))

    with pytest.raises(NotFound, match="inbox item 999"):
        await repo.finish_drain(
            [done(a.id, result="processed"), done(999)], [make_appeal(integration_id=shop.id)]
        )

    assert await repo.list_appeals() == []
    assert await repo.list_inbox() == [a]  # still pending, as it was


async def test_finish_drain_with_an_unknown_integration_writes_nothing(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))

    with pytest.raises(NotFound, match="integration 77"):
        await repo.finish_drain(
            [done(a.id, result="processed")],
            [make_appeal("k-1", integration_id=shop.id), make_appeal("k-2", integration_id=77)],
        )

    assert await repo.list_appeals() == []
    assert await repo.list_inbox() == [a]


async def test_finish_drain_refuses_a_retry_without_its_time(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))
    with pytest.raises(ValueError, match="next_attempt_at"):
        await repo.finish_drain(
            [InboxOutcome(item_id=a.id, status="retry", error="x")],
            [make_appeal(integration_id=shop.id)],
        )
    assert await repo.list_appeals() == [] and await repo.list_inbox() == [a]


async def test_finish_drain_retry_counts_an_attempt_and_waits(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))
    first, second = T0 + timedelta(seconds=30), T0 + timedelta(minutes=5)

    await repo.finish_drain(
        [InboxOutcome(item_id=a.id, status="retry", error="rate limited", next_attempt_at=first)],
        [],
    )
    await repo.finish_drain(
        [InboxOutcome(item_id=a.id, status="retry", error="timeout", next_attempt_at=second)], []
    )

    [item] = await repo.list_inbox()
    assert (item.status, item.attempts, item.last_error) == ("pending", 2, "timeout")
    assert item.next_attempt_at == second and item.outcome is None
    assert await repo.due_inbox_items(shop.id, now=first) == []
    assert await repo.next_inbox_attempt(shop.id) == second
    assert await repo.pending_integrations() == [shop.id]


async def test_finish_drain_failed_parks_the_item(repo: Repository) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    a = await repo.add_inbox_item(shop.id, make_request(b"a"))

    await repo.finish_drain([InboxOutcome(item_id=a.id, status="failed", error="bad data")], [])

    [item] = await repo.list_inbox()
    assert (item.status, item.attempts, item.last_error) == ("failed", 1, "bad data")
    assert await repo.due_inbox_items(shop.id, now=T0 + timedelta(days=365)) == []
    assert await repo.pending_integrations() == []
    assert [i.id for i in await repo.list_inbox(status="failed")] == [a.id]


async def test_finish_drain_keeps_the_last_appeal_of_a_key_and_its_first_sight(
    repo: Repository,
) -> None:
    shop = await repo.create_integration("b24_openlines", "Shop")
    earlier = await repo.upsert_appeal(make_appeal("k", integration_id=shop.id, text="Hi"))
    middle = make_appeal("k", integration_id=shop.id, text="Hi, I")
    last = make_appeal("k", integration_id=shop.id, text="Hi, I need a quote")

    await repo.finish_drain([], [middle, last])

    [stored] = await repo.list_appeals()
    assert stored.appeal == last
    assert stored.first_seen_at == earlier.first_seen_at
    assert stored.updated_at >= earlier.updated_at


# --- the periodic scheduler's guard ---------------------------------------------------------


async def test_claim_period_once_per_period(repo: Repository) -> None:
    period = 300.0
    assert await repo.claim_period("catch-up", period_seconds=period, now=T0) is True
    assert await repo.claim_period("catch-up", period_seconds=period, now=T0) is False
    almost = T0 + timedelta(seconds=period - 0.001)
    assert await repo.claim_period("catch-up", period_seconds=period, now=almost) is False
    # Another task has its own period.
    assert await repo.claim_period("transcripts", period_seconds=period, now=almost) is True
    # A full period after the last claim (not after the refused attempts) it is due again.
    due = T0 + timedelta(seconds=period)
    assert await repo.claim_period("catch-up", period_seconds=period, now=due) is True
    assert await repo.claim_period("catch-up", period_seconds=period, now=due) is False
    # Times in another zone are the same instants.
    later = (due + timedelta(seconds=period)).astimezone(MSK)
    assert await repo.claim_period("catch-up", period_seconds=period, now=later) is True


async def test_concurrent_claims_from_two_repositories_have_one_winner(
    repo: Repository, twin: Repository
) -> None:
    for round_start in (T0, T0 + timedelta(minutes=1)):
        claims = await asyncio.gather(
            *(
                claimer.claim_period("catch-up", period_seconds=60, now=round_start)
                for claimer in [repo, twin] * 5
            )
        )
        assert claims.count(True) == 1, round_start


# --- host secrets ---------------------------------------------------------------------------


async def test_host_secret_key_is_made_once_and_shared(repo: Repository, twin: Repository) -> None:
    keys = await asyncio.gather(repo.host_secret_key(), twin.host_secret_key())
    assert keys[0] == keys[1] and len(keys[0]) == 32
    assert await repo.host_secret_key() == keys[0]


async def test_a_nonce_is_spent_once_until_it_expires(repo: Repository, twin: Repository) -> None:
    expires = T0 + timedelta(minutes=10)
    assert await repo.use_nonce("state-1", expires_at=expires, now=T0) is True
    assert await twin.use_nonce("state-1", expires_at=expires, now=T0) is False  # a replay
    assert await repo.use_nonce("state-1", expires_at=expires, now=expires) is False
    assert await repo.use_nonce("state-2", expires_at=expires, now=T0) is True
    # Past its expiry it is pruned (whatever it guarded is refused as expired by then), so the
    # value counts as unseen again.
    after = expires + timedelta(microseconds=1)
    assert await repo.use_nonce("state-1", expires_at=after + timedelta(minutes=10), now=after)
    assert await repo.use_nonce("state-2", expires_at=after, now=after) is True


async def test_concurrent_spends_of_a_nonce_have_one_winner(
    repo: Repository, twin: Repository
) -> None:
    spends = await asyncio.gather(
        *(
            spender.use_nonce("state", expires_at=T0 + timedelta(minutes=10), now=T0)
            for spender in [repo, twin] * 4
        )
    )
    assert spends.count(True) == 1


# --- rate limits shared by processes --------------------------------------------------------

NOW = 1_714_564_800.0  # Unix seconds (T0)


async def test_a_rate_bucket_counts_and_drains_over_time(repo: Repository) -> None:
    assert await repo.take_rate("portal", rate=2.0, now=NOW) == 1
    assert await repo.take_rate("portal", rate=2.0, now=NOW) == 2
    # Half a second at 2/s drains one; the request is counted on top.
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 0.5) == pytest.approx(2)
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 1.5) == pytest.approx(1)
    # Each key is a bucket of its own.
    assert await repo.take_rate("other", rate=2.0, now=NOW + 1.5) == 1
    # Idle for long, it is empty, never below zero.
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 100) == 1
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 100, count=0) == 1
    # A clock behind the last writer's drains nothing and does not take the bucket back in
    # time: half a second after the latest update, half a second's worth has drained.
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 99) == 2
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 100.5) == pytest.approx(2)


async def test_filling_a_rate_bucket_raises_it_to_at_least_the_burst(repo: Repository) -> None:
    # A new bucket filled is full.
    assert await repo.take_rate("fresh", rate=2.0, now=NOW, count=0, at_least=50) == 50
    await repo.take_rate("portal", rate=2.0, now=NOW)
    full = await repo.take_rate("portal", rate=2.0, now=NOW + 0.25, count=0, at_least=50)
    assert full == 50
    # Filling never lowers a level above the burst (requests already reserved their places).
    for expected in (51, 52):
        assert await repo.take_rate("portal", rate=2.0, now=NOW + 0.25) == expected
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 0.25, count=0, at_least=50) == 52
    # And it drains from there.
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 1.25) == pytest.approx(51)


async def test_a_rate_bucket_refuses_meaningless_numbers(repo: Repository) -> None:
    for bad in ({"rate": -1.0}, {"rate": float("nan")}, {"now": float("inf")}, {"count": -1.0}):
        arguments = {"rate": 2.0, "now": NOW, **bad}
        with pytest.raises(ValueError):
            await repo.take_rate("portal", **arguments)
    assert await repo.take_rate("portal", rate=2.0, now=NOW) == 1  # nothing was counted


async def test_concurrent_takes_from_three_processes_lose_no_count(
    db_url: str, repo: Repository
) -> None:
    """Three repositories, each on a thread and event loop of its own (as three processes),
    take 30 requests each at once: every count is kept, each in its own place in the queue."""

    def process() -> list[float]:
        async def take_thirty() -> list[float]:
            own = await open_repository(db_url, key=HOST_KEY)
            try:
                return list(
                    await asyncio.gather(
                        *(own.take_rate("portal", rate=2.0, now=NOW) for _ in range(30))
                    )
                )
            finally:
                await own.close()

        return asyncio.run(take_thirty())

    levels = await asyncio.gather(*(asyncio.to_thread(process) for _ in range(3)))
    assert sorted(level for taken in levels for level in taken) == [float(n) for n in range(1, 91)]
    # 90 counted, minus what 1.5 s at 2/s drained.
    assert await repo.take_rate("portal", rate=2.0, now=NOW + 1.5, count=0) == 87


# --- keys and durability --------------------------------------------------------------------


async def test_data_survives_close_and_reopen(db_url: str) -> None:
    first = await open_repository(db_url, key=HOST_KEY)
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
        assert await first.claim_period("catch-up", period_seconds=60, now=T0)
        assert await first.use_nonce("state", expires_at=T0 + timedelta(hours=1), now=T0)
    finally:
        await first.close()

    second = await open_repository(db_url, key=HOST_KEY)
    try:
        assert await second.get_integration(integration.id) == integration
        assert await second.list_appeals() == [stored]
        assert await second.list_inbox() == [item]
        assert await second.get_binding(integration.id, "ol-1") == binding
        assert (await second.get_catalog()).employees == [Employee(id=1, name="Ivan")]
        assert await second.host_secret_key() == key
        assert not await second.claim_period("catch-up", period_seconds=60, now=T0)
        assert not await second.use_nonce("state", expires_at=T0 + timedelta(hours=1), now=T0)
    finally:
        await second.close()


async def test_secrets_bodies_and_the_signing_key_are_encrypted_at_rest(
    repo: Repository, db_url: str
) -> None:
    integration = await repo.create_integration("b24_openlines", "Shop")
    await repo.update_integration(
        integration.id, expected_version=1, secrets={"client_secret": SecretStr("s3cr3t-value")}
    )
    await repo.add_inbox_item(
        integration.id, make_request(b"auth[application_token]=app-t0ken-value")
    )
    signing_key = await repo.host_secret_key()
    webhook_token = integration.webhook_token.get_secret_value().encode()

    for secret in (b"s3cr3t-value", b"app-t0ken-value", signing_key, webhook_token):
        assert_not_stored(secret, db_url)
    assert_not_stored(HOST_KEY.get_secret_value().encode(), db_url)
    # What is stored in the clear is found (``stored_text`` sees everything that is written).
    assert "ol-visible" not in stored_text(db_url)
    await repo.bind_session(integration.id, "ol-visible", "vs-1")
    assert "ol-visible" in stored_text(db_url)


async def test_webhook_tokens_kept_in_the_clear_are_encrypted_once_when_m011_comes(
    db_url: str,
) -> None:
    """A database from before ``m011``: its next opening encrypts the tokens, keeping them."""
    first = await open_repository(db_url, key=HOST_KEY)
    created = [await first.create_integration("b24_openlines", name) for name in ("A", "B")]
    await first.close()
    plain = {i.id: f"plain-webhook-token-{i.id}-0123456789abcdefghijklmn" for i in created}
    write_directly(
        db_url,
        *(
            f"UPDATE integrations SET webhook_token = '{t}' WHERE id = {i}"
            for i, t in plain.items()
        ),
        "DELETE FROM host_meta WHERE key = 'plain_webhook_tokens'",
        "DELETE FROM _migrations WHERE name = 'm011_encrypt_webhook_tokens'",
    )
    assert plain[created[0].id] in stored_text(db_url)  # the test sees a token in the clear

    opened = await asyncio.gather(*(open_repository(db_url, key=HOST_KEY) for _ in range(3)))
    try:
        for repository in opened:  # encrypted once, whoever opened first: each reads them
            tokens = {
                i.id: i.webhook_token.get_secret_value()
                for i in await repository.list_integrations()
            }
            assert tokens == plain
    finally:
        for repository in opened:
            await repository.close()
    for token in plain.values():
        assert_not_stored(token.encode(), db_url)
    again = await open_repository(db_url, key=HOST_KEY)
    try:
        assert {i.webhook_token.get_secret_value() for i in await again.list_integrations()} == set(
            plain.values()
        )
    finally:
        await again.close()


async def test_reopening_with_another_key_fails_and_the_right_key_still_works(
    db_url: str,
) -> None:
    first = await open_repository(db_url, key=HOST_KEY)
    integration = await first.create_integration("b24_openlines", "Shop")
    await first.update_integration(
        integration.id, expected_version=1, secrets={"client_secret": SecretStr("s")}
    )
    await first.close()

    with pytest.raises(HostKeyError, match="not the key it was encrypted with"):
        await open_repository(db_url, key=OTHER_KEY)
    with pytest.raises(HostKeyError, match="is not set"):
        await open_repository(db_url, key=None)

    again = await open_repository(db_url, key=HOST_KEY)
    try:
        stored = await again.get_integration(integration.id)
        assert stored is not None and stored.secrets["client_secret"].get_secret_value() == "s"
    finally:
        await again.close()


# --- migrations -----------------------------------------------------------------------------


def test_migration_names_are_ordered_and_unique_with_a_body_for_each_engine() -> None:
    assert NAMES == sorted(set(NAMES))
    assert all(name.startswith("m") and name[1:4].isdigit() for name in NAMES)
    assert NAMES[7:11] == [
        "m008_job_queue",
        "m009_periodic_claims",
        "m010_rate_buckets",
        "m011_encrypt_webhook_tokens",
    ]
    for step in MIGRATIONS:
        assert callable(step.sqlite) and step.postgres_sql().strip(), step.name


# The jobs of ``hooks.host.sqlite_jobs`` and its workers' proofs of life (m008, m012).
SQLITE_JOB_TABLES = {"jobs", "job_workers"}


def sqlite_tables(path: str) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_sqlite_migrations_apply_once_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.sqlite3")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert apply_migrations(db) == NAMES
        assert apply_migrations(db) == []
        assert applied_migrations(db) == NAMES
    assert sqlite_tables(path) == HOST_TABLES | SQLITE_JOB_TABLES


def test_sqlite_concurrent_openers_apply_each_migration_once(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.sqlite3")
    applied: list[list[str]] = []
    start = threading.Barrier(4)

    def open_and_migrate() -> None:
        with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as db:
            start.wait()
            applied.append(apply_migrations(db))

    threads = [threading.Thread(target=open_and_migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(applied) == 4
    assert sorted(name for names in applied for name in names) == NAMES
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert applied_migrations(db) == NAMES


async def test_sqlite_open_creates_parent_dirs_uses_wal_and_reopen_applies_nothing(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "data" / "host.sqlite3")
    for _ in range(2):
        repository = await SqliteRepository.open(path, key=HOST_KEY)
        await repository.close()
    assert sqlite_tables(path) == HOST_TABLES | SQLITE_JOB_TABLES
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


async def postgres_tables(url: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {str(row[0]) for row in await cursor.fetchall()}


async def test_postgres_migrations_apply_once_in_order(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        assert await apply_postgres_migrations(conn) == NAMES
        assert await apply_postgres_migrations(conn) == []
        assert await applied_postgres_migrations(conn) == NAMES
    tables = await postgres_tables(postgres_url)
    # m008 is procrastinate's schema on PostgreSQL: its tables hold the jobs (and m012 adds
    # nothing: procrastinate_workers holds the workers), no ``jobs`` here.
    assert HOST_TABLES <= tables and not SQLITE_JOB_TABLES & tables
    assert {"procrastinate_jobs", "procrastinate_periodic_defers"} <= tables


async def test_postgres_migrations_need_a_connection_outside_a_transaction(
    postgres_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await conn.execute("SELECT 1")  # not autocommit: this opened a transaction
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await apply_postgres_migrations(conn)


async def test_postgres_a_failing_migration_leaves_the_database_before_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration(
        MIGRATIONS[1].name,
        MIGRATIONS[1].sqlite,
        "CREATE TABLE half_done (x int); SELECT no_such_function();",
    )
    monkeypatch.setattr("hooks.host.migrations.MIGRATIONS", [MIGRATIONS[0], broken])
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            await apply_postgres_migrations(conn)
        assert await applied_postgres_migrations(conn) == [MIGRATIONS[0].name]
    assert "half_done" not in await postgres_tables(postgres_url)


async def test_postgres_concurrent_openers_apply_each_migration_once(postgres_url: str) -> None:
    connections = [
        await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) for _ in range(4)
    ]
    try:
        applied = await asyncio.gather(*(apply_postgres_migrations(c) for c in connections))
        assert sorted(name for names in applied for name in names) == NAMES
        assert await applied_postgres_migrations(connections[0]) == NAMES
    finally:
        for conn in connections:
            await conn.close()
    # Whole repositories too: every one opens, and each can read what the others encrypted.
    repositories = await asyncio.gather(
        *(open_repository(postgres_url, key=HOST_KEY) for _ in range(3))
    )
    try:
        keys = await asyncio.gather(*(r.host_secret_key() for r in repositories))
        assert len(set(keys)) == 1
    finally:
        for repository in repositories:
            await repository.close()


async def test_postgres_the_repository_works_on_across_a_server_crash(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    repository = await open_repository(postgres_url, key=HOST_KEY)
    try:
        integration = await repository.create_integration("b24_openlines", "Shop")
        item = await repository.add_inbox_item(integration.id, make_request(b"acknowledged"))
        postgres_server.restart(mode="immediate")  # as a crash: no checkpoint, WAL replayed
        # Committed before the crash: still there; the pool replaced its dead connections.
        assert await repository.list_inbox() == [item]
        again = await repository.add_inbox_item(integration.id, make_request(b"after"))
        assert again.id > item.id
    finally:
        await repository.close()


async def test_postgres_a_pool_full_of_stale_connections_serves_at_once_after_a_crash(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    # Ten idle connections, all dead after the crash: found one checkout at a time, with
    # psycopg_pool's growing waits after each (1, 2, 4, 8, 16 s), the next request outwaited the
    # pool's 30 s timeout (PoolTimeout) while the server was back within seconds.
    repository = await PostgresRepository.open(postgres_url, key=HOST_KEY, min_size=10)
    try:
        integration = await repository.create_integration("b24_openlines", "Shop")
        postgres_server.restart(mode="immediate")
        item = await repository.add_inbox_item(integration.id, make_request(b"after the crash"))
        assert await repository.list_inbox() == [item]
    finally:
        await repository.close()


# --- opening by URL -------------------------------------------------------------------------


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
            assert isinstance(repository, SqliteRepository), url
            integration = await repository.create_integration("p", "n")
            assert await repository.get_integration(integration.id) == integration
        finally:
            await repository.close()
        if created is not None:
            assert created.is_file(), url


async def test_open_repository_opens_postgresql_urls(postgres_url: str) -> None:
    from hooks.host.postgres import PostgresRepository

    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        repository = await open_repository(url, key=HOST_KEY)
        try:
            assert isinstance(repository, PostgresRepository)
            await repository.create_integration("p", "n")
            assert len(await repository.list_integrations()) >= 1
        finally:
            await repository.close()


def test_is_postgres() -> None:
    assert is_postgres("postgresql://u:pw@db/host") and is_postgres("postgres://db/host")
    assert is_postgres("PostgreSQL://db/host")
    for url in ("sqlite:///postgres.db", "postgresql.db", ":memory:", "/var/postgres://x"):
        assert not is_postgres(url), url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user:pw@db/host", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg://user:pw@db/host", "without a driver"),
        ("sqlite://host/file.db", "sqlite:///"),
    ],
)
async def test_open_repository_refuses_other_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        await open_repository(url, key=HOST_KEY)
    assert "pw" not in str(raised.value)


def test_a_postgresql_url_names_no_sqlite_file() -> None:
    with pytest.raises(ValueError, match="PostgreSQL") as raised:
        sqlite_path("postgresql://user:pw@db/host")
    assert "pw" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://someone:Pa55-w0rd@127.0.0.1:1/host",  # nothing listens on port 1
        "postgresql://someone:Pa55-w0rd@127.0.0.1:no-port/host",
        "postgresql://someone:Pa55-w0rd@127.0.0.1/host?no_such_option=1",
    ],
    ids=["refused", "bad-port", "bad-option"],
)
async def test_an_unreachable_postgresql_says_so_without_the_password(url: str) -> None:
    with pytest.raises(DatabaseUnavailable, match="PostgreSQL") as raised:
        await open_repository(url, key=HOST_KEY)
    error = raised.value
    assert "Pa55-w0rd" not in str(error) and "Pa55-w0rd" not in repr(error)
    # Nothing chained either: a logged traceback shows the causes too.
    assert error.__cause__ is None and error.__suppress_context__


async def test_inbox_and_appeal_counts_per_integration(repo: Repository) -> None:
    """What ``/metrics`` reports from the database, whichever process did the work."""
    shop = await repo.create_integration("b24_openlines", "Shop")
    other = await repo.create_integration("b24_openlines", "Other")
    assert await repo.inbox_counts() == {} and await repo.appeal_counts() == {}
    for key in ("one", "two"):
        await repo.upsert_appeal(make_appeal(key, integration_id=shop.id))
    await repo.upsert_appeal(make_appeal("two", integration_id=shop.id))  # the same appeal
    first = await repo.add_inbox_item(shop.id, make_request(b"a"))
    await repo.add_inbox_item(shop.id, make_request(b"b"))
    await repo.add_inbox_item(other.id, make_request(b"c"), ignored="not wanted")
    await repo.finish_drain([done(first.id)], [])
    assert await repo.appeal_counts() == {shop.id: 2}
    assert await repo.inbox_counts() == {
        (shop.id, "done"): 1,
        (shop.id, "pending"): 1,
        (other.id, "ignored"): 1,
    }
