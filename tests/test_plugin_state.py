"""The plugin's stored state read as typed models, and the event queue's answers read from
the documentation's own examples (issue 11, item 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import SecretStr

from b24_openlines_plugin.bitrix.wire import WireError, parse_event_handlers, parse_offline_page
from b24_openlines_plugin.state import MAX_RETRY, Catchup, connection_of, secrets_of
from hooks.errors import UpstreamError
from hooks.models import Integration
from tests.examples import load_json

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def integration(connection: dict[str, Any], secrets: dict[str, str] | None = None) -> Integration:
    return Integration(
        id=1,
        plugin="b24_openlines",
        name="Portal",
        settings={},
        secrets={k: SecretStr(v) for k, v in (secrets or {}).items()},
        connection=connection,
        webhook_token=SecretStr("w"),
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def test_the_documented_offline_page_reads_with_its_record_without_data() -> None:
    page = parse_offline_page(load_json("event.offline.get.response.json")["result"])
    assert page.process_id is None
    [record] = page.events
    assert (record.name, record.entity_id) == ("ONCRMLEADADD", None)  # EVENT_DATA: false
    assert record.at == datetime(2024, 7, 18, 12, 32, 31, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize(
    ("data", "entity_id"),
    [
        ({"FIELDS": {"ID": "123"}}, 123),  # the newer page's example
        ({"FIELDS": {"ID": 7}}, 7),
        (None, None),  # "false or null for events without data"
        (False, None),
        ({"FIELDS": {}}, None),
        ({"FIELDS": {"ID": "12a"}}, None),
        ({"FIELDS": {"ID": True}}, None),
        ("text", None),
    ],
)
def test_an_offline_record_names_its_entity_or_nothing(data: Any, entity_id: int | None) -> None:
    page = parse_offline_page(
        {
            "process_id": "abc",
            "events": [{"EVENT_NAME": "onCrmActivityAdd", "EVENT_DATA": data, "TIMESTAMP_X": "x"}],
        }
    )
    assert page.process_id == "abc"
    assert [(e.name, e.entity_id, e.at) for e in page.events] == [
        ("ONCRMACTIVITYADD", entity_id, None)
    ]


def test_an_empty_queue_and_a_broken_page() -> None:
    assert parse_offline_page([]).events == []
    with pytest.raises(WireError):
        parse_offline_page({"events": [{"EVENT_DATA": False}]})  # no EVENT_NAME


def test_the_documented_event_get_answer_reads() -> None:
    rows = parse_event_handlers(load_json("event.get.response.json")["result"])
    assert [(r.event, r.handler, r.offline) for r in rows] == [
        ("ONCRMLEADADD", "https://www.my-domain.com/handler/", False)
    ] * 2


def test_an_offline_row_of_event_get_reads_without_a_handler() -> None:
    online = load_json("event.get.response.json")["result"][0]
    offline = {"event": "ONCRMLEADADD", "connector_id": "", "offline": 1}  # no handler: offline
    rows = parse_event_handlers([online, offline])
    assert [(r.event, r.handler, r.offline) for r in rows] == [
        ("ONCRMLEADADD", "https://www.my-domain.com/handler/", False),
        ("ONCRMLEADADD", "", True),
    ]


def test_the_connection_reads_typed_and_a_broken_part_reads_as_absent() -> None:
    stored = {
        "member_id": "a223c6b3710f85df22e9377d6c4f7553",
        "domain": "name.bitrix24.ru",
        "client_endpoint": "https://name.bitrix24.ru/rest",
        "scope": ["crm", "imopenlines"],
        "connected_at": "2026-11-18T12:00:00+00:00",
        "catchup": {"cursor": "not a time", "handler": "https://host/webhooks/1/t"},
        "from_a_newer_version": True,
    }
    connection = connection_of(integration(stored))
    assert connection.connected and connection.member_id == stored["member_id"]
    assert connection.endpoint == "https://name.bitrix24.ru/rest/"
    assert connection.portal_url == "https://name.bitrix24.ru"
    assert connection.connected_at == NOW
    assert connection.catchup is None  # unreadable: the catch-up starts afresh, safely


def test_not_connected_says_so() -> None:
    connection = connection_of(integration({}))
    assert not connection.connected
    with pytest.raises(UpstreamError, match="connect it in the settings"):
        _ = connection.endpoint
    with pytest.raises(UpstreamError, match="connect it in the settings"):
        secrets_of(integration({})).token("access_token")
    assert secrets_of(integration({}, {"access_token": "t"})).token("access_token") == "t"


def test_the_catchup_state_survives_its_json_and_keeps_a_bounded_retry_list() -> None:
    state = Catchup(cursor=NOW, cursor_id=5, offline=True)
    for n in range(MAX_RETRY + 10):
        state.remember("ONCRMLEADADD", n)
    state.remember("ONCRMLEADADD", MAX_RETRY + 9)  # already kept: once
    again = Catchup.model_validate(state.to_json())
    assert again == state
    assert len(again.retry) == MAX_RETRY and again.retry[0] == ("ONCRMLEADADD", 10)
