"""Bitrix24 events at the Webhook URL: only genuine, wanted ones are kept (issue 3, item 3)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest

from tests.conftest import PUBLIC_URL, RunningHost
from tests.examples import form_body
from tests.test_host_api import VALID, create

pytestmark = pytest.mark.anyio

MEMBER_ID = "a223c6b3710f85df22e9377d6c4f7553"  # the portal of the official examples
APP_TOKEN = "51856fefc120afa4b628cc82d3935cce"  # the official lead event's application token


def lead_event(**changes: str) -> bytes:
    pairs = dict(parse_qsl(form_body("ONCRMLEADADD.app.form.txt").decode()))
    pairs.update(changes)
    return urlencode(pairs).encode()


async def connected(rh: RunningHost, **settings: object) -> str:
    """An integration that is switched on and connected to the examples' portal; its hook path."""
    data = await create(rh)
    answer = await rh.client.put(
        f"/api/integrations/{data['id']}/settings",
        json={**VALID, "application_token": APP_TOKEN, **settings},
    )
    assert answer.status_code == 200, answer.text
    stored = await rh.host.repo.get_integration(data["id"])
    assert stored is not None
    await rh.host.repo.update_integration(
        stored.id,
        expected_version=stored.version,
        connection={"member_id": MEMBER_ID, "domain": "b24.example.ru"},
    )
    return data["webhook_url"][len(PUBLIC_URL) :]


async def post(rh: RunningHost, path: str, body: bytes):
    return await rh.client.post(
        path, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )


async def test_a_genuine_event_is_stored_once_however_often_it_arrives(
    running_host: RunningHost,
) -> None:
    path = await connected(running_host)
    first = await post(running_host, path, lead_event())
    again = await post(running_host, path, lead_event(ts="1742807999"))  # a replay, later
    assert first.status_code == again.status_code == 200
    assert first.json()["accepted"] is True
    assert first.json()["inbox_id"] == again.json()["inbox_id"]
    assert len(await running_host.host.repo.list_inbox()) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"auth[member_id]": "d897063e1ce7c5eb9f04b9751eef5915"}, "wrong_portal"),
        ({"auth[application_token]": "forged0000000000000000000000000"}, "wrong_application_token"),
    ],
)
async def test_forged_events_are_403_and_store_nothing(
    running_host: RunningHost, change: dict[str, str], code: str
) -> None:
    path = await connected(running_host)
    answer = await post(running_host, path, lead_event(**change))
    assert answer.status_code == 403 and answer.json()["error"] == code
    assert APP_TOKEN not in answer.text and "forged" not in answer.text
    assert await running_host.host.repo.list_inbox() == []


async def test_without_a_token_in_settings_the_first_verified_one_is_pinned(
    running_host: RunningHost,
) -> None:
    path = await connected(running_host, application_token=None)
    assert (await post(running_host, path, lead_event())).status_code == 200
    other = lead_event(
        **{"auth[application_token]": "another0000000000000000000000000", "data[FIELDS][ID]": "7"}
    )
    answer = await post(running_host, path, other)
    assert answer.status_code == 403
    assert len(await running_host.host.repo.list_inbox()) == 1
    page = await running_host.client.get("/api/integrations/1")
    assert APP_TOKEN not in page.text


@pytest.mark.parametrize(
    ("event", "settings", "reason"),
    [
        ("ONCRMINVOICEADD", {}, "ONCRMINVOICEADD is not handled"),
        ("ONCRMDEALADD", {}, "ONCRMDEALADD is not handled"),
        ("ONCRMLEADADD", {"entity": "deal"}, "ONCRMLEADADD is not handled"),
        ("ONCRMLEADADD", {"active": False}, "the integration is not active"),
    ],
)
async def test_unwanted_events_are_recorded_as_ignored_with_the_reason(
    running_host: RunningHost, event: str, settings: dict[str, object], reason: str
) -> None:
    path = await connected(running_host, **settings)
    answer = await post(running_host, path, lead_event(event=event))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    [item] = await running_host.host.repo.list_inbox()
    assert item.status == "ignored" and reason in (item.outcome or {}).get("reason", "")


async def test_outgoing_webhook_event_without_tokens_is_accepted(running_host: RunningHost) -> None:
    path = await connected(
        running_host, entity="deal", application_token="jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
    )
    stored = await running_host.host.repo.get_integration(1)
    assert stored is not None
    await running_host.host.repo.update_integration(
        1,
        expected_version=stored.version,
        connection={"member_id": "d897063e1ce7c5eb9f04b9751eef5915"},
    )
    answer = await post(running_host, path, form_body("ONCRMDEALADD.outgoing_webhook.form.txt"))
    assert answer.status_code == 200 and answer.json()["accepted"] is True
