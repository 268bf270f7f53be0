"""Every page of the host tells the browser what it may do with it: no script but the host's own
files, no framing by another site, no sniffing, no referrer."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Route

from hooks import hookimpl
from hooks.host.app import create_app
from hooks.host.headers import SECURITY_HEADERS
from hooks.host.plugins import get_plugin_manager
from hooks.host.state import HostConfig
from hooks.models import Integration
from tests.conftest import PUBLIC_URL, RunningHost
from tests.test_host_api import create
from tests.test_security_csrf import failed_item

pytestmark = pytest.mark.anyio

# What a page may not hold under the policy: an inline script, an event handler, a style
# attribute, a javascript: URL.
INLINE = re.compile(r"<script(?![^>]*\bsrc=)|\son[a-z]+\s*=|\sstyle\s*=|javascript:", re.I)


def assert_protected(answer: httpx.Response) -> None:
    where = f"{answer.request.method} {answer.request.url.path} ({answer.status_code})"
    policy = answer.headers.get("content-security-policy", "")
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in policy.split(";")}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", where
    assert directives.get("script-src") == "script-src 'self'", where
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, where
    assert answer.headers.get("x-frame-options") == "DENY", where
    assert answer.headers.get("x-content-type-options") == "nosniff", where
    assert answer.headers.get("referrer-policy") == "no-referrer", where
    assert dict(SECURITY_HEADERS).keys() <= answer.headers.keys(), where


async def test_every_page_route_and_its_errors_carry_the_headers(
    running_host: RunningHost,
) -> None:
    integration = await create(running_host)
    item_id = await failed_item(running_host, integration["id"])
    client = running_host.client
    answers = []
    for route in running_host.app.routes:
        if isinstance(route, Route) and "GET" in (route.methods or set()):
            path = route.path.format(integration_id=integration["id"], item_id=item_id)
            answers.append(await client.get(path))
    assert len(answers) >= 10
    answers += [
        await client.get("/static/host.js"),
        await client.get("/no-such-page"),  # the 404
        await client.get("/integrations/999/settings"),  # the host's error page
        await client.get("/oauth2/callback?state=forged&code=x"),
        await client.post("/integrations", data={"name": "x"}, headers={"x-csrf-token": "no"}),
        await client.post(f"/webhooks/{integration['id']}/wrong-token", content=b"x"),
    ]
    for answer in answers:
        assert_protected(answer)
    pages = [a for a in answers if a.headers.get("content-type", "").startswith("text/html")]
    assert len(pages) >= 6
    for page in pages:
        assert INLINE.search(page.text) is None, (page.request.url.path, INLINE.search(page.text))


class Broken:
    """A plugin with a bug: what a crash (a 500) looks like to the browser."""

    @hookimpl
    def on_settings_render(self, integration: Integration) -> object:
        raise RuntimeError("a bug")


async def test_a_crash_keeps_the_headers_and_closes_the_connection(host_config: HostConfig) -> None:
    app = create_app(host_config, plugins=get_plugin_manager(extra={"broken": Broken()}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            answer = await client.post("/api/integrations", json={"plugin": "broken", "name": "x"})
    assert answer.status_code == 500 and "a bug" not in answer.text
    assert_protected(answer)
    assert answer.headers["connection"] == "close"
