"""Issue 12, item 2: no request to a public route gets a 5xx or breaks the connection, and a
refused one writes nothing (the bounded run; ``make fuzz`` is the long one)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.fuzz.calls import genuine_event, served_routes
from tests.fuzz.target import Target, fuzz, running_target

EXAMPLES_PER_ROUTE = 60


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running_target(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def test_every_public_route_is_fuzzed(target: Target) -> None:
    assert served_routes() - target.routes.covered == set()


def test_no_request_gets_a_5xx_or_writes_when_refused(target: Target) -> None:
    for route in target.routes.strategies:
        fuzz(target, route, examples=EXAMPLES_PER_ROUTE)
    assert target.figures.requests >= EXAMPLES_PER_ROUTE * len(target.routes.strategies) // 2


def test_refused_webhooks_never_reset_the_connection(target: Target) -> None:
    """The 28 resets in 2,000 random webhooks: each followed a 500, after which the server
    closed the keep-alive connection that the client's next request was already using."""
    setup = target.setup
    path = f"/webhooks/{setup.connected}/{setup.url_tokens[setup.connected]}"
    odd = urlencode(genuine_event(setup, setup.app_token) | {"auth[member_id]": "é"}).encode()
    statuses = []
    with httpx.Client(base_url=target.servers.host_url, timeout=30.0) as client:
        for body in [odd, b"x" * 70_000] * 10:
            statuses.append(client.post(path, content=body).status_code)
    assert statuses == [400, 413] * 10
