"""The host's pages as a person sees them: server-rendered, escaped, never showing a secret."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from hooks.host.app import create_app
from hooks.host.repository import InboxOutcome
from hooks.host.state import HostConfig
from hooks.models import HookRequest
from tests.conftest import PUBLIC_URL, RunningHost
from tests.examples import form_body
from tests.test_host_api import APP_TOKEN, CLIENT_SECRET, VALID, appeal, create

pytestmark = pytest.mark.anyio

FORM = {
    "client_id": VALID["client_id"],
    "client_secret": CLIENT_SECRET,
    "portal": "https://b24.example.ru/",
    "active": "on",
    "entity": "deal",
    "employee_id": "2",
    "traffic_type": "source",
    "source_id": "5",
    "site_id": "1",
    "messenger_map[telegrambot][source_id]": "4",
    "messenger_map[telegrambot][site_id]": "1",
    "application_token": APP_TOKEN,
}


def hidden_attr(html: str, marker: str) -> bool:
    """Whether the element carrying ``marker`` (a field's name) sits in a hidden container."""
    index = html.index(marker)
    opening = html.rfind('<div class="row"', 0, index)
    return " hidden" in html[opening:index].split(">")[0]


async def test_dashboard_creates_an_integration_and_links_its_pages(
    running_host: RunningHost,
) -> None:
    page = await running_host.client.get("/")
    assert page.status_code == 200 and "Интеграций пока нет." in page.text
    answer = await running_host.client.post(
        "/integrations", data={"plugin": "b24_openlines", "name": "Портал"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/integrations/1/settings"
    page = await running_host.client.get("/")
    assert "Портал" in page.text and 'href="/integrations/1/settings"' in page.text


async def test_settings_page_shows_the_eight_steps_in_russian(running_host: RunningHost) -> None:
    data = await create(running_host)
    page = await running_host.client.get(f"/integrations/{data['id']}/settings")
    assert page.status_code == 200
    for label in (
        "Код приложения (client_id)",
        "Ключ приложения (client_secret)",
        "Интеграция активна",
        "Сотрудник",
        "Тип трафика",
        "Соответствие мессенджеров и источников",
        "Скрипт для сайта",
    ):
        assert label in page.text, label
    assert data["webhook_url"] in page.text and data["redirect_url"] in page.text
    assert "Telegram" in page.text and 'name="messenger_map[telegrambot][source_id]"' in page.text


async def test_settings_form_saved_and_opened_again_with_secrets_masked(
    running_host: RunningHost,
) -> None:
    data = await create(running_host)
    url = f"/integrations/{data['id']}/settings"
    answer = await running_host.client.post(url, data=FORM)
    assert answer.status_code == 303, answer.text
    page = await running_host.client.get(answer.headers["location"])
    assert "Настройки сохранены." in page.text
    assert CLIENT_SECRET not in page.text and APP_TOKEN not in page.text
    assert re.search(r'name="client_secret" value=""', page.text)
    assert 'value="https://b24.example.ru/"' in page.text  # the portal as entered
    assert "https://b24.example.ru/oauth/authorize/" in page.text  # the authorization URL
    assert re.search(r'<option value="2"\s+selected', page.text)  # the employee
    assert re.search(r'value="deal" checked', page.text)
    settings = (await running_host.client.get(f"/api/integrations/{data['id']}")).json()["settings"]
    assert settings["entity"] == "deal" and settings["active"] is True
    assert settings["messenger_map"] == {"telegrambot": {"source_id": 4, "site_id": 1}}
    # Saving again with the secret fields left empty keeps the secrets.
    again = await running_host.client.post(
        url, data={**FORM, "client_secret": "", "application_token": ""}
    )
    assert again.status_code == 303
    stored = await running_host.host.repo.get_integration(data["id"])
    assert (
        stored is not None and stored.secrets["client_secret"].get_secret_value() == CLIENT_SECRET
    )


async def test_a_portal_link_is_saved_as_its_address_and_the_page_says_so(
    running_host: RunningHost,
) -> None:
    data = await create(running_host)
    url = f"/integrations/{data['id']}/settings"
    answer = await running_host.client.post(
        url, data={**FORM, "portal": "https://b24.example.ru/crm/lead/?IFRAME=Y"}
    )
    assert answer.status_code == 200, answer.text
    assert "Настройки сохранены." in answer.text
    note = re.search(r'<p class="note" id="note-portal">([^<]*)</p>', answer.text)
    assert note is not None and "Оставлен только адрес портала https://b24.example.ru" in note[1]
    assert 'value="https://b24.example.ru"' in answer.text
    stored = await running_host.host.repo.get_integration(data["id"])
    assert stored is not None and stored.settings["portal"] == "https://b24.example.ru"
    again = await running_host.client.get(url)  # said once
    assert 'id="note-portal"' not in again.text
    # The JSON API answers the note beside the saved settings.
    api = await running_host.client.patch(
        f"/api/integrations/{data['id']}/settings", json={"portal": "b24.example.ru/crm/"}
    )
    assert api.status_code == 200, api.text
    assert api.json()["settings"]["portal"] == "https://b24.example.ru"
    assert "«/crm/»" in api.json()["notes"]["portal"]


async def test_invalid_form_shows_field_errors_and_saves_nothing(running_host: RunningHost) -> None:
    data = await create(running_host)
    url = f"/integrations/{data['id']}/settings"
    bad = {**FORM, "portal": "https://YOURDOMAIN.bitrix24.ru", "traffic_type": "campaign"}
    answer = await running_host.client.post(url, data=bad)
    assert answer.status_code == 422
    assert "ничего не сохранено" in answer.text
    assert "YOURDOMAIN" in answer.text and 'class="field-error"' in answer.text
    assert CLIENT_SECRET not in answer.text
    # The traffic type chosen shows the campaign choice and hides source and site.
    assert not hidden_attr(answer.text, 'name="campaign_id"')
    assert hidden_attr(answer.text, 'name="source_id"')
    stored = await running_host.host.repo.get_integration(data["id"])
    assert stored is not None and stored.settings == {} and stored.secrets == {}


async def test_traffic_type_decides_which_defaults_are_shown(running_host: RunningHost) -> None:
    data = await create(running_host)
    url = f"/integrations/{data['id']}/settings"
    page = (await running_host.client.get(url)).text
    assert not hidden_attr(page, 'name="source_id"') and hidden_attr(page, 'name="campaign_id"')
    form = {
        **FORM,
        "traffic_type": "campaign",
        "campaign_id": "1",
        "source_id": "",
        "site_id": "",
        "messenger_map[telegrambot][source_id]": "",
        "messenger_map[telegrambot][site_id]": "",
        "messenger_map[viber][campaign_id]": "3",
    }
    assert (await running_host.client.post(url, data=form)).status_code == 303
    page = (await running_host.client.get(url)).text
    assert hidden_attr(page, 'name="source_id"') and not hidden_attr(page, 'name="campaign_id"')


async def test_pages_in_english_when_the_host_language_is_english(host_config: HostConfig) -> None:
    app = create_app(replace(host_config, language="en"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL
        ) as client:
            await client.post("/api/integrations", json={"plugin": "b24_openlines", "name": "x"})
            page = (await client.get("/integrations/1/settings")).text
            assert "Integration active" in page and "Traffic type" in page
            assert "Интеграция активна" not in page


async def test_raw_appeals_page_escapes_chat_text_and_filters(running_host: RunningHost) -> None:
    first, second = (await create(running_host, "A"))["id"], (await create(running_host, "B"))["id"]
    sink = (await running_host.host.services()).appeals
    hostile = appeal(
        first, 1, datetime(2026, 11, 2, 9, 0, tzinfo=UTC), text="<script>alert('x')</script> hi"
    )
    await sink.upsert(
        hostile.model_copy(
            update={"contact": hostile.contact.model_copy(update={"name": "<b>Eve</b>"})}
        )
    )
    await sink.upsert(
        appeal(second, 2, datetime(2026, 11, 2, 10, 0, tzinfo=UTC), text="second portal")
    )
    page = await running_host.client.get("/raw/appeals")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text
    assert "<b>Eve</b>" not in page.text and "&lt;b&gt;Eve&lt;/b&gt;" in page.text
    assert page.text.index("second portal") < page.text.index("&lt;script&gt;")  # newest first
    assert "Мессенджеры" in page.text and "Демо-сайт" in page.text and "Анна Смирнова" in page.text
    filtered = await running_host.client.get(f"/raw/appeals?integration_id={second}")
    assert "second portal" in filtered.text and "&lt;script&gt;" not in filtered.text


async def test_failed_webhooks_are_listed_with_a_retry_action(running_host: RunningHost) -> None:
    data = await create(running_host)
    repo = running_host.host.repo
    request = HookRequest(
        method="POST",
        path="/webhooks/1/",
        body=form_body("ONCRMLEADADD.app.form.txt"),
        received_at=datetime.now(UTC),
    )
    item = await repo.add_inbox_item(data["id"], request)
    failed = "upstream_error: Bitrix24 error ACCESS_DENIED"
    await repo.finish_drain([InboxOutcome(item_id=item.id, status="failed", error=failed)], [])
    page = await running_host.client.get("/inbox?status=failed")
    assert "ACCESS_DENIED" in page.text and f'action="/inbox/{item.id}/retry"' in page.text
    answer = await running_host.client.post(f"/inbox/{item.id}/retry")
    assert answer.status_code == 303
    await running_host.host.queue.idle()
    [again] = await repo.list_inbox()
    # Processed again by the plugin: the integration is not active, so the event is ignored.
    assert again.status == "ignored" and again.outcome is not None
    assert (await running_host.client.post(f"/inbox/{item.id}/retry")).status_code == 404


async def test_no_secret_in_any_page_or_json_answer(running_host: RunningHost) -> None:
    data = await create(running_host)
    await running_host.client.put(f"/api/integrations/{data['id']}/settings", json=VALID)
    for path in (
        "/",
        f"/integrations/{data['id']}/settings",
        "/raw/appeals",
        "/inbox",
        "/api/integrations",
        f"/api/integrations/{data['id']}",
        "/api/catalog",
        "/api/appeals",
    ):
        answer = await running_host.client.get(path)
        assert answer.status_code == 200, path
        assert CLIENT_SECRET not in answer.text and APP_TOKEN not in answer.text, path


async def test_data_survives_a_restart(host_config: HostConfig, tmp_path: Path) -> None:
    for round_ in range(2):
        app = create_app(host_config)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                if round_ == 0:
                    await client.post(
                        "/api/integrations", json={"plugin": "b24_openlines", "name": "kept"}
                    )
                listed = (await client.get("/api/integrations")).json()["integrations"]
                assert [i["name"] for i in listed] == ["kept"]


async def test_hidden_choices_are_disabled_and_unknown_fields_are_listed(
    running_host: RunningHost,
) -> None:
    data = await create(running_host)
    url = f"/integrations/{data['id']}/settings"
    page = (await running_host.client.get(url)).text
    assert re.search(r'<select id="f-campaign_id" name="campaign_id"[^>]* disabled>', page)
    assert not re.search(r'<select id="f-source_id" name="source_id"[^>]* disabled>', page)
    answer = await running_host.client.post(url, data={**FORM, "surprise": "1"})
    assert answer.status_code == 422
    assert 'id="form-errors"' in answer.text and "<code>surprise</code>" in answer.text
