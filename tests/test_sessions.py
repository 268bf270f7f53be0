"""``POST /api/sessions/{id}``: the site script ties a visitor session to an Open Lines session."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningHost
from tests.test_host_api import VALID, create

pytestmark = pytest.mark.anyio
SHOP = "https://shop.example.ru"


async def setup(rh: RunningHost, **settings: object) -> tuple[str, str]:
    """An active integration for shop.example.ru and a visitor session; (endpoint, session id)."""
    data = await create(rh)
    saved = await rh.client.put(
        f"/api/integrations/{data['id']}/settings",
        json={**VALID, "site_domains": "shop.example.ru", **settings},
    )
    assert saved.status_code == 200, saved.text
    visit = await rh.client.post(
        "/api/visits", json={"url": f"{SHOP}/?utm_source=yandex&utm_campaign=spring_sale"}
    )
    return f"/api/sessions/{data['id']}", visit.json()["session_id"]


async def post(rh: RunningHost, endpoint: str, body: object, origin: str | None = SHOP):
    headers = {"content-type": "text/plain"} | ({"origin": origin} if origin else {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await rh.client.post(endpoint, content=content, headers=headers)


async def test_the_script_binds_the_visitor_session_once(running_host: RunningHost) -> None:
    endpoint, session = await setup(running_host)
    answer = await post(running_host, endpoint, {"session_id": session, "openlines_session_id": 42})
    assert answer.status_code == 200 and answer.json() == {"bound": True}
    assert answer.headers["access-control-allow-origin"] == SHOP
    again = await post(
        running_host, endpoint, {"session_id": session, "openlines_session_id": 42, "page": "/x"}
    )
    assert again.status_code == 200
    binding = await running_host.host.repo.get_binding(1, "42")
    assert binding is not None and binding.session_id == session
    # Another visitor session claiming the same dialog does not take it over.
    other = (await running_host.client.post("/api/visits", json={"url": f"{SHOP}/"})).json()[
        "session_id"
    ]
    late = await post(running_host, endpoint, {"session_id": other, "openlines_session_id": 42})
    assert late.json() == {"bound": False}
    assert (await running_host.host.repo.get_binding(1, "42")).session_id == session  # type: ignore[union-attr]


async def test_preflight_is_answered_for_the_clients_sites_only(running_host: RunningHost) -> None:
    endpoint, _ = await setup(running_host)
    ok = await running_host.client.options(
        endpoint,
        headers={"origin": "https://www.shop.example.ru", "access-control-request-method": "POST"},
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://www.shop.example.ru"
    assert ok.headers["access-control-allow-methods"] == "POST"
    evil = await running_host.client.options(endpoint, headers={"origin": "https://evil.example"})
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        {"session_id": "short", "openlines_session_id": 1},
        {"session_id": "<script>alert(1)</script>", "openlines_session_id": 1},
        {"session_id": "a" * 65, "openlines_session_id": 1},
        {"session_id": "abcdefgh12", "openlines_session_id": -5},
        {"session_id": "abcdefgh12", "openlines_session_id": "42"},
        {"session_id": "abcdefgh12", "openlines_session_id": 2**40},
        {"session_id": "abcdefgh12"},
    ],
)
async def test_malformed_reports_are_400_and_bind_nothing(
    running_host: RunningHost, body: object
) -> None:
    endpoint, _ = await setup(running_host)
    answer = await post(running_host, endpoint, body)
    assert answer.status_code == 400
    assert await running_host.host.repo.get_binding(1, "1") is None


async def test_other_refusals_bind_nothing(running_host: RunningHost) -> None:
    endpoint, session = await setup(running_host)
    good = {"session_id": session, "openlines_session_id": 7}
    assert (
        await post(running_host, endpoint, good, origin="https://evil.example")
    ).status_code == 403
    unknown = {"session_id": "nosuchsession123", "openlines_session_id": 7}
    assert (await post(running_host, endpoint, unknown)).status_code == 404
    big = await post(running_host, endpoint, b"{" + b" " * 5000 + b"}")
    assert big.status_code == 413
    assert await running_host.host.repo.get_binding(1, "7") is None


async def test_an_inactive_integration_binds_nothing(running_host: RunningHost) -> None:
    endpoint, session = await setup(running_host, active=False)
    answer = await post(running_host, endpoint, {"session_id": session, "openlines_session_id": 9})
    assert answer.status_code == 403 and answer.json()["error"] == "inactive"
    assert await running_host.host.repo.get_binding(1, "9") is None


async def test_without_site_domains_the_accounts_sites_are_allowed(
    running_host: RunningHost,
) -> None:
    endpoint, session = await setup(running_host, site_domains=None)
    shop = await post(
        running_host,
        endpoint,
        {"session_id": session, "openlines_session_id": 3},
        origin="http://127.0.0.1:8100",
    )  # the demo catalog's site 127.0.0.1
    assert shop.status_code == 200
    elsewhere = {"session_id": session, "openlines_session_id": 4}
    answer = await post(running_host, endpoint, elsewhere, origin="https://elsewhere.example")
    assert answer.status_code == 403


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.fixed_dictionaries(
            {},
            optional={
                "session_id": st.one_of(st.none(), st.integers(), st.text(max_size=70)),
                "openlines_session_id": st.one_of(
                    st.none(), st.booleans(), st.text(max_size=5), st.integers(-5, 2**40)
                ),
                "extra": st.text(max_size=5),
            },
        ).map(lambda d: json.dumps(d).encode()),
    )
)
async def test_any_report_is_answered_without_a_crash_or_a_stray_binding(
    running_host: RunningHost, body: bytes
) -> None:
    if not await running_host.host.repo.list_integrations():
        await setup(running_host)
    try:
        claimed = str(int(json.loads(body)["openlines_session_id"]))
    except Exception:
        claimed = "1"
    before = await running_host.host.repo.get_binding(1, claimed)
    answer = await post(running_host, "/api/sessions/1", body)
    assert answer.status_code in (200, 400, 404, 413, 429)
    if answer.status_code != 200:
        assert await running_host.host.repo.get_binding(1, claimed) == before
