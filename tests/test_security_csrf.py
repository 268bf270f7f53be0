"""The host's HTML forms refuse a POST that does not carry the token of the browser's session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from hooks.host import csrf
from hooks.host.repository import InboxOutcome
from hooks.models import HookRequest
from tests.conftest import PUBLIC_URL, RunningHost, page_csrf_token
from tests.examples import form_body
from tests.test_host_api import create
from tests.test_host_pages import FORM

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stranger(running_host: RunningHost) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that never opened the host's pages: what another site's form posts from."""
    transport = httpx.ASGITransport(app=running_host.app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


async def failed_item(rh: RunningHost, integration_id: int) -> int:
    request = HookRequest(
        method="POST", path="/webhooks/1/", body=b"x", received_at=datetime.now(UTC)
    )
    item = await rh.host.repo.add_inbox_item(integration_id, request)
    await rh.host.repo.finish_drain(
        [InboxOutcome(item_id=item.id, status="failed", error="boom")], []
    )
    return item.id


async def test_each_form_posts_with_the_token_its_page_carries(
    running_host: RunningHost, stranger: httpx.AsyncClient
) -> None:
    """The way a browser does it: the page sets the cookie and the form sends the field."""
    dashboard = await stranger.get("/")
    cookie = dashboard.headers["set-cookie"]
    # The host is public over HTTPS: a Secure cookie that no sibling subdomain may set.
    assert cookie.startswith(f"{csrf.SECURE_SESSION_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Secure" in cookie and "Path=/;" in cookie
    token = page_csrf_token(dashboard.text)
    created = await stranger.post("/integrations", data={"name": "Shop", "csrf_token": token})
    assert created.status_code == 303, created.text
    settings = await stranger.get(created.headers["location"])
    assert "set-cookie" not in settings.headers  # one token per browser, kept
    saved = await stranger.post(
        created.headers["location"], data={**FORM, "csrf_token": page_csrf_token(settings.text)}
    )
    assert saved.status_code == 303, saved.text  # the token is no unknown settings field
    item_id = await failed_item(running_host, 1)
    inbox = await stranger.get("/inbox")
    retried = await stranger.post(
        f"/inbox/{item_id}/retry", data={"csrf_token": page_csrf_token(inbox.text)}
    )
    assert retried.status_code == 303


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param({}, id="no token"),
        pytest.param({"field": "wrong"}, id="wrong field"),
        pytest.param({"cookie": "A" * 43, "field": "<own>"}, id="an invented session"),
        pytest.param({"cookie": "forged.0000", "field": "<own>"}, id="a malformed session"),
        pytest.param({"field": "<own>", "cookie": None}, id="field without cookie"),
        pytest.param({"field": "<other browser>"}, id="another browser's token"),
    ],
)
async def test_a_form_post_without_the_browsers_token_is_refused_and_changes_nothing(
    running_host: RunningHost, stranger: httpx.AsyncClient, sent: dict[str, str | None]
) -> None:
    integration = await create(running_host)
    item_id = await failed_item(running_host, integration["id"])
    own = page_csrf_token((await stranger.get("/")).text)
    session = stranger.cookies[csrf.SECURE_SESSION_COOKIE]
    other = running_host.client.headers[csrf.HEADER]
    field = {"<own>": own, "<other browser>": other}.get(sent.get("field") or "", sent.get("field"))
    stranger.cookies.clear()
    cookie = sent.get("cookie", session)
    if cookie is not None:
        stranger.cookies.set(csrf.SECURE_SESSION_COOKIE, cookie)
    extra = {} if field is None else {"csrf_token": field}
    repo = running_host.host.repo
    before = await repo.get_integration(integration["id"])
    forms: list[tuple[str, dict[str, Any]]] = [
        ("/integrations", {"name": "Evil"}),
        (f"/integrations/{integration['id']}/settings", {**FORM, "client_secret": "attacker"}),
        (f"/inbox/{item_id}/retry", {}),
    ]
    for path, data in forms:
        answer = await stranger.post(path, data={**data, **extra})
        assert answer.status_code == 403, (path, answer.text)
        assert "с другого сайта" in answer.text  # the error page speaks the host's language
    assert [i.name for i in await repo.list_integrations()] == ["Main portal"]
    assert await repo.get_integration(integration["id"]) == before
    assert [item.status for item in await repo.list_inbox()] == ["failed"]


async def test_a_token_from_another_browser_session_is_refused_and_its_own_works(
    running_host: RunningHost, stranger: httpx.AsyncClient
) -> None:
    """All another browser's page shows is its token; its session cookie no page shows."""
    victim = page_csrf_token((await running_host.client.get("/")).text)
    first = await stranger.get("/")
    own = page_csrf_token(first.text)
    cookies = [header.partition("=")[0] for header in first.headers.get_list("set-cookie")]
    assert cookies and not any(value in first.text for value in stranger.cookies.values())
    refused = [
        await stranger.post("/integrations", data={"name": "Evil", "csrf_token": victim}),
        await stranger.post("/integrations", data={"name": "Evil"}, headers={csrf.HEADER: victim}),
    ]
    stranger_cookies = dict(stranger.cookies)
    stranger.cookies.clear()
    for name in cookies:  # every cookie the host sets, given what the other page shows
        stranger.cookies.set(name, victim)
    refused.append(
        await stranger.post("/integrations", data={"name": "Evil", "csrf_token": victim})
    )
    assert [answer.status_code for answer in refused] == [403, 403, 403]
    stranger.cookies.clear()
    stranger.cookies.update(stranger_cookies)
    created = await stranger.post("/integrations", data={"name": "Own", "csrf_token": own})
    assert created.status_code == 303, created.text
    names = [i.name for i in await running_host.host.repo.list_integrations()]
    assert names == ["Own"]


async def test_every_unsafe_route_outside_the_api_is_protected(
    running_host: RunningHost, stranger: httpx.AsyncClient
) -> None:
    """A form added later is protected too: the check does not rely on its handler."""
    checked = []
    for route in running_host.app.routes:
        if not isinstance(route, Route) or route.path.startswith(csrf.EXEMPT):
            continue
        for method in (route.methods or set()) - csrf.SAFE_METHODS:
            path = route.path.replace("{integration_id}", "1").replace("{item_id}", "1")
            answer = await stranger.request(method, path, data={"x": "1"})
            assert answer.status_code == 403, (method, route.path)
            checked.append(route.path)
    assert set(checked) >= {"/integrations", "/integrations/{integration_id}/settings"}


async def test_webhooks_and_the_site_script_need_no_token(
    running_host: RunningHost, stranger: httpx.AsyncClient
) -> None:
    integration = await create(running_host)
    webhook = await stranger.post(
        integration["webhook_url"][len(PUBLIC_URL) :],
        content=form_body("ONCRMLEADADD.app.form.txt"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert webhook.json()["status"] == "ignored"  # the plugin got it: the integration is off
    assert "set-cookie" not in webhook.headers
    report = await stranger.post(
        f"/api/sessions/{integration['id']}",
        content=b"{}",
        headers={"origin": "http://127.0.0.1:8100"},  # the demo catalog's site
    )
    assert report.json()["error"] == "inactive"  # the plugin's answer, not the CSRF check's
    visit = await stranger.post("/api/visits", json={"url": "https://shop.example/"})
    assert visit.status_code == 201
    api = await stranger.post("/api/integrations", json={"plugin": "b24_openlines", "name": "n"})
    assert api.status_code == 201
