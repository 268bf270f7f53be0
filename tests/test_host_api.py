"""The reference host's JSON surface over HTTP (DESIGN.md §4)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from hooks.host.app import create_app
from hooks.host.catalog import CatalogFileError, load_catalog_file
from hooks.host.oauth_state import sign_state
from hooks.host.state import HostConfig
from hooks.models import Appeal, Attribution, Contact, CrmRef, PortalRef
from tests.conftest import PUBLIC_URL, RunningHost
from tests.examples import form_body

pytestmark = pytest.mark.anyio

CLIENT_SECRET = "s3cr3t-CLIENT-value-0042"
APP_TOKEN = "apptoken-51856fefc120afa4"

VALID = {
    "client_id": "local.64ccbcf7db22b1.98148679",
    "client_secret": CLIENT_SECRET,
    "portal": "b24.example.ru",
    "active": True,
    "entity": "lead",
    "employee_id": 1,
    "traffic_type": "source",
    "source_id": 5,
    "site_id": 1,
    "messenger_map": {"telegrambot": {"source_id": 4, "site_id": 1}},
    "application_token": APP_TOKEN,
}


async def create(rh: RunningHost, name: str = "Main portal") -> dict:
    answer = await rh.client.post(
        "/api/integrations", json={"plugin": "b24_openlines", "name": name}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_created_integration_has_webhook_and_redirect_urls(running_host: RunningHost) -> None:
    data = await create(running_host)
    assert data["plugin"] == "b24_openlines" and data["name"] == "Main portal"
    prefix = f"{PUBLIC_URL}/webhooks/{data['id']}/"
    assert data["webhook_url"].startswith(prefix)
    assert len(data["webhook_url"][len(prefix) :]) >= 32  # an unguessable token
    assert data["redirect_url"] == f"{PUBLIC_URL}/oauth2/callback"
    assert data["authorize_url"] is None  # no portal and client id yet
    assert data["status"]["level"] == "off"
    again = await running_host.client.get(f"/api/integrations/{data['id']}")
    assert again.json() == data
    other = await create(running_host, "Second")
    assert other["webhook_url"] != data["webhook_url"]


@pytest.mark.parametrize(
    "body",
    [
        {"plugin": "nope", "name": "x"},
        {"plugin": "b24_openlines"},
        {"plugin": "b24_openlines", "name": "x", "extra": 1},
        "not an object",
    ],
)
async def test_create_integration_rejects_bad_bodies(
    running_host: RunningHost, body: object
) -> None:
    answer = await running_host.client.post("/api/integrations", json=body)
    assert answer.status_code == 400
    assert (await running_host.client.get("/api/integrations")).json() == {"integrations": []}


async def test_create_integration_rejects_broken_json(running_host: RunningHost) -> None:
    answer = await running_host.client.post(
        "/api/integrations", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_account_changes_must_be_declared_json(
    running_host: RunningHost, content_type: str | None
) -> None:
    """What a page of another site can send without the browser asking first (a form, plain
    text) never creates, changes or renames an integration."""
    data = await create(running_host)
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"plugin": "b24_openlines", "name": "x"}).encode()
    created = await running_host.client.post("/api/integrations", content=body, headers=headers)
    changed = await running_host.client.patch(
        f"/api/integrations/{data['id']}/settings", content=b'{"active": true}', headers=headers
    )
    renamed = await running_host.client.patch(
        f"/api/integrations/{data['id']}", content=b'{"name": "x"}', headers=headers
    )
    assert {created.status_code, changed.status_code, renamed.status_code} == {415}
    listed = (await running_host.client.get("/api/integrations")).json()["integrations"]
    assert [(i["name"], i["settings"]["active"]) for i in listed] == [("Main portal", False)]


@pytest.mark.parametrize("path", ["/api/integrations/999", "/api/integrations/abc"])
async def test_unknown_integration_is_404(running_host: RunningHost, path: str) -> None:
    assert (await running_host.client.get(path)).status_code == 404


async def test_settings_saved_and_read_back_with_secrets_masked(running_host: RunningHost) -> None:
    data = await create(running_host)
    answer = await running_host.client.put(f"/api/integrations/{data['id']}/settings", json=VALID)
    assert answer.status_code == 200, answer.text
    saved = answer.json()
    assert saved["settings"]["client_secret"] == "********"
    assert saved["settings"]["application_token"] == "********"
    assert saved["settings"]["portal"] == "b24.example.ru"
    assert saved["portal_url"] == "https://b24.example.ru"
    assert saved["settings"]["messenger_map"] == {"telegrambot": {"source_id": 4, "site_id": 1}}
    assert saved["authorize_url"].startswith(
        "https://b24.example.ru/oauth/authorize/?client_id=local.64ccbcf7db22b1.98148679"
    )
    assert CLIENT_SECRET not in answer.text and APP_TOKEN not in answer.text
    assert (await running_host.client.get(f"/api/integrations/{data['id']}")).json() == saved
    stored = await running_host.host.repo.get_integration(data["id"])
    assert stored is not None
    assert stored.secrets["client_secret"].get_secret_value() == CLIENT_SECRET


async def test_empty_or_masked_secret_keeps_the_stored_one(running_host: RunningHost) -> None:
    data = await create(running_host)
    url = f"/api/integrations/{data['id']}/settings"
    assert (await running_host.client.put(url, json=VALID)).status_code == 200
    for kept in ("", None, "********"):
        body = {**VALID, "client_secret": kept, "application_token": kept, "employee_id": 2}
        answer = await running_host.client.put(url, json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["settings"]["employee_id"] == 2
    stored = await running_host.host.repo.get_integration(data["id"])
    assert stored is not None
    assert stored.secrets["client_secret"].get_secret_value() == CLIENT_SECRET
    assert stored.secrets["application_token"].get_secret_value() == APP_TOKEN


async def test_invalid_settings_are_422_with_field_errors_and_save_nothing(
    running_host: RunningHost,
) -> None:
    data = await create(running_host)
    url = f"/api/integrations/{data['id']}/settings"
    assert (await running_host.client.put(url, json=VALID)).status_code == 200
    before = (await running_host.client.get(f"/api/integrations/{data['id']}")).json()
    bad = {
        **VALID,
        "portal": "https://YOURDOMAIN.bitrix24.ru",
        "traffic_type": "campaign",
        "campaign_id": None,
        "client_secret": "a-new-secret-that-must-not-be-saved",
    }
    answer = await running_host.client.put(url, json=bad)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert "portal" in errors and "YOURDOMAIN" in errors["portal"]
    assert "campaign_id" in errors
    assert (await running_host.client.get(f"/api/integrations/{data['id']}")).json() == before
    stored = await running_host.host.repo.get_integration(data["id"])
    assert (
        stored is not None and stored.secrets["client_secret"].get_secret_value() == CLIENT_SECRET
    )


async def test_settings_body_must_be_a_json_object(running_host: RunningHost) -> None:
    data = await create(running_host)
    answer = await running_host.client.put(f"/api/integrations/{data['id']}/settings", json=[1, 2])
    assert answer.status_code == 400


async def test_catalog_answers_the_accounts_lists(running_host: RunningHost) -> None:
    catalog = (await running_host.client.get("/api/catalog")).json()
    assert set(catalog) == {"employees", "sources", "sites", "campaigns"}
    assert all(catalog[key] for key in catalog)  # the demo account is seeded on first start
    assert {"id", "name"} <= set(catalog["employees"][0])
    assert {"id", "name", "domain"} <= set(catalog["sites"][0])


def appeal(
    integration_id: int, number: int, created_at: datetime, text: str = "Здравствуйте"
) -> Appeal:
    return Appeal(
        key=f"b24:member:session:{number}",
        integration_id=integration_id,
        created_at=created_at,
        channel="livechat",
        contact=Contact(name=f"Visitor {number}", phones=["+79990000000"]),
        attribution=Attribution(method="default", traffic_type="source", source_id=5, site_id=1),
        employee_id=1,
        text=text,
        crm=CrmRef(entity_type="lead", entity_id=number),
        portal=PortalRef(domain="b24.example.ru", member_id="member"),
    )


async def test_appeals_newest_first_filtered_by_integration(running_host: RunningHost) -> None:
    first, second = (await create(running_host, "A"))["id"], (await create(running_host, "B"))["id"]
    sink = (await running_host.host.services()).appeals
    msk = timezone(timedelta(hours=3))
    await sink.upsert(appeal(first, 1, datetime(2026, 11, 1, 12, 0, tzinfo=msk)))  # 09:00 UTC
    await sink.upsert(appeal(first, 2, datetime(2026, 11, 1, 10, 0, tzinfo=UTC)))
    await sink.upsert(appeal(second, 3, datetime(2026, 11, 1, 11, 0, tzinfo=UTC)))
    await sink.upsert(
        appeal(first, 1, datetime(2026, 11, 1, 12, 0, tzinfo=msk), text="longer")
    )  # replay
    everything = (await running_host.client.get("/api/appeals")).json()["appeals"]
    assert [a["crm"]["entity_id"] for a in everything] == [3, 2, 1]
    only_first = (await running_host.client.get(f"/api/appeals?integration_id={first}")).json()[
        "appeals"
    ]
    assert [a["crm"]["entity_id"] for a in only_first] == [2, 1]
    assert (
        only_first[1]["text"] == "longer"
        and only_first[1]["created_at"] == "2026-11-01T12:00:00+03:00"
    )
    assert set(only_first[0]) == {
        "key",
        "integration_id",
        "created_at",
        "channel",
        "channel_title",
        "contact",
        "attribution",
        "employee_id",
        "messages",
        "text",
        "crm",
        "portal",
    }
    assert (await running_host.client.get("/api/appeals?integration_id=x")).status_code == 400


async def test_a_visit_with_utm_tags_becomes_a_visitor_session(running_host: RunningHost) -> None:
    url = "http://127.0.0.1:8100/landing?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"
    answer = await running_host.client.post(
        "/api/visits",
        content=json.dumps({"url": url, "referrer": "https://ya.ru/"}),
        headers={"content-type": "text/plain", "origin": "http://127.0.0.1:8100"},
    )
    assert answer.status_code == 201
    assert answer.headers["access-control-allow-origin"] == "*"
    session = await running_host.host.repo.get_visitor_session(answer.json()["session_id"])
    assert session is not None
    assert session.utm.utm_campaign == "spring_sale" and session.utm.utm_medium == "cpc"
    catalog = await running_host.host.repo.get_catalog()
    assert session.campaign_id == next(
        c.id for c in catalog.campaigns if c.utm_campaign == "spring_sale"
    )
    assert session.source_id == next(s.id for s in catalog.sources if s.utm_source == "yandex")
    assert session.site_id == next(s.id for s in catalog.sites if s.domain == "127.0.0.1")


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"url": "javascript:alert(1)"}', b"x" * 9000])
async def test_bad_visits_are_refused(running_host: RunningHost, body: bytes) -> None:
    answer = await running_host.client.post("/api/visits", content=body)
    assert answer.status_code in (400, 413)


async def test_tracker_script_is_served(running_host: RunningHost) -> None:
    answer = await running_host.client.get("/tracker.js")
    assert answer.status_code == 200
    assert "javascript" in answer.headers["content-type"]
    assert "getSessionId" in answer.text


async def test_webhook_with_a_wrong_token_is_404_and_stores_nothing(
    running_host: RunningHost,
) -> None:
    data = await create(running_host)
    answer = await running_host.client.post(
        f"/webhooks/{data['id']}/wrong-token", content=b"event=ONCRMLEADADD"
    )
    assert answer.status_code == 404
    assert await running_host.host.repo.list_inbox() == []
    answer = await running_host.client.post("/webhooks/999/whatever", content=b"event=ONCRMLEADADD")
    assert answer.status_code == 404


async def test_webhook_is_checked_persisted_then_answered(running_host: RunningHost) -> None:
    data = await create(running_host)
    path = data["webhook_url"][len(PUBLIC_URL) :]
    body = form_body("ONCRMLEADADD.app.form.txt")
    form = {"content-type": "application/x-www-form-urlencoded"}
    answer = await running_host.client.post(path, content=body, headers=form)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    await running_host.host.queue.idle()
    [item] = await running_host.host.repo.list_inbox()
    assert item.request.body == body
    assert data["webhook_url"].rsplit("/", 1)[1] not in item.request.path  # token not stored
    # Recorded with the reason: the integration is not switched on yet.
    assert item.status == "ignored" and item.outcome == {
        "result": "ignored",
        "reason": "the integration is not active",
        "reason_text": {
            "ru": "интеграция выключена: отметьте «Интеграция активна» в настройках",
            "en": "the integration is off: tick “Integration active” in the settings",
        },
    }


@pytest.mark.parametrize(
    "body",
    [b"", b"event=ONCRMLEADADD", b"not a form at all", b'{"event": "ONCRMLEADADD"}', b"\xff\xfe"],
)
async def test_malformed_webhook_is_400_and_stores_nothing(
    running_host: RunningHost, body: bytes
) -> None:
    data = await create(running_host)
    path = data["webhook_url"][len(PUBLIC_URL) :]
    answer = await running_host.client.post(path, content=body)
    assert answer.status_code == 400 and answer.json()["error"] == "malformed_event"
    assert await running_host.host.repo.list_inbox() == []


async def test_too_large_webhook_is_413_and_stores_nothing(running_host: RunningHost) -> None:
    data = await create(running_host)
    path = data["webhook_url"][len(PUBLIC_URL) :]
    big = await running_host.client.post(
        path, content=b"x" * (running_host.config.webhook_max_bytes + 1)
    )
    assert big.status_code == 413
    assert await running_host.host.repo.list_inbox() == []


async def test_oauth_callback_needs_a_valid_state(running_host: RunningHost) -> None:
    data = await create(running_host)
    assert (await running_host.client.get("/oauth2/callback?code=x")).status_code == 400
    forged = sign_state(b"not the host key" * 2, data["id"])
    answer = await running_host.client.get(f"/oauth2/callback?code=x&state={forged}")
    assert answer.status_code == 400
    key = await running_host.host.repo.host_secret_key()
    old = sign_state(key, data["id"], now=datetime.now(UTC).timestamp() - 3600)
    answer = await running_host.client.get(f"/oauth2/callback?code=x&state={old}")
    assert answer.headers["location"].endswith("/settings?oauth_error=expired_state")
    good = sign_state(key, data["id"])
    answer = await running_host.client.get(f"/oauth2/callback?code=x&state={good}")
    # The plugin checks the query (no domain) and refuses: back to the settings.
    assert answer.headers["location"].endswith("/settings?oauth_error=failed")


async def test_the_accounts_catalog_loads_from_a_json_file(
    host_config: HostConfig, tmp_path: Path
) -> None:
    own = {
        "employees": [{"id": 7, "name": "Вера"}],
        "sources": [{"id": 9, "name": "Авито", "utm_source": "avito"}],
        "sites": [{"id": 3, "name": "Сайт", "domain": "vera.example.ru"}],
        "campaigns": [],
    }
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(own), encoding="utf-8")
    app = create_app(replace(host_config, catalog_path=path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            assert (await client.get("/api/catalog")).json() == own
    path.write_text('{"employees": [{"id": "x"}]}', encoding="utf-8")
    with pytest.raises(CatalogFileError, match="does not match"):
        load_catalog_file(path)
