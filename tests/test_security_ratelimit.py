"""The endpoints open to every site are limited per client IP, before they do any work."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import replace

import httpx
import pytest

from hooks.host.__main__ import parse_args
from hooks.host.app import create_app
from hooks.host.ratelimit import Rate, RateLimited, RateLimiter
from hooks.host.state import Host, HostConfig
from tests.conftest import PUBLIC_URL

pytestmark = pytest.mark.anyio

VISIT = {"url": "https://shop.example/?utm_source=yandex"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def host(host_config: HostConfig) -> AsyncIterator[tuple[Host, httpx.ASGITransport]]:
    # Almost no refill: the test's pace does not matter.
    tight = Rate(per_second=0.001, burst=3)
    app = create_app(replace(host_config, session_rate=tight, visit_rate=tight))
    async with app.router.lifespan_context(app):
        yield app.state.host, httpx.ASGITransport(app=app)


def client_at(transport: httpx.ASGITransport, ip: str) -> httpx.AsyncClient:
    transport.client = (ip, 40000)
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)


async def test_visits_over_the_limit_get_429_and_store_nothing(
    host: tuple[Host, httpx.ASGITransport],
) -> None:
    repo, transport = host[0].repo, host[1]
    async with client_at(transport, "203.0.113.7") as client:
        ids = [
            (await client.post("/api/visits", json=VISIT)).json()["session_id"] for _ in range(3)
        ]
        refused = await client.post("/api/visits", json=VISIT)
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert all([await repo.get_visitor_session(i) for i in ids])
    with closing(sqlite3.connect(host[0].config.db)) as db:
        assert db.execute("SELECT count(*) FROM visitor_sessions").fetchone()[0] == 3
    async with client_at(transport, "198.51.100.1") as other:  # another visitor is not affected
        assert (await other.post("/api/visits", json=VISIT)).status_code == 201


async def test_session_reports_are_counted_before_any_work(
    host: tuple[Host, httpx.ASGITransport],
) -> None:
    async with client_at(host[1], "203.0.113.7") as client:
        # No such integration: counted all the same, and the 4th is refused before the lookup.
        answers = [await client.post("/api/sessions/999", content=b"{}") for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert "retry-after" in answers[-1].headers


async def test_messenger_codes_share_the_session_reports_limit(
    host: tuple[Host, httpx.ASGITransport],
) -> None:
    """Both come from the site script: a client asking for codes uses up its reports too."""
    async with client_at(host[1], "203.0.113.8") as client:
        reports = [await client.post("/api/sessions/999", content=b"{}") for _ in range(2)]
        codes = [await client.post("/api/messenger-codes/999", content=b"{}") for _ in range(2)]
    assert [a.status_code for a in reports + codes] == [404, 404, 404, 429]
    assert "retry-after" in codes[-1].headers


def test_the_bucket_refills_at_the_sustained_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(per_second=1.0, burst=2), clock=clock)
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert refused.value.retry_after == pytest.approx(1.0)
    clock.now += 0.5
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert refused.value.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    limiter.check("a")  # one token back after a second
    clock.now += 100
    limiter.check("a")
    limiter.check("a")  # never more than the burst is saved up
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_memory_stays_bounded_with_many_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(Rate(per_second=1.0, burst=2), clock=clock, max_clients=10)
    for n in range(100):
        limiter.check(f"10.0.0.{n}")
        clock.now += 0.01
    assert len(limiter) <= 10


def test_a_client_that_keeps_knocking_is_not_the_one_forgotten() -> None:
    limiter = RateLimiter(Rate(per_second=0.001, burst=1), clock=Clock(), max_clients=2)
    limiter.check("flood")
    limiter.check("b")
    for newcomer in ("c", "d", "e"):
        with pytest.raises(RateLimited):
            limiter.check("flood")
        limiter.check(newcomer)  # pushes out the client seen longest ago
    with pytest.raises(RateLimited):
        limiter.check("flood")


def test_no_limit_when_switched_off() -> None:
    limiter = RateLimiter(None)
    for _ in range(1000):
        limiter.check("a")


def test_limits_from_the_command_line() -> None:
    args = parse_args(["--db", "x", "--session-limit", "0.5,10", "--visit-limit", "0"])
    assert args.session_rate == Rate(per_second=0.5, burst=10) and args.visit_rate is None
    assert not hasattr(parse_args(["--db", "x"]), "session_rate")  # HostConfig's default
    with pytest.raises(SystemExit):
        parse_args(["--db", "x", "--session-limit", "fast"])
