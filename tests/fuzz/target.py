"""The host under fuzzing: real processes, a known setup, and a check of each request."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as with_seed

from hooks.host import csrf
from tests.conftest import page_csrf_token
from tests.fuzz.calls import Call, RouteTable, Setup, routes
from tests.servers import Servers, running_servers

# No worker (nothing changes the database behind a request's back), no scheduler, no rate
# limits (the fuzzer is one client IP sending thousands of requests).
HOST_ARGS = (
    "--worker",
    "none",
    "--schedule-seconds",
    "0",
    "--session-limit",
    "0",
    "--visit-limit",
    "0",
)
APP_TOKEN = "fuzz0application0token0000000001"
NON_ASCII_TOKEN = "токен-приложения"  # the settings take it; an event's token never matches it
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Figures:
    """What a run sent and got: answers per route and status, and the checks made."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    unchanged_checks: int = 0

    @property
    def requests(self) -> int:
        return sum(self.answers.values())


class Database:
    """Every table of the host's SQLite file, read apart from the host (WAL readers see each
    commit)."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def snapshot(self) -> dict[str, list[str]]:
        tables = [
            name
            for (name,) in self._connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            name: sorted(repr(row) for row in self._connection.execute(f'SELECT * FROM "{name}"'))
            for name in tables
        }

    def close(self) -> None:
        self._connection.close()


class Target:
    """Sends calls over one keep-alive connection and checks each answer."""

    def __init__(self, servers: Servers, setup: Setup, database: Database) -> None:
        self.servers = servers
        self.setup = setup
        self.database = database
        self.figures = Figures()
        self.routes: RouteTable = routes(setup)
        self._client = httpx.Client(base_url=servers.host_url, timeout=30.0)
        # The session cookie and its CSRF token, as a browser gets them from a page.
        self._csrf = page_csrf_token(self._client.get("/").text)
        self._state = database.snapshot()

    def check(self, call: Call) -> httpx.Response:
        """Send ``call``; fail on a 5xx, a broken connection, or a write it should not make."""
        # Header values as bytes: a client may send any Latin-1 text, which httpx's str
        # headers would refuse.
        headers = {name.encode(): value.encode("latin-1") for name, value in call.headers.items()}
        if call.csrf:
            headers[csrf.HEADER.encode()] = self._csrf.encode()
        response = self._client.request(
            call.method,
            call.path,
            params=tuple(call.query),
            headers=headers,
            content=call.body,
        )
        self.figures.answers[(call.route, response.status_code)] += 1
        assert response.status_code < 500 or _not_ready(call, response), (
            f"{call.describe()} → {response.status_code}: {response.text[:500]}"
        )
        state = self.database.snapshot()
        if response.status_code >= 400 or call.method in SAFE_METHODS:
            self.figures.unchanged_checks += 1
            changed = sorted(name for name in state if state[name] != self._state.get(name))
            assert not changed, (
                f"{call.describe()} → {response.status_code} changed the tables {changed}"
            )
        self._state = state
        return response

    def close(self) -> None:
        self._client.close()
        self.database.close()


def _not_ready(call: Call, response: httpx.Response) -> bool:
    """``/readyz`` answers 503 by design when no worker runs, as here (``--worker none``)."""
    return call.path == "/readyz" and response.status_code == 503 and call.method in SAFE_METHODS


def _prepare(servers: Servers) -> Setup:
    """Three integrations set up over HTTP as a client would; the first connected by OAuth."""
    client = servers.client
    connected = servers.integration(application_token=APP_TOKEN)["id"]
    servers.connect(connected)
    fresh, odd_token = (
        client.post(
            f"{servers.host_url}/api/integrations", json={"plugin": "b24_openlines", "name": name}
        ).json()["id"]
        for name in ("Fresh", "Odd token")
    )
    saved = client.put(
        f"{servers.host_url}/api/integrations/{odd_token}/settings",
        json={"application_token": NON_ASCII_TOKEN},
    )
    assert saved.status_code == 422, saved.text  # the settings refuse it: left unset
    url_tokens = {
        integration["id"]: integration["webhook_url"].rsplit("/", 1)[1]
        for integration in client.get(f"{servers.host_url}/api/integrations").json()["integrations"]
    }
    portal = client.get(f"{servers.portal_url}/sandbox/api/portal").json()
    visit = client.post(f"{servers.host_url}/api/visits", json={"url": "https://shop.example.ru/"})
    assert visit.status_code == 201, visit.text
    return Setup(
        connected=connected,
        fresh=fresh,
        odd_token=odd_token,
        url_tokens=url_tokens,
        app_token=APP_TOKEN,
        visit_id=visit.json()["session_id"],
        member_id=portal["member_id"],
        domain=portal["domain"],
        portal_url=servers.portal_url,
    )


def fuzz(target: Target, route: str, *, examples: int, seed: int | None = None) -> None:
    """``examples`` requests to ``route``, shrunk to the simplest one that fails, if any."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(target.routes.strategies[route])
    def requests(call: Call) -> None:
        target.check(call)

    (requests if seed is None else with_seed(seed)(requests))()


@contextlib.contextmanager
def running_target(directory: Path) -> Iterator[Target]:
    """The host and the sandbox on ``directory/host.sqlite3``, set up, ready to be fuzzed."""
    db = directory / "host.sqlite3"
    with running_servers(db, host_args=HOST_ARGS) as servers:
        target = Target(servers, _prepare(servers), Database(db))
        try:
            yield target
        finally:
            target.close()
