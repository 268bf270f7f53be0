"""CRM records have exactly the keys and formats of the official examples; lists page and filter."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.sandbox.conftest import Running, fixture_json

pytestmark = pytest.mark.anyio
ATOM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00$")


def official_keys(name: str, row: int | None = None) -> set[str]:
    """The example's keys without the example portal's own custom fields (UF_*, PARENT_ID_*)."""
    result = fixture_json(name)["result"]
    record = result[row] if row is not None else result
    return {k for k in record if not k.startswith(("UF_", "PARENT_ID_"))}


def assert_bitrix_scalars(record: dict[str, Any]) -> None:
    for key, value in record.items():
        assert value is None or isinstance(value, str | list | dict), key
        if key == "ID" or key.endswith("_BY_ID"):
            assert isinstance(value, str) and value.isdigit(), key
        if key.startswith("DATE_") and value:
            assert ATOM.match(value), (key, value)


async def test_lead_has_the_keys_of_crm_lead_get(running: Running, token: str) -> None:
    chat = await running.chat(
        connector="livechat",
        visitor={"name": "Anna", "phone": "+79990001122"},
        messages=[{"author": "visitor", "text": "Hello"}],
    )
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert set(lead) == official_keys("crm.lead.get.json")  # PHONE and IM, as in the example
    assert list(lead)[:5] == list(fixture_json("crm.lead.get.json")["result"])[:5]
    assert_bitrix_scalars(lead)
    assert lead["SOURCE_ID"] == "1|OPENLINE"
    assert lead["DATE_CREATE"] == "2026-09-21T17:13:20+03:00"
    assert lead["HAS_PHONE"] == "Y" and lead["HAS_EMAIL"] == "N" and lead["HAS_IMOL"] == "Y"
    assert all(lead[k] is None for k in ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN"))
    assert lead["PHONE"] == [
        {
            "ID": lead["PHONE"][0]["ID"],
            "VALUE_TYPE": "WORK",
            "VALUE": "+79990001122",
            "TYPE_ID": "PHONE",
        }
    ]
    assert lead["IM"][0]["VALUE"] == f"imol|{chat['user_code']}"
    assert lead["IM"][0]["VALUE_TYPE"] == "OPENLINE" and lead["IM"][0]["TYPE_ID"] == "IM"


async def test_lead_with_email_adds_only_email(running: Running, token: str) -> None:
    chat = await running.chat(
        visitor={"name": "Anna", "phone": "+79990001122", "email": "anna@example.com"},
        messages=[{"author": "visitor", "text": "Hello"}],
    )
    lead = (await running.ok("crm.lead.get", token, ID=chat["lead_id"]))["result"]
    assert set(lead) == official_keys("crm.lead.get.json") | {"EMAIL"}
    assert lead["EMAIL"][0]["VALUE_TYPE"] == "WORK" and lead["HAS_EMAIL"] == "Y"


async def test_deal_and_contact_have_the_keys_of_the_examples(running: Running, token: str) -> None:
    chat = await running.chat(
        connector="telegrambot",
        line_id=2,
        visitor={"name": "Boris Kuznetsov", "phone": "+79031112233", "email": "b@example.com"},
        messages=[{"author": "visitor", "text": "Hi"}],
    )
    deal = (await running.ok("crm.deal.get", token, id=chat["deal_id"]))["result"]
    assert set(deal) == official_keys("crm.deal.get.json")
    assert_bitrix_scalars(deal)
    assert deal["CONTACT_ID"] == str(chat["contact_id"]) and deal["SOURCE_ID"] == "2|TELEGRAM"
    assert not {"PHONE", "EMAIL", "IM"} & set(deal)

    contact = (await running.ok("crm.contact.get", token, id=chat["contact_id"]))["result"]
    # the example contact has no IM; an Open Lines contact has its chat link as well
    assert set(contact) == official_keys("crm.contact.get.json") | {"IM"}
    assert_bitrix_scalars(contact)
    assert (contact["NAME"], contact["LAST_NAME"]) == ("Boris", "Kuznetsov")
    assert contact["IM"][0]["VALUE"] == f"imol|{chat['user_code']}"
    assert contact["IM"][0]["VALUE_TYPE"] == "TELEGRAM"


async def test_list_rows_have_the_keys_of_crm_lead_list(running: Running, token: str) -> None:
    body = await running.ok("crm.lead.list", token)
    assert {"result", "total", "time"} <= set(body) and "next" not in body
    for row in body["result"]:
        assert set(row) == official_keys("crm.lead.list.json", row=0)
    with_phone = await running.ok("crm.lead.list", token, select=["*", "PHONE"])
    assert all("PHONE" in row for row in with_phone["result"])


async def test_list_pages_by_50_with_next_and_total(running: Running, token: str) -> None:
    for i in range(55):
        await running.chat(messages=[{"author": "visitor", "text": f"question {i}"}])
    first = await running.ok("crm.lead.list", token, order={"ID": "ASC"})
    assert list(first)[:3] == ["result", "next", "total"]
    assert (len(first["result"]), first["next"], first["total"]) == (50, 50, 57)
    second = await running.ok("crm.lead.list", token, order={"ID": "ASC"}, start=50)
    assert len(second["result"]) == 7 and "next" not in second and second["total"] == 57
    ids = [r["ID"] for r in first["result"] + second["result"]]
    assert ids == sorted(ids, key=int) and len(set(ids)) == 57

    fast = await running.ok("crm.lead.list", token, start=-1, order={"ID": "ASC"})
    assert len(fast["result"]) == 50 and "total" not in fast and "next" not in fast
    last = fast["result"][-1]["ID"]
    rest = await running.ok(
        "crm.lead.list", token, start=-1, order={"ID": "ASC"}, filter={">ID": last}
    )
    assert len(rest["result"]) == 7


async def test_list_filters_order_and_select(running: Running, token: str) -> None:
    tg = await running.chat(connector="telegrambot", messages=[{"author": "visitor", "text": "a"}])
    await running.chat(connector="livechat", messages=[{"author": "visitor", "text": "b"}])
    by_source = await running.ok("crm.lead.list", token, filter={"SOURCE_ID": "1|TELEGRAM"})
    assert [r["ID"] for r in by_source["result"]] == [str(tg["lead_id"])]
    openlines = await running.ok("crm.lead.list", token, filter={"%SOURCE_ID": "|"})
    assert openlines["total"] == 2
    not_call = await running.ok("crm.lead.list", token, filter={"!SOURCE_ID": "CALL"})
    assert not_call["total"] == 3
    picked = await running.ok("crm.lead.list", token, filter={"@ID": [tg["lead_id"]]})
    assert picked["total"] == 1
    recent = await running.ok(
        "crm.lead.list", token, filter={">=DATE_CREATE": "2026-09-21T00:00:00+03:00"}
    )
    assert recent["total"] == 2
    older = await running.ok("crm.lead.list", token, filter={"<DATE_CREATE": "2026-09-21"})
    assert older["total"] == 2  # the two seeded leads from two days before
    desc = await running.ok("crm.lead.list", token, order={"ID": "DESC"}, select=["TITLE"])
    assert [list(r) for r in desc["result"]] == [["ID", "TITLE"]] * 4
    assert desc["result"][0]["ID"] == str(max(running.sandbox.portal.leads))


async def test_deal_list(running: Running, token: str) -> None:
    chat = await running.chat(line_id=2, messages=[{"author": "visitor", "text": "hi"}])
    body = await running.ok("crm.deal.list", token, filter={"CONTACT_ID": chat["contact_id"]})
    assert [r["ID"] for r in body["result"]] == [str(chat["deal_id"])]
    assert set(body["result"][0]) == official_keys("crm.deal.get.json")


async def test_activity_list_shows_the_openlines_session(running: Running, token: str) -> None:
    chat = await running.chat(
        connector="whatsappbyedna",
        visitor={"phone": "+7 916 555-44-33"},
        messages=[{"author": "visitor", "text": "hi"}],
    )
    body = await running.ok(
        "crm.activity.list",
        token,
        filter={
            "OWNER_TYPE_ID": 1,
            "OWNER_ID": chat["lead_id"],
            "PROVIDER_ID": "IMOPENLINES_SESSION",
        },
    )
    assert body["total"] == 1
    activity = body["result"][0]
    assert set(activity) == set(fixture_json("crm.activity.list.json")["result"][0])
    assert activity["TYPE_ID"] == "6" and activity["PROVIDER_TYPE_ID"] == "1"
    assert activity["ASSOCIATED_ENTITY_ID"] == str(chat["session_id"])
    assert activity["ORIGIN_ID"] == f"IMOL_{chat['session_id']}"
    assert activity["RESULT_SOURCE_ID"] == "whatsappbyedna"
    assert activity["PROVIDER_PARAMS"] == {"USER_CODE": chat["user_code"]}
    assert chat["user_code"].startswith("whatsappbyedna|1|79165554433|")
    assert (activity["DIRECTION"], activity["COMPLETED"]) == ("1", "N")
    assert (activity["OWNER_TYPE_ID"], activity["OWNER_ID"]) == ("1", str(chat["lead_id"]))
    assert "COMMUNICATIONS" not in activity  # only when selected, as the docs say

    selected = await running.ok(
        "crm.activity.list", token, filter={"ID": activity["ID"]}, select=["*", "COMMUNICATIONS"]
    )
    (communication,) = selected["result"][0]["COMMUNICATIONS"]
    assert communication["TYPE"] == "IM" and communication["VALUE"] == f"imol|{chat['user_code']}"
    assert communication["ENTITY_TYPE_ID"] == "1"


async def test_owner_filter_is_the_owner_and_bindings_any_binding(
    running: Running, token: str
) -> None:
    """crm.activity.list: OWNER_* are the activity's own fields, BINDINGS (an array of
    OWNER_TYPE_ID / OWNER_ID objects) reaches every object it is bound to."""
    chat = await running.chat(
        line_id=2, activity_owner="contact", messages=[{"author": "visitor", "text": "hi"}]
    )
    deal = {"OWNER_TYPE_ID": 2, "OWNER_ID": chat["deal_id"]}
    contact = {"OWNER_TYPE_ID": 3, "OWNER_ID": chat["contact_id"]}

    async def ids(**filter_: Any) -> list[str]:
        return [
            r["ID"]
            for r in (await running.ok("crm.activity.list", token, filter=filter_))["result"]
        ]

    activity = str(chat["activity_id"])
    assert await ids(**deal) == [] and await ids(**contact) == [activity]
    assert await ids(BINDINGS=[deal]) == [activity] == await ids(BINDINGS=[contact])
    assert await ids(BINDINGS=[{"OWNER_TYPE_ID": 2}]) == [activity]
    assert await ids(BINDINGS=[{"OWNER_TYPE_ID": 1}]) == []
    # Two pairs that both bind it list it twice, as the docs warn.
    assert await ids(BINDINGS=[{"OWNER_TYPE_ID": 2}, {"OWNER_TYPE_ID": 3}]) == [activity] * 2
    bound = await running.ok("crm.activity.binding.list", token, activityId=chat["activity_id"])
    assert bound["result"] == [
        {"entityTypeId": 3, "entityId": chat["contact_id"]},
        {"entityTypeId": 2, "entityId": chat["deal_id"]},
    ]
    assert set(bound["result"][0]) == set(
        fixture_json("crm.activity.binding.list.json")["result"][0]
    )

    usual = await running.chat(line_id=2, messages=[{"author": "visitor", "text": "hi"}])
    owned = {"OWNER_TYPE_ID": 2, "OWNER_ID": usual["deal_id"]}
    assert await ids(**owned) == [str(usual["activity_id"])] == await ids(BINDINGS=[owned])
    done = await running.ok("crm.activity.list", token, filter={"COMPLETED": "Y"})
    assert done["total"] == 0


async def test_bindings_filter_in_a_batch_command(running: Running, token: str) -> None:
    """The plugin sends BINDINGS form-encoded inside batch commands."""
    chat = await running.chat(
        line_id=2, activity_owner="contact", messages=[{"author": "visitor", "text": "hi"}]
    )
    body = await running.ok(
        "batch",
        token,
        halt=0,
        cmd={
            "acts": "crm.activity.list?filter[BINDINGS][0][OWNER_TYPE_ID]=2"
            f"&filter[BINDINGS][0][OWNER_ID]={chat['deal_id']}",
            "bound": "crm.activity.binding.list?activityId=$result[acts][0][ID]",
        },
    )
    assert [a["ID"] for a in body["result"]["result"]["acts"]] == [str(chat["activity_id"])]
    assert [b["entityTypeId"] for b in body["result"]["result"]["bound"]] == [3, 2]


async def test_binding_list_errors(running: Running, token: str) -> None:
    missing = await running.rest("crm.activity.binding.list", token)
    assert missing.status_code == 400 and missing.json()["error"] == "100"
    unknown = await running.rest("crm.activity.binding.list", token, activityId=999999)
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "NOT_FOUND", "error_description": "Element not found"}
