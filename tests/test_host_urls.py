"""The host owns its URLs: lent as ``host.urls``, the plugin spells none of its routes."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.routing import Match, Route

from b24_openlines_plugin.events import handler_url
from hooks.host.app import create_app
from hooks.host.state import HostConfig
from hooks.host.urls import PublicUrls
from hooks.models import Integration
from tests.conftest import ElsewhereUrls, services_with_urls

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "b24_openlines_plugin"
TOKEN = "wh-token-unguessable-3f9a"
# Spelled out as well as read from the app's route table, so that a renamed route still counts.
HOST_ROUTE_PREFIXES = ("/webhooks", "/oauth2", "/api", "/integrations", "/raw", "/inbox")


def integration(integration_id: int = 7) -> Integration:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Integration(
        id=integration_id,
        plugin="b24_openlines",
        name="Bitrix24",
        webhook_token=SecretStr(TOKEN),
        created_at=now,
        updated_at=now,
    )


@pytest.mark.parametrize("base", ["https://analytics.example", "https://analytics.example/"])
def test_public_urls_are_the_hosts_routes_under_its_base(base: str) -> None:
    urls = PublicUrls(base)
    assert urls.webhook(integration()) == f"https://analytics.example/webhooks/7/{TOKEN}"
    assert urls.oauth_redirect() == "https://analytics.example/oauth2/callback"
    assert urls.session_report(7) == "https://analytics.example/api/sessions/7"
    assert urls.messenger_code(7) == "https://analytics.example/api/messenger-codes/7"


def test_public_urls_keep_a_base_path() -> None:
    urls = PublicUrls("https://example.org/analytics/")
    assert urls.oauth_redirect() == "https://example.org/analytics/oauth2/callback"


def _answered(routes: list[Route], method: str, path: str) -> bool:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def test_every_public_url_is_answered_by_the_reference_host(tmp_path: Path) -> None:
    app = create_app(HostConfig(db=str(tmp_path / "host.sqlite3")))
    routes = [route for route in app.routes if isinstance(route, Route)]
    urls = PublicUrls("https://analytics.example")
    prefix = len("https://analytics.example")
    for method, url in [
        ("POST", urls.webhook(integration())),
        ("GET", urls.oauth_redirect()),
        ("POST", urls.session_report(7)),
        ("OPTIONS", urls.session_report(7)),
        ("POST", urls.messenger_code(7)),
        ("OPTIONS", urls.messenger_code(7)),
    ]:
        assert _answered(routes, method, url[prefix:]), f"no {method} route for {url}"


def _host_route_prefixes(tmp_path: Path) -> set[str]:
    app = create_app(HostConfig(db=str(tmp_path / "host.sqlite3")))
    from_app = {
        "/" + path.split("/")[1]
        for route in app.routes
        if (path := getattr(route, "path", "")).strip("/")
    }
    return from_app | set(HOST_ROUTE_PREFIXES)


def _plugin_sources() -> list[Path]:
    return [
        path
        for path in sorted(PLUGIN.rglob("*"))
        if path.is_file()
        and "sandbox" not in path.relative_to(PLUGIN).parts  # a stand-in portal: its own routes
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".pyo", ".mo")  # compiled: the .po beside says it
    ]


def test_the_plugin_spells_no_host_route(tmp_path: Path) -> None:
    """The plugin asks ``host.urls`` for the host's URLs; it never builds one from a path."""
    prefixes = _host_route_prefixes(tmp_path)
    assert set(HOST_ROUTE_PREFIXES) <= prefixes
    patterns = [re.compile(re.escape(prefix) + r"(?![\w.-])") for prefix in sorted(prefixes)]
    patterns += [re.compile(r"public_url"), re.compile(r"\bhost\.url\b")]
    sources = _plugin_sources()
    assert PLUGIN / "settings" / "view.py" in sources and PLUGIN / "catchup.py" in sources
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(pattern.search(line) for pattern in patterns)
    ]
    assert found == [], "host routes spelled in the plugin:\n" + "\n".join(found)


async def test_the_catch_up_handler_is_the_hosts_webhook_url() -> None:
    async with httpx.AsyncClient() as client:
        host = services_with_urls(ElsewhereUrls(), client)
        assert (
            handler_url(integration(), host)
            == f"https://elsewhere.example/in/b24/7?key={TOKEN}&via=app"
        )
        plain = PublicUrls("https://analytics.example")
        host = dataclasses.replace(host, urls=plain)
        assert handler_url(integration(), host) == f"{plain.webhook(integration())}?via=app"
