"""Every way a chat starts, continues, closes and comes back — and what Bitrix24 makes of it."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import HOOKS, Running

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]
ALL_CRM = ["ONCRMLEADADD", "ONCRMDEALADD", "ONCRMCONTACTADD", "ONCRMCONTACTUPDATE",
           "ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"]  # fmt: skip


@pytest.fixture
async def events(running: Running) -> Running:
    response = await running.client.post(
        "/sandbox/api/outgoing-webhooks", json={"handler": HOOKS + "/all", "events": ALL_CRM}
    )
    assert response.status_code == 201
    return running


async def fired(running: Running) -> list[tuple[str, int]]:
    await running.settled()
    return [(f["event"], int(f["data[FIELDS][ID]"])) for f in running.site.forms()]


async def test_livechat_with_contacts(events: Running, token: str) -> None:
    running = events
    chat = await running.chat(
        connector="livechat",
        visitor={"name": "Elena Smirnova", "phone": "+79161234567", "email": "elena@example.com"},
        messages=HELLO,
    )
    assert chat["session_status"] == 0 and chat["deal_id"] is None
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert (lead["NAME"], lead["LAST_NAME"], lead["SOURCE_ID"]) == (
        "Elena",
        "Smirnova",
        "1|OPENLINE",
    )
    assert lead["TITLE"] == "Elena Smirnova - Website and messengers"
    assert [m["VALUE"] for m in lead["PHONE"] + lead["EMAIL"]] == [
        "+79161234567",
        "elena@example.com",
    ]
    assert await fired(running) == [
        ("ONCRMLEADADD", chat["lead_id"]),
        ("ONCRMACTIVITYADD", chat["activity_id"]),
    ]


async def test_livechat_anonymous_guest(running: Running, token: str) -> None:
    chat = await running.chat(connector="livechat", visitor=None, messages=HELLO)
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert lead["NAME"] == "" and lead["LAST_NAME"] is None
    assert lead["HAS_PHONE"] == "N" and "PHONE" not in lead and "EMAIL" not in lead
    assert lead["TITLE"] == "Guest - Website and messengers"
    assert lead["IM"][0]["VALUE_TYPE"] == "OPENLINE"


async def test_custom_data_is_the_first_message(running: Running, token: str) -> None:
    blocks = [
        {"USER": {"NAME": "John Smith"}},
        {"GRID": [{"NAME": "Visit", "VALUE": "host-session-42", "DISPLAY": "LINE"}]},
        {"MESSAGE": "analytics:host-session-42"},
    ]
    chat = await running.chat(custom_data=blocks, messages=HELLO)
    history = await running.ok(
        "imopenlines.session.history.get", token, SESSION_ID=chat["session_id"]
    )
    messages = history["result"]["message"]
    first = messages[min(messages, key=int)]
    # As Bitrix24 writes it: a system message titled in the portal's language, the data in
    # its attach (imopenlines Connector::addMessage).
    assert first["senderid"] == "0" and first["text"] == "[B]Data received:[/B]"
    assert first["params"]["componentId"] == "HiddenMessage"
    assert first["params"]["attach"][0]["blocks"] == [
        {"user": [{"name": "John Smith"}]},
        {"grid": [{"name": "Visit", "value": "host-session-42", "display": "LINE"}]},
        {"message": "analytics:host-session-42"},
    ]
    plain = await running.chat(
        custom_data="Site: https://shop.example/?utm_source=ya", messages=HELLO
    )
    history = await running.ok(
        "imopenlines.session.history.get", token, SESSION_ID=plain["session_id"]
    )
    messages = history["result"]["message"]
    assert messages[min(messages, key=int)]["params"]["attach"][0]["blocks"] == [
        {"message": "Site: https://shop.example/?utm_source=ya"}
    ]


async def test_telegram(running: Running, token: str) -> None:
    chat = await running.chat(connector="telegrambot", visitor={"name": "Oleg"}, messages=HELLO)
    connector, line, external, guest = chat["user_code"].split("|")
    assert (connector, line, guest) == ("telegrambot", "1", str(chat["guest_user_id"]))
    assert external.isdigit() and int(external) != chat["chat_id"]
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert lead["SOURCE_ID"] == "1|TELEGRAM" and lead["IM"][0]["VALUE_TYPE"] == "TELEGRAM"


async def test_whatsapp(running: Running, token: str) -> None:
    chat = await running.chat(
        connector="whatsappbyedna", visitor={"phone": "+79261234567"}, messages=HELLO
    )
    assert chat["user_code"].split("|")[2] == "79261234567"
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert lead["SOURCE_ID"] == "1|WHATSAPPBYEDNA" and lead["IM"][0]["VALUE_TYPE"] == "IMOL"
    assert lead["PHONE"][0]["VALUE"] == "+79261234567"


async def test_vk_source_and_type(running: Running, token: str) -> None:
    chat = await running.chat(connector="vkgroup", messages=HELLO)
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert lead["SOURCE_ID"] == "1|VK" and lead["IM"][0]["VALUE_TYPE"] == "VK"


async def test_deal_line_creates_contact_and_deal(events: Running, token: str) -> None:
    running = events
    chat = await running.chat(
        connector="livechat", line_id=2, visitor={"name": "Ivan", "phone": "+79035550011"},
        messages=HELLO,
    )  # fmt: skip
    assert chat["lead_id"] is None and chat["deal_id"] and chat["contact_id"]
    deal = (await running.ok("crm.deal.get", token, id=chat["deal_id"]))["result"]
    assert deal["SOURCE_ID"] == "2|OPENLINE" and deal["CONTACT_ID"] == str(chat["contact_id"])
    assert deal["TITLE"] == "Ivan - Sales"
    contact = (await running.ok("crm.contact.get", token, id=chat["contact_id"]))["result"]
    assert contact["PHONE"][0]["VALUE"] == "+79035550011" and contact["SOURCE_ID"] == "2|OPENLINE"
    history = await running.ok(
        "imopenlines.session.history.get", token, SESSION_ID=chat["session_id"]
    )
    texts = [m["text"] for m in history["result"]["message"].values()]
    assert "[b]A new deal has been created[/b]" in texts
    assert await fired(running) == [
        ("ONCRMCONTACTADD", chat["contact_id"]),
        ("ONCRMDEALADD", chat["deal_id"]),
        ("ONCRMACTIVITYADD", chat["activity_id"]),
    ]


async def test_lead_appears_at_the_first_visitor_message(events: Running, token: str) -> None:
    running = events
    chat = await running.chat(connector="telegrambot")
    assert chat["lead_id"] is None and await fired(running) == []
    later = await running.client.post(
        f"/sandbox/api/chats/{chat['chat_id']}/messages",
        json={"messages": [{"author": "visitor", "text": "Are you there?"}]},
    )
    lead_id = later.json()["lead_id"]
    assert lead_id and await fired(running) == [
        ("ONCRMLEADADD", lead_id),
        ("ONCRMACTIVITYADD", later.json()["activity_id"]),
    ]


async def test_statuses_follow_the_conversation(running: Running) -> None:
    chat = await running.chat(messages=HELLO)
    assert chat["session_status"] == 0  # NEW
    path = f"/sandbox/api/chats/{chat['chat_id']}/messages"
    status = []
    for author in ("operator", "visitor", "operator"):
        response = await running.client.post(
            path, json={"messages": [{"author": author, "text": "..."}]}
        )
        status.append(response.json()["session_status"])
    assert status == [10, 25, 40]  # ANSWER, CLIENT_AFTER_OPERATOR, OPERATOR
    closed = await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    assert closed.json()["session_status"] == 60
    again = await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    assert again.status_code == 409
    late = await running.client.post(path, json={"messages": [{"author": "visitor", "text": "?"}]})
    assert late.status_code == 409


async def test_close_completes_the_activity(events: Running, token: str) -> None:
    running = events
    chat = await running.chat(messages=HELLO)
    running.clock.advance(300)
    await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    (activity,) = (
        await running.ok("crm.activity.list", token, filter={"ID": chat["activity_id"]})
    )["result"]
    assert activity["COMPLETED"] == "Y" and activity["STATUS"] == "2"
    assert activity["END_TIME"] == "2026-09-21T17:18:20+03:00"
    assert activity["START_TIME"] == "2026-09-21T17:13:20+03:00"
    assert (await fired(running))[-1] == ("ONCRMACTIVITYUPDATE", chat["activity_id"])
    history = await running.ok(
        "imopenlines.session.history.get", token, SESSION_ID=chat["session_id"]
    )
    last = history["result"]["message"][
        history["result"]["usersMessage"][f"chat{chat['chat_id']}"][0]
    ]
    assert last["senderid"] == "0"


async def test_chat_started_closed(running: Running, token: str) -> None:
    chat = await running.chat(messages=HELLO, close=True)
    assert chat["session_status"] == 60
    listed = await running.ok("crm.activity.list", token, filter={"COMPLETED": "Y"})
    assert [a["ID"] for a in listed["result"]] == [str(chat["activity_id"])]


async def test_returning_customer_gets_a_new_lead(events: Running, token: str) -> None:
    running = events
    first = await running.chat(connector="telegrambot", messages=HELLO, close=True)
    running.clock.advance(1800)
    response = await running.client.post(
        f"/sandbox/api/chats/{first['chat_id']}/sessions",
        json={"messages": [{"author": "visitor", "text": "Me again"}]},
    )
    assert response.status_code == 201
    second = response.json()
    assert second["chat_id"] == first["chat_id"] and second["user_code"] == first["user_code"]
    assert second["session_id"] != first["session_id"]
    assert second["lead_id"] != first["lead_id"] and second["activity_id"] != first["activity_id"]
    assert second["sessions"] == [first["session_id"], second["session_id"]]
    events_fired = await fired(running)
    assert events_fired[-2:] == [
        ("ONCRMLEADADD", second["lead_id"]),
        ("ONCRMACTIVITYADD", second["activity_id"]),
    ]
    dialog = await running.ok("imopenlines.dialog.get", token, CHAT_ID=first["chat_id"])
    assert dialog["result"]["entity_data_1"].split("|")[5] == str(second["session_id"])


async def test_returning_customer_without_a_new_lead(events: Running, token: str) -> None:
    running = events
    first = await running.chat(connector="telegrambot", messages=HELLO, close=True)
    leads_before = len(running.sandbox.portal.leads)
    response = await running.client.post(
        f"/sandbox/api/chats/{first['chat_id']}/sessions",
        json={"messages": [{"author": "visitor", "text": "Me again"}], "new_lead": False},
    )
    second = response.json()
    assert (
        second["lead_id"] == first["lead_id"] and len(running.sandbox.portal.leads) == leads_before
    )
    assert (await fired(running))[-1] == ("ONCRMACTIVITYADD", second["activity_id"])
    assert "ONCRMLEADADD" not in [e for e, _ in (await fired(running))[2:]]
    sessions = await running.ok(
        "crm.activity.list",
        token,
        filter={"OWNER_TYPE_ID": 1, "OWNER_ID": first["lead_id"]},
        order={"ID": "ASC"},
    )
    assert [a["ASSOCIATED_ENTITY_ID"] for a in sessions["result"]] == [
        str(first["session_id"]),
        str(second["session_id"]),
    ]
    last = await running.ok(
        "imopenlines.crm.chat.getLastId", token, CRM_ENTITY_TYPE="lead", CRM_ENTITY=first["lead_id"]
    )
    assert last["result"] == first["chat_id"]


async def test_a_new_session_needs_the_last_one_closed(running: Running) -> None:
    chat = await running.chat(messages=HELLO)
    response = await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/sessions", json={})
    assert response.status_code == 409


async def test_known_contact_from_a_new_messenger(events: Running, token: str) -> None:
    running = events
    deal_chat = await running.chat(
        connector="livechat", line_id=2, visitor={"name": "Nina Popova"}, messages=HELLO
    )
    contact_id = deal_chat["contact_id"]
    repeat = await running.chat(
        connector="telegrambot", line_id=1, returning_contact_id=contact_id, messages=HELLO
    )
    lead = (await running.ok("crm.lead.get", token, id=repeat["lead_id"]))["result"]
    assert lead["CONTACT_ID"] == str(contact_id) and lead["IS_RETURN_CUSTOMER"] == "Y"
    assert (lead["NAME"], lead["LAST_NAME"]) == ("Nina", "Popova")
    contact = (await running.ok("crm.contact.get", token, id=contact_id))["result"]
    assert {m["VALUE"] for m in contact["IM"]} == {
        f"imol|{deal_chat['user_code']}",
        f"imol|{repeat['user_code']}",
    }
    quiet = await running.chat(
        connector="whatsappbyedna",
        visitor={"phone": "+79001112233"},
        returning_contact_id=contact_id,
        new_lead=False,
        messages=HELLO,
    )
    assert quiet["lead_id"] is None and quiet["contact_id"] == contact_id
    activities = await running.ok(
        "crm.activity.list",
        token,
        filter={"BINDINGS": [{"OWNER_TYPE_ID": 3, "OWNER_ID": contact_id}]},
    )
    assert activities["total"] == 3
    owned = await running.ok(
        "crm.activity.list", token, filter={"OWNER_TYPE_ID": 3, "OWNER_ID": contact_id}
    )
    assert [a["ID"] for a in owned["result"]] == [str(quiet["activity_id"])]
    quiet_events = (await fired(running))[-2:]
    assert quiet_events == [
        ("ONCRMCONTACTUPDATE", contact_id),
        ("ONCRMACTIVITYADD", quiet["activity_id"]),
    ]
    chats = await running.ok(
        "imopenlines.crm.chat.get", token, CRM_ENTITY_TYPE="contact", CRM_ENTITY=contact_id,
        ACTIVE_ONLY="N",
    )  # fmt: skip
    assert len(chats["result"]) == 3


async def test_returning_deal_customer_gets_a_new_deal_not_a_new_contact(
    events: Running, token: str
) -> None:
    running = events
    first = await running.chat(line_id=2, connector="telegrambot", messages=HELLO, close=True)
    response = await running.client.post(
        f"/sandbox/api/chats/{first['chat_id']}/sessions", json={"messages": HELLO}
    )
    second = response.json()
    assert second["contact_id"] == first["contact_id"] and second["deal_id"] != first["deal_id"]
    deal = (await running.ok("crm.deal.get", token, id=second["deal_id"]))["result"]
    assert deal["IS_RETURN_CUSTOMER"] == "Y"
    contact_adds = [e for e, _ in await fired(running) if e == "ONCRMCONTACTADD"]
    assert len(contact_adds) == 1


async def test_operators_are_portal_users(running: Running) -> None:
    portal = (await running.client.get("/sandbox/api/portal")).json()
    operators = {o["id"]: o["name"] for o in portal["operators"]}
    assert len(operators) >= 2
    chosen = await running.chat(operator_id=3, messages=HELLO)
    assert chosen["operator_id"] == 3
    rotated = {(await running.chat(messages=HELLO))["operator_id"] for _ in range(4)}
    assert rotated == set(operators)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"connector": "pigeon"}, 422),
        ({"line_id": 9}, 422),
        ({"returning_contact_id": 1}, 404),
        ({"operator_id": 1}, 422),
        ({"messages": [{"author": "bot", "text": "x"}]}, 422),
    ],
)
async def test_bad_chat_requests(running: Running, body: dict[str, object], status: int) -> None:
    assert (await running.client.post("/sandbox/api/chats", json=body)).status_code == status
