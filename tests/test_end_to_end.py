"""A chat in Bitrix24 Open Lines becomes an appeal: host + plugin + sandbox portal over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from hooks.models import Appeal, Attribution
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3") as running:
        yield running


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert set(changes) <= set(query)
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


async def connected(stack: Stack, **settings: object) -> dict:
    integration = await stack.configure(**settings)
    answer = await stack.connect(integration["id"])
    assert answer.status_code == 303 and answer.headers["location"].endswith("?connected=1"), (
        answer.text
    )
    return integration


async def test_connecting_the_portal_stores_tokens_and_shows_the_status(stack: Stack) -> None:
    integration = await connected(stack)
    data = (await stack.browser.get(f"{HOST_URL}/api/integrations/{integration['id']}")).json()
    assert data["status"]["level"] == "ok" and "127.0.0.1:8100" in data["status"]["text"]
    stored = await stack.host.repo.get_integration(integration["id"])
    assert stored is not None
    assert set(stored.secrets) >= {"client_secret", "access_token", "refresh_token"}
    assert stored.connection["member_id"] == stack.sandbox.config.member_id
    assert stored.connection["client_endpoint"] == f"{PORTAL_URL}/rest/"
    page = await stack.browser.get(
        f"{HOST_URL}/integrations/{integration['id']}/settings?connected=1"
    )
    for secret in stored.secrets.values():
        assert secret.get_secret_value() not in page.text


async def test_a_site_chat_becomes_an_appeal(stack: Stack) -> None:
    await connected(stack)
    started = await stack.chat(
        connector="livechat",
        visitor={"name": "Мария", "phone": "8 (916) 555-12-34", "email": "Maria@Example.ru"},
        messages=[
            {"author": "visitor", "text": "Здравствуйте! Сколько стоит доставка?"},
            {"author": "operator", "text": "Добрый день! [b]Бесплатно[/b] от 3000 ₽."},
        ],
    )
    [appeal] = await stack.appeals()
    assert appeal["key"] == f"b24:{stack.sandbox.config.member_id}:session:{started['session_id']}"
    assert appeal["channel"] == "livechat"
    assert appeal["contact"] == {
        "name": "Мария",
        "phones": ["+79165551234"],
        "emails": ["maria@example.ru"],
    }
    assert appeal["created_at"].endswith("+03:00")
    assert appeal["crm"] == {
        "entity_type": "lead",
        "entity_id": started["lead_id"],
        "url": f"{PORTAL_URL}/crm/lead/details/{started['lead_id']}/",
    }
    assert appeal["attribution"]["method"] == "default"
    assert (appeal["attribution"]["source_id"], appeal["attribution"]["site_id"]) == (6, 1)
    assert appeal["employee_id"] == 2
    assert "Клиент: Здравствуйте! Сколько стоит доставка?" in appeal["text"]
    assert "Оператор: Добрый день! Бесплатно от 3000 ₽." in appeal["text"]
    authors = [m["author"] for m in appeal["messages"]]
    assert "visitor" in authors and "operator" in authors
    page = await stack.browser.get(f"{HOST_URL}/raw/appeals")
    assert "Мария" in page.text and "Прямые заходы" in page.text


async def test_a_telegram_chat_goes_to_its_mapped_source(stack: Stack) -> None:
    await connected(stack, messenger_map={"telegrambot": {"source_id": 4}})
    await stack.chat(
        connector="telegrambot",
        visitor={"name": "Ivan"},
        messages=[{"author": "visitor", "text": "hi from telegram"}],
    )
    [appeal] = await stack.appeals()
    assert appeal["channel"] == "telegrambot"
    assert appeal["attribution"]["method"] == "messenger"
    assert (appeal["attribution"]["source_id"], appeal["attribution"]["site_id"]) == (4, 1)


async def test_a_connector_without_mapping_falls_back_to_the_default_campaign(stack: Stack) -> None:
    await connected(
        stack,
        traffic_type="campaign",
        campaign_id=3,
        source_id=None,
        site_id=None,
        messenger_map={"telegrambot": {"campaign_id": 1}},
    )
    await stack.chat(
        connector="whatsappbyedna",
        visitor={"phone": "+79990001122"},
        messages=[{"author": "visitor", "text": "whatsapp here"}],
    )
    [appeal] = await stack.appeals()
    assert appeal["channel"] == "whatsappbyedna"
    assert appeal["attribution"]["method"] == "default"
    assert (
        appeal["attribution"]["campaign_id"] == 3
        and appeal["attribution"]["traffic_type"] == "campaign"
    )
    assert appeal["contact"]["phones"] == ["+79990001122"]


async def test_a_deal_line_gives_the_contact_of_the_deal(stack: Stack) -> None:
    await connected(stack, entity="deal")
    lines = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/portal")).json()["lines"]
    deal_line = next(line["id"] for line in lines if line.get("crm_create") == "deal")
    started = await stack.chat(
        connector="livechat",
        line_id=deal_line,
        visitor={"name": "Олег", "email": "oleg@example.ru"},
        messages=[{"author": "visitor", "text": "хочу заказать"}],
    )
    [appeal] = await stack.appeals()
    assert (
        appeal["crm"]["entity_type"] == "deal" and appeal["crm"]["entity_id"] == started["deal_id"]
    )
    assert appeal["contact"]["name"] == "Олег" and appeal["contact"]["emails"] == [
        "oleg@example.ru"
    ]


async def test_a_replayed_event_never_duplicates_the_appeal(stack: Stack) -> None:
    integration = await connected(stack)
    await stack.chat(
        connector="livechat", visitor={"name": "A"}, messages=[{"author": "visitor", "text": "one"}]
    )
    [delivery] = [
        d
        for d in (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/deliveries")).json()
        if d["event"] == "ONCRMLEADADD"
    ]
    for _ in range(2):
        replay = await stack.browser.post(
            integration["webhook_url"],
            content=delivery["body"].encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert replay.status_code == 200
    await stack.settled()
    assert len(await stack.appeals()) == 1
    assert len(await stack.host.repo.list_inbox()) == 1


async def test_an_expired_token_is_refreshed_once_and_the_new_pair_kept(stack: Stack) -> None:
    integration = await connected(stack)
    before = await stack.host.repo.get_integration(integration["id"])
    assert before is not None
    stack.clock.advance(3601)  # the access token's hour is over
    await stack.chat(
        connector="livechat",
        visitor={"name": "Late"},
        messages=[{"author": "visitor", "text": "x"}],
    )
    assert len(await stack.appeals()) == 1
    after = await stack.host.repo.get_integration(integration["id"])
    assert after is not None
    old = before.secrets["refresh_token"].get_secret_value()
    assert after.secrets["refresh_token"].get_secret_value() != old
    assert (
        after.secrets["access_token"].get_secret_value()
        != before.secrets["access_token"].get_secret_value()
    )
    # The rotated pair works for the next chat; the old refresh token is dead at the portal.
    await stack.chat(
        connector="telegrambot",
        visitor={"name": "Next"},
        messages=[{"author": "visitor", "text": "y"}],
    )
    assert len(await stack.appeals()) == 2


async def test_an_oauth_server_outside_the_allow_list_is_refused_and_never_contacted(
    stack: Stack,
) -> None:
    integration = await stack.configure()
    callback = await stack.authorized_callback(integration["id"])
    forged = with_query(callback, server_domain="oauth.evil.example")
    stack.network.contacted.clear()
    answer = await stack.browser.get(forged)
    assert answer.headers["location"].endswith("/settings?oauth_error=failed")
    assert "oauth.evil.example" not in stack.network.contacted
    assert stack.network.contacted == ["127.0.0.1:8000"]  # only the browser's own request
    page = await stack.followed(answer)
    assert "неизвестный сервер авторизации" in page.text and 'class="badge error"' in page.text
    stored = await stack.host.repo.get_integration(integration["id"])
    assert stored is not None and "access_token" not in stored.secrets


async def test_a_callback_from_another_portal_is_refused(stack: Stack) -> None:
    integration = await stack.configure()
    callback = await stack.authorized_callback(integration["id"])
    answer = await stack.browser.get(with_query(callback, domain="other.bitrix24.ru"))
    page = await stack.followed(answer)
    assert "Доступ разрешили на другом портале" in page.text
    stored = await stack.host.repo.get_integration(integration["id"])
    assert stored is not None and "access_token" not in stored.secrets


async def test_a_missing_scope_is_warned_about(stack: Stack) -> None:
    await stack.browser.put(
        f"{PORTAL_URL}/sandbox/api/app", json={"scopes": ["crm", "imopenlines", "im"]}
    )
    integration = await connected(stack)
    data = (await stack.browser.get(f"{HOST_URL}/api/integrations/{integration['id']}")).json()
    assert data["status"]["level"] == "warning" and "contact_center" in data["status"]["text"]


async def test_a_chat_before_connecting_waits_in_the_inbox(stack: Stack) -> None:
    await stack.configure()
    await stack.chat(
        connector="livechat",
        visitor={"name": "Early"},
        messages=[{"author": "visitor", "text": "x"}],
    )
    [item] = await stack.host.repo.list_inbox()
    assert (
        item.status == "pending"
        and item.attempts == 1
        and "not connected" in (item.last_error or "")
    )
    assert await stack.appeals() == []


async def visit(stack: Stack, url: str) -> str:
    answer = await stack.browser.post(f"{HOST_URL}/api/visits", json={"url": url, "referrer": None})
    session_id: str = answer.json()["session_id"]
    return session_id


LANDING = f"{PORTAL_URL}/site/landing?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"


async def site_chat_attribution(stack: Stack, session_id: str) -> dict[str, Any]:
    """A live chat whose custom data names the visit (as the site script writes it): its
    appeal's attribution, checked to be the visit's."""
    await stack.chat(
        connector="livechat",
        custom_data=[{"MESSAGE": f"Analytics session: {session_id}"}],
        messages=[{"author": "visitor", "text": "Есть в наличии?"}],
    )
    [appeal] = await stack.appeals()
    attribution: dict[str, Any] = appeal["attribution"]
    assert (attribution["method"], attribution["session_id"]) == ("session", session_id)
    return attribution


async def test_the_session_written_into_the_chat_attributes_the_appeal(stack: Stack) -> None:
    await connected(stack)
    session_id = await visit(stack, LANDING)
    attribution = await site_chat_attribution(stack, session_id)
    assert (attribution["campaign_id"], attribution["source_id"], attribution["site_id"]) == (
        1,
        1,
        1,
    )
    assert (
        attribution["utm"]["utm_campaign"] == "spring_sale"
        and attribution["utm"]["utm_medium"] == "cpc"
    )


@pytest.mark.parametrize(
    ("url", "default_site", "site_id"),
    [
        ("https://www.shop.example.ru/?utm_source=yandex", 1, 2),
        ("https://spb.shop.example.ru/catalog", 1, 2),
        ("http://localhost:8100/site/landing", 2, 1),  # the demo site is 127.0.0.1
        ("https://mirror.example.com/", 2, 2),  # no site in the catalog: the default one
    ],
)
async def test_the_appeal_carries_the_site_the_visit_was_on(
    stack: Stack, url: str, default_site: int, site_id: int
) -> None:
    await connected(stack, site_id=default_site)
    session_id = await visit(stack, url)
    attribution = await site_chat_attribution(stack, session_id)
    assert attribution["site_id"] == site_id


async def test_connecting_binds_the_plugins_own_handlers_right_away(stack: Stack) -> None:
    integration = await connected(stack)
    await stack.settled()
    bound = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/event-handlers")).json()
    assert any(h["handler"].startswith(integration["webhook_url"]) for h in bound)


async def test_rest_calls_go_to_the_stored_portal_never_to_the_events_endpoint(
    stack: Stack,
) -> None:
    integration = await connected(stack)
    await stack.settled()
    await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/faults", json={"webhook_drop_rate": 1.0, "seed": 1}
    )
    await stack.chat(
        connector="livechat", visitor={"name": "A"}, messages=[{"author": "visitor", "text": "x"}]
    )
    log = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/deliveries")).json()
    [lost] = [
        d
        for d in log
        if d["event"] == "ONCRMLEADADD" and d["handler"] == integration["webhook_url"]
    ]
    forged = dict(parse_qsl(lost["body"])) | {"auth[client_endpoint]": "https://evil.example/rest/"}
    stack.network.contacted.clear()
    answer = await stack.browser.post(
        integration["webhook_url"],
        content=urlencode(forged).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and answer.json()["accepted"] is True
    await stack.settled()
    assert len(await stack.appeals()) == 1  # processed, with the portal stored at connection
    assert "evil.example" not in " ".join(stack.network.contacted)
    assert f"{PORTAL_URL.removeprefix('http://')}" in stack.network.contacted


async def test_a_chat_with_markup_shows_as_text_everywhere(stack: Stack) -> None:
    await connected(stack)
    await stack.chat(
        connector="livechat",
        visitor={"name": "<script>alert('name')</script>"},
        messages=[{"author": "visitor", "text": "<img src=x onerror=alert(1)> <b>bold</b>"}],
    )
    [appeal] = await stack.appeals()
    assert (
        appeal["contact"]["name"] == "<script>alert('name')</script>"
    )  # kept as the visitor wrote it
    page = (await stack.browser.get(f"{HOST_URL}/raw/appeals")).text
    assert "<script>alert('name')</script>" not in page and "&lt;script&gt;alert(" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


async def test_an_appeal_once_attributed_to_a_visit_keeps_it_when_rewritten(stack: Stack) -> None:
    """An appeal attributed to a visit before visit ids were signed (its proof no longer reads)
    keeps that attribution when its dialog is closed and the transcript rewritten."""
    integration = await connected(stack)
    started = await stack.chat(
        connector="livechat", messages=[{"author": "visitor", "text": "Есть в наличии?"}]
    )
    [appeal] = await stack.appeals()
    assert appeal["attribution"]["method"] == "default"
    earlier = Appeal.model_validate(appeal).model_copy(
        update={
            "attribution": Attribution(
                method="session", session_id="legacy-visit-0001", traffic_type="source", source_id=1
            )
        }
    )
    await stack.host.repo.upsert_appeal(earlier)  # as an earlier version stored it
    answered = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/{started['chat_id']}/messages",
        json={"messages": [{"author": "operator", "text": "Да, есть"}], "close": True},
    )
    assert answered.status_code == 200
    await stack.catch_up(integration["id"])
    [rewritten] = await stack.appeals()
    assert "Да, есть" in rewritten["text"]  # rewritten with the whole dialog
    assert rewritten["attribution"]["method"] == "session"
    assert rewritten["attribution"]["session_id"] == "legacy-visit-0001"
