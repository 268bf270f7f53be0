"""Health where the client looks (issue 13): a broken connection turns the integrations list and
the settings page red, in Russian, with what to do; OAuth failures come back to the settings;
the connection's actions; renaming and deleting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from b24_openlines_plugin.health import QUIET, health_status
from b24_openlines_plugin.state import Connection
from hooks.host import csrf
from hooks.models import IntegrationHealth
from tests.conftest import page_csrf_token
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack
from tests.test_end_to_end import connected

pytestmark = pytest.mark.anyio

DENIED = "Битрикс24 отказал в доступе (ACCESS_DENIED)"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", schedule_seconds=0) as running:
        yield running


async def form_post(stack: Stack, page_path: str, action: str, **data: str) -> httpx.Response:
    """Submit a form of a host page as the browser does: with the page's CSRF token."""
    token = page_csrf_token((await stack.browser.get(HOST_URL + page_path)).text)
    return await stack.browser.post(HOST_URL + action, data={csrf.FIELD: token, **data})


async def deny_everything(stack: Stack) -> None:
    answer = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/faults", json={"error": "ACCESS_DENIED", "times": 1000}
    )
    assert answer.status_code < 300, answer.text


async def test_access_denied_turns_the_first_page_red_in_russian(stack: Stack) -> None:
    integration = await connected(stack)
    await stack.chat(visitor={"name": "Ок"}, messages=[{"author": "visitor", "text": "привет"}])
    first = (await stack.browser.get(f"{HOST_URL}/")).text
    row = first[first.index(f'id="integration-{integration["id"]}"') :]
    assert 'class="badge ok"' in row and "<td>—</td>" not in row.split("</tr>")[0]  # seen both
    await deny_everything(stack)
    await stack.chat(visitor={"name": "Нет"}, messages=[{"author": "visitor", "text": "эй"}])
    page = (await stack.browser.get(f"{HOST_URL}/")).text
    row = page[page.index(f'id="integration-{integration["id"]}"') :]
    assert 'class="badge error"' in row and DENIED in row and "«Проверить подключение»" in row
    assert '<a href="/inbox?status=failed">' in row.split("</tr>")[0]  # failures in 24 h
    settings = (await stack.browser.get(f"{HOST_URL}/integrations/1/settings")).text
    assert 'class="badge error" id="status">' + DENIED in settings
    assert "Подключено к" not in settings


