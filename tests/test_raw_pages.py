"""The webhook inbox and Raw data → Appeals and goals as a marketer reads them (issue 13, items 4
and 5): every item, in Russian, in the account's time zone; channel names, UTM tags, the CRM
link, a date range, pages and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from hooks.host.app import create_app
from hooks.host.repository import InboxOutcome
from hooks.host.state import HostConfig
from hooks.models import Appeal, HookRequest, LocalizedText, Utm
from tests.conftest import PUBLIC_URL, RunningHost
from tests.examples import form_body
from tests.test_host_api import appeal, create

pytestmark = pytest.mark.anyio

MSK = timezone(timedelta(hours=3))
ACCESS_DENIED = "bitrix24:ACCESS_DENIED: Bitrix24 error ACCESS_DENIED: Access denied."


async def add_item(running_host: RunningHost, integration_id: int, body: bytes) -> int:
    request = HookRequest(
        method="POST", path="/webhooks/1/", body=body, received_at=datetime.now(UTC)
    )
    return (await running_host.host.repo.add_inbox_item(integration_id, request)).id


async def fail(running_host: RunningHost, item_id: int, error: str) -> None:
    outcome = InboxOutcome(item_id=item_id, status="failed", error=error)
    await running_host.host.repo.finish_drain([outcome], [])


async def test_the_inbox_shows_every_item_with_its_event_and_reason_in_russian(
    running_host: RunningHost,
) -> None:
    integration = (await create(running_host))["id"]
    repo = running_host.host.repo
    failed = await add_item(running_host, integration, form_body("ONCRMLEADADD.app.form.txt"))
    await fail(running_host, failed, ACCESS_DENIED)
    done = await add_item(running_host, integration, b'{"event": "ONCRMDEALADD", "data": {}}')
    await repo.finish_drain([InboxOutcome(item_id=done, status="done", outcome={})], [])
    ignored = await repo.add_inbox_item(
        integration,
        HookRequest(method="POST", path="/", body=b"event=ONIMBOTJOINCHAT", received_at=T0),
        ignored="the integration is not active",
        ignored_text=LocalizedText(ru="интеграция выключена", en="the integration is off"),
    )

    page = (await running_host.client.get("/inbox")).text
    assert "Входящих нет." not in page
    for item_id in (failed, done, ignored.id):
        assert f"<td>{item_id}</td>" in page
    for tab in ("Все", "С ошибкой", "В очереди", "Обработаны", "Пропущены"):
        assert f">{tab}</a>" in page
    assert re.search(r'<a href="/inbox" class="active">Все</a>', page)
    assert ">failed<" not in page and ">pending<" not in page
    for event in ("ONCRMLEADADD", "ONCRMDEALADD", "ONIMBOTJOINCHAT"):
        assert f'<td class="event">{event}</td>' in page
    assert "<th>Интеграция</th>" in page and page.count("<td>Main portal</td>") == 3
    assert "Битрикс24 отказал в доступе" in page and "переподключите Битрикс24" in page
    assert 'title="bitrix24:ACCESS_DENIED: Bitrix24 error ACCESS_DENIED' in page  # the detail
    assert re.search(r'title="the integration is not active">интеграция выключена</span>', page)
    # Received times in the account's zone (Moscow), the offset written out, as on appeals.
    assert re.search(r"<time datetime=\"[^\"]+\">\d{4}-\d\d-\d\d \d\d:\d\d \+0300</time>", page)
    only_failed = (await running_host.client.get("/inbox?status=failed")).text
    assert f"<td>{failed}</td>" in only_failed and f"<td>{done}</td>" not in only_failed


T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def test_a_retried_item_no_longer_shows_the_old_error(running_host: RunningHost) -> None:
    integration = (await create(running_host))["id"]
    item = await add_item(running_host, integration, form_body("ONCRMLEADADD.app.form.txt"))
    await fail(running_host, item, ACCESS_DENIED)
    answer = await running_host.client.post(f"/inbox/{item}/retry")
    assert answer.status_code == 303 and answer.headers["location"] == "/inbox"
    await running_host.host.queue.idle()
    page = (await running_host.client.get("/inbox")).text
    # Processed again: the integration is not active, so the plugin says so, in Russian.
    assert "ACCESS_DENIED" not in page and "отказал в доступе" not in page
    assert "Интеграция активна" in page and "пропущен" in page


async def test_the_inbox_in_english(host_config: HostConfig) -> None:
    app = create_app(replace(host_config, language="en", timezone="UTC"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await client.post("/api/integrations", json={"plugin": "b24_openlines", "name": "x"})
            repo = app.state.host.repo
            request = HookRequest(method="POST", path="/", body=b"event=X", received_at=T0)
            item = await repo.add_inbox_item(1, request)
            failed = "gave up after 8 attempts: Bitrix24 is busy (QUERY_LIMIT_EXCEEDED): later"
            await repo.finish_drain(
                [InboxOutcome(item_id=item.id, status="failed", error=failed)], []
            )
            page = (await client.get("/inbox")).text
    assert ">All</a>" in page and ">Failed</a>" in page and ">failed<" in page
    assert "Gave up after 8 attempts." in page and "+0000" in page


def stored(integration_id: int, number: int, created_at: datetime, **changes: object) -> Appeal:
    return appeal(integration_id, number, created_at).model_copy(update=changes)


async def test_appeals_show_channel_names_all_utm_tags_and_the_crm_link(
    running_host: RunningHost,
) -> None:
    integration = (await create(running_host))["id"]
    sink = (await running_host.host.services()).appeals
    utm = Utm(
        utm_source="yandex",
        utm_medium="cpc",
        utm_campaign="spring_sale",
        utm_content="banner",
        utm_term="sofa",
    )
    first = stored(integration, 1, T0, channel_title=LocalizedText(ru="Онлайн-чат", en="Chat"))
    first = first.model_copy(
        update={
            "attribution": first.attribution.model_copy(update={"utm": utm}),
            "crm": first.crm.model_copy(
                update={"url": "https://b24.example.ru/crm/lead/details/1/"}
            ),
        }
    )
    await sink.upsert(first)
    await sink.upsert(stored(integration, 2, T0, channel="whatsappbytwilio"))  # an older appeal
    page = (await running_host.client.get("/raw/appeals")).text
    assert '<td class="channel" title="livechat">Онлайн-чат</td>' in page
    assert '<td class="channel" title="whatsappbytwilio">whatsappbytwilio</td>' in page
    for tag in (
        "utm_source=yandex",
        "utm_medium=cpc",
        "utm_campaign=spring_sale",
        "utm_content=banner",
        "utm_term=sofa",
    ):
        assert tag in page
    assert '<a href="https://b24.example.ru/crm/lead/details/1/"' in page and "Лид #1" in page
    assert "2026-11-02 12:00 +0300" in page  # 09:00 UTC in the account's zone


async def test_appeals_by_date_range_in_pages_with_a_chart(running_host: RunningHost) -> None:
    integration = (await create(running_host))["id"]
    sink = (await running_host.host.services()).appeals
    # 105 appeals on Nov 2 (Moscow), two on Nov 3 just after Moscow's midnight, one on Nov 1.
    for n in range(105):
        await sink.upsert(stored(integration, n, T0 + timedelta(minutes=n)))
    await sink.upsert(stored(integration, 200, datetime(2026, 11, 2, 21, 5, tzinfo=UTC)))
    await sink.upsert(
        stored(integration, 201, datetime(2026, 11, 3, 1, tzinfo=MSK), channel="telegrambot")
    )
    await sink.upsert(stored(integration, 300, datetime(2026, 11, 1, 12, tzinfo=MSK)))

    page = (await running_host.client.get("/raw/appeals?from=2026-11-02&to=2026-11-02")).text
    assert "Найдено: 105" in page and "Страница 1 из 2" in page
    assert page.count("<tr>") == 1 + 100
    assert 'rel="next" href="?from=2026-11-02&amp;to=2026-11-02&amp;page=2"' in page
    assert 'href="/raw/appeals.csv?from=2026-11-02&amp;to=2026-11-02"' in page
    second = await running_host.client.get("/raw/appeals?from=2026-11-02&to=2026-11-02&page=2")
    assert second.text.count("<tr>") == 1 + 5 and "Visitor 0<" in second.text

    later = (await running_host.client.get("/raw/appeals?from=2026-11-03")).text
    assert "Найдено: 2" in later and "Visitor 200" in later and "Visitor 300" not in later
    chart = json.loads(
        re.search(r'data-chart="([^"]*)"', later).group(1).replace("&#34;", '"')  # type: ignore[union-attr]
    )
    assert chart["days"] == ["2026-11-03"]
    assert {s["label"]: s["counts"] for s in chart["channel"]} == {
        "livechat": [1],
        "telegrambot": [1],
    }
    everything = (await running_host.client.get("/raw/appeals")).text
    chart = json.loads(
        re.search(r'data-chart="([^"]*)"', everything).group(1).replace("&#34;", '"')
    )  # type: ignore[union-attr]
    assert chart["days"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert chart["campaign"] == [{"label": "Мессенджеры", "counts": [1, 105, 2]}]
    bad = await running_host.client.get("/raw/appeals?from=yesterday")
    assert bad.status_code == 400


async def test_the_csv_export_takes_the_filters_and_is_safe_in_excel(
    running_host: RunningHost,
) -> None:
    integration = (await create(running_host))["id"]
    sink = (await running_host.host.services()).appeals
    hostile = stored(integration, 1, T0, text='=HYPERLINK("http://evil")\nи "кавычки", запятые')
    hostile = hostile.model_copy(
        update={"contact": hostile.contact.model_copy(update={"name": "@Eve"})}
    )
    await sink.upsert(hostile)
    await sink.upsert(stored(integration, 2, T0 - timedelta(days=3)))
    answer = await running_host.client.get("/raw/appeals.csv?from=2026-11-02")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    header, [row] = rows[0], rows[1:]
    assert header[:3] == ["Время", "Канал", "Контакт"] and "utm_term" in header
    cells = dict(zip(header, row, strict=True))
    assert cells["Текст чата"] == '\'=HYPERLINK("http://evil")\nи "кавычки", запятые'
    assert cells["Контакт"] == "'@Eve" and cells["Телефоны"] == "'+79990000000"
    assert (
        cells["Время"] == "2026-11-02 12:00 +0300" and cells["Кампания / источник"] == "Мессенджеры"
    )
    everything = await running_host.client.get("/raw/appeals.csv")
    assert len(list(csv.reader(io.StringIO(everything.content.decode("utf-8-sig"))))) == 3