async def test_a_portal_changed_since_connecting_is_red(stack: Stack) -> None:
    integration = await connected(stack)
    changed = await stack.browser.patch(
        f"{HOST_URL}/api/integrations/{integration['id']}/settings",
        json={"portal": "http://localhost:8100"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"]["level"] == "error"
    assert (
        "В настройках портал localhost:8100, а подключён 127.0.0.1:8100"
        in (changed.json()["status"]["text"])
    )


async def test_a_wrong_client_secret_comes_back_to_the_settings_in_russian(stack: Stack) -> None:
    integration = await stack.configure()
    wrong = await stack.browser.patch(
        f"{HOST_URL}/api/integrations/{integration['id']}/settings",
        json={"client_secret": "wrong-secret-of-the-application"},
    )
    assert wrong.status_code == 200, wrong.text
    answer = await stack.connect(integration["id"])
    assert answer.headers["location"] == "/integrations/1/settings?oauth_error=failed"
    page = (await stack.followed(answer)).text
    assert "Подключить портал не удалось" in page
    assert "Битрикс24 не принял код или ключ приложения" in page
    assert "Bitrix24 error" not in page and "invalid_client:" not in page
    assert "wrong-secret-of-the-application" not in page
    assert (
        "Битрикс24 не принял код или ключ приложения"
        in (await stack.browser.get(f"{HOST_URL}/")).text
    )


async def test_a_replayed_or_denied_consent_says_what_to_do(stack: Stack) -> None:
    integration = await stack.configure()
    start = await stack.browser.get(f"{HOST_URL}/integrations/{integration['id']}/connect")
    authorize = start.headers["location"]
    query = dict(parse_qsl(urlsplit(authorize).query))
    # The sandbox's Deny answers as Bitrix24 documents: its own page, no redirect to the app.
    denied = await stack.browser.post(
        f"{PORTAL_URL}/oauth/authorize/", data={**query, "user_id": "1", "decision": "deny"}
    )
    assert denied.status_code == 403 and "location" not in denied.headers
    assert "access_denied" in denied.text
    # An OAuth server that does redirect (RFC 6749 §4.1.2.1) gets the same care.
    back = await stack.browser.get(
        f"{HOST_URL}/oauth2/callback?error=access_denied&state={query['state']}"
    )
    page = (await stack.followed(back)).text
    assert "В Битрикс24 отказали в доступе на странице согласия" in page
    again = await stack.browser.get(
        f"{HOST_URL}/oauth2/callback?error=access_denied&state={query['state']}"
    )
    assert "уже использована" in (await stack.followed(again)).text
    forged = await stack.browser.get(f"{HOST_URL}/oauth2/callback?code=x&state=forged")
    assert forged.status_code == 400 and "Ссылка авторизации недействительна" in forged.text


async def test_check_disconnect_and_reconnect(stack: Stack) -> None:
    integration = await connected(stack)
    path = f"/integrations/{integration['id']}/settings"
    checked = await form_post(stack, path, f"/integrations/{integration['id']}/check")
    assert checked.status_code == 200
    assert "Подключение работает: портал 127.0.0.1:8100 ответил" in checked.text
    await deny_everything(stack)
    checked = await form_post(stack, path, f"/integrations/{integration['id']}/check")
    assert 'id="check-result">' + DENIED in checked.text
    assert 'class="badge error" id="status">' + DENIED in checked.text  # remembered
    await stack.browser.delete(f"{PORTAL_URL}/sandbox/api/faults")
    await stack.catch_up(integration["id"])  # the run that binds the plugin's own handlers
    handlers = f"{PORTAL_URL}/sandbox/api/event-handlers"
    assert (await stack.browser.get(handlers)).json() != []
    gone = await form_post(stack, path, f"/integrations/{integration['id']}/disconnect")
    assert "Портал отключён" in gone.text and "Портал ещё не подключён" in gone.text
    assert (await stack.browser.get(handlers)).json() == []  # the portal stops sending
    stored = await stack.host.repo.get_integration(integration["id"])
    assert stored is not None and "access_token" not in stored.secrets
    assert stored.settings["client_id"]  # the settings stay
    assert (await stack.connect(integration["id"])).headers["location"].endswith("connected=1")
    data = (await stack.browser.get(f"{HOST_URL}/api/integrations/{integration['id']}")).json()
    assert data["status"]["level"] == "ok"


async def test_disconnecting_an_unreachable_portal_says_what_is_left(stack: Stack) -> None:
    integration = await connected(stack)
    path = f"/integrations/{integration['id']}/settings"
    await deny_everything(stack)
    gone = await form_post(stack, path, f"/integrations/{integration['id']}/disconnect")
    assert "Портал отключён" in gone.text and "удалите обработчики этого приложения" in gone.text
    stored = await stack.host.repo.get_integration(integration["id"])
    assert stored is not None and "access_token" not in stored.secrets


async def test_rename_and_delete_an_integration(stack: Stack) -> None:
    integration = await connected(stack)
    await stack.chat(visitor={"name": "Ок"}, messages=[{"author": "visitor", "text": "привет"}])
    path = f"/integrations/{integration['id']}/settings"
    renamed = await form_post(stack, path, f"/integrations/{integration['id']}/rename", name="Сайт")
    assert renamed.status_code == 303
    assert 'id="integration-name"><b>Сайт</b>' in (await stack.followed(renamed)).text
    api = await stack.browser.patch(
        f"{HOST_URL}/api/integrations/{integration['id']}", json={"name": "Сайт 2"}
    )
    assert api.status_code == 200 and api.json()["name"] == "Сайт 2"
    delete = f"/integrations/{integration['id']}/delete"
    unconfirmed = await form_post(stack, delete, delete)
    assert unconfirmed.status_code == 422 and "Отметьте подтверждение" in unconfirmed.text
    assert await stack.host.repo.get_integration(integration["id"]) is not None
    done = await form_post(stack, delete, delete, confirm="yes")
    assert done.status_code == 303 and done.headers["location"] == "/?deleted=1"
    assert await stack.host.repo.get_integration(integration["id"]) is None
    [kept] = await stack.appeals()  # the client's raw data stays
    assert kept["integration_id"] == integration["id"]
    webhook = await stack.browser.post(integration["webhook_url"], content=b"event=ONCRMLEADADD")
    assert webhook.status_code == 404  # its Webhook URL is refused
    other = await stack.configure()
    removed = await stack.browser.delete(f"{HOST_URL}/api/integrations/{other['id']}")
    assert removed.status_code == 204
    gone = await stack.browser.get(f"{HOST_URL}/api/integrations/{other['id']}")
    assert gone.status_code == 404


def test_no_events_while_chats_arrive_is_red_but_a_quiet_portal_is_not() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    connection = Connection(
        member_id="m",
        domain="x.bitrix24.ru",
        client_endpoint="https://x.bitrix24.ru/rest/",
        connected_at=now - QUIET - timedelta(days=1),
    )
    silent = IntegrationHealth(last_event_at=now - QUIET - timedelta(hours=1))
    assert health_status(connection, "x.bitrix24.ru", silent, now=now) is None
    chats_without_events = silent.model_copy(update={"last_appeal_at": now - timedelta(hours=2)})
    status = health_status(connection, "x.bitrix24.ru", chats_without_events, now=now)
    assert status is not None and status.level == "error"
    assert "события от Битрикс24 не приходят больше 3 дней" in status.text.ru
    fresh = chats_without_events.model_copy(update={"last_event_at": now - timedelta(days=1)})
    assert health_status(connection, "x.bitrix24.ru", fresh, now=now) is None
