"""Finding the chat of a CRM record, the dialog and the transcript — including the traps."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Running, fixture_json

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello, is delivery free?"}]
ANSWER = [{"author": "operator", "text": "Yes, from 3000 roubles."}]


async def chats_of(
    running: Running, token: str, lead_id: int, **extra: str
) -> list[dict[str, str]]:
    body = await running.ok(
        "imopenlines.crm.chat.get", token, CRM_ENTITY_TYPE="lead", CRM_ENTITY=lead_id, **extra
    )
    rows: list[dict[str, str]] = body["result"]
    return rows


async def test_active_only_default_hides_new_and_closed_sessions(
    running: Running, token: str
) -> None:
    chat = await running.chat(connector="livechat", messages=HELLO)
    lead = chat["lead_id"]
    row = {
        "CHAT_ID": str(chat["chat_id"]),
        "CONNECTOR_ID": "livechat",
        "CONNECTOR_TITLE": "Live Chat",
    }
    assert list(row) == list(fixture_json("imopenlines.crm.chat.get.json")["result"][0])

    # the lead exists from the first message, but the session is still NEW (status 0)
    assert await chats_of(running, token, lead) == []
    assert await chats_of(running, token, lead, ACTIVE_ONLY="N") == [row]

    await running.client.post(
        f"/sandbox/api/chats/{chat['chat_id']}/messages", json={"messages": ANSWER}
    )
    assert await chats_of(running, token, lead) == [row]  # ANSWER (10) is "active"

    await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    assert await chats_of(running, token, lead) == []  # CLOSE (60) is not
    assert await chats_of(running, token, lead, ACTIVE_ONLY="N") == [row]


async def test_chat_get_for_deals_and_contacts(running: Running, token: str) -> None:
    chat = await running.chat(connector="vkgroup", line_id=2, messages=HELLO + ANSWER)
    for kind, entity in (("deal", chat["deal_id"]), ("CONTACT", chat["contact_id"])):
        body = await running.ok(
            "imopenlines.crm.chat.get", token, CRM_ENTITY_TYPE=kind, CRM_ENTITY=entity
        )
        assert body["result"] == [
            {"CHAT_ID": str(chat["chat_id"]), "CONNECTOR_ID": "vkgroup", "CONNECTOR_TITLE": "VK"}
        ]


async def test_get_last_id(running: Running, token: str) -> None:
    chat = await running.chat(messages=HELLO)
    body = await running.ok(
        "imopenlines.crm.chat.getLastId", token, CRM_ENTITY_TYPE="LEAD", CRM_ENTITY=chat["lead_id"]
    )
    assert body["result"] == chat["chat_id"]
    seeded = min(running.sandbox.portal.leads)  # a lead from a call has no chat
    missing = await running.rest(
        "imopenlines.crm.chat.getLastId", token, CRM_ENTITY_TYPE="LEAD", CRM_ENTITY=seeded
    )
    assert (missing.status_code, missing.json()) == (
        400,
        fixture_json("imopenlines.crm.chat.getLastId.error.json"),
    )


async def test_dialog_get_has_the_keys_of_the_example(running: Running, token: str) -> None:
    chat = await running.chat(connector="livechat", messages=HELLO + ANSWER)
    dialog = (await running.ok("imopenlines.dialog.get", token, CHAT_ID=chat["chat_id"]))["result"]
    assert set(dialog) == set(fixture_json("imopenlines.dialog.get.json")["result"])
    assert dialog["entity_type"] == "LINES" and dialog["entity_id"] == chat["user_code"]
    fields = dialog["entity_data_1"].split("|")
    assert fields[:3] == ["Y", "LEAD", str(chat["lead_id"])]
    assert fields[5] == str(chat["session_id"])  # the session id in the 6th place
    assert dialog["entity_data_2"] == f"LEAD|{chat['lead_id']}|COMPANY|0|CONTACT|0|DEAL|0"
    assert (
        dialog["dialog_id"] == f"chat{chat['chat_id']}" and dialog["owner"] == chat["operator_id"]
    )
    # livechat: the third part of the code is the widget's own chat, not the operator chat
    assert chat["user_code"] == f"livechat|1|{chat['client_chat_id']}|{chat['guest_user_id']}"
    assert chat["client_chat_id"] != chat["chat_id"]


async def test_dialog_get_by_every_identifier(running: Running, token: str) -> None:
    chat = await running.chat(connector="telegrambot", messages=HELLO)
    for params in (
        {"DIALOG_ID": f"chat{chat['chat_id']}"},
        {"SESSION_ID": chat["session_id"]},
        {"USER_CODE": chat["user_code"]},
        {"USER_CODE": "imol|" + chat["user_code"]},
    ):
        dialog = (await running.ok("imopenlines.dialog.get", token, **params))["result"]
        assert dialog["id"] == chat["chat_id"], params
    empty = await running.rest("imopenlines.dialog.get", token)
    assert empty.json() == {
        "error": "DIALOG_ID_EMPTY",
        "error_description": "Dialog ID can't be empty",
    }
    unknown = await running.rest("imopenlines.dialog.get", token, CHAT_ID=1)
    assert unknown.status_code == 400 and unknown.json()["error"] == "ACCESS_ERROR"


async def test_dialog_without_a_visitor_message_has_no_crm_yet(
    running: Running, token: str
) -> None:
    chat = await running.chat(connector="livechat")
    assert chat["lead_id"] is None and chat["activity_id"] is None
    dialog = (await running.ok("imopenlines.dialog.get", token, CHAT_ID=chat["chat_id"]))["result"]
    assert dialog["entity_data_1"].startswith("N|NONE|0|N|N|")
    assert dialog["entity_data_2"] == ""


async def test_session_history_has_the_shape_of_the_example(running: Running, token: str) -> None:
    chat = await running.chat(
        connector="livechat",
        visitor={"name": "John", "phone": "+11234567890"},
        messages=[
            {"author": "visitor", "text": "Hi there"},
            {"author": "operator", "text": "Open the [b]task card[/b]"},
        ],
    )
    body = await running.ok("imopenlines.session.history.get", token, SESSION_ID=chat["session_id"])
    history = body["result"]
    example = fixture_json("imopenlines.session.history.get.json")["result"]
    assert list(history) == list(example)
    assert (history["chatId"], history["sessionId"]) == (chat["chat_id"], chat["session_id"])
    example_message = next(iter(example["message"].values()))
    for key, message in history["message"].items():
        assert key == message["id"] and set(message) == set(example_message)
    ids = history["usersMessage"][f"chat{chat['chat_id']}"]
    assert ids == sorted(ids, key=int, reverse=True) and ids == list(history["message"])

    messages = [history["message"][i] for i in reversed(ids)]
    texts = [(m["senderid"], m["text"]) for m in messages]
    guest, operator = str(chat["guest_user_id"]), str(chat["operator_id"])
    assert texts == [
        (guest, "Hi there"),
        ("0", "[b]A new lead has been created[/b]"),
        (operator, "Open the [b]task card[/b]"),
    ]
    assert messages[2]["textlegacy"] == "Open the <b>task card</b>"
    attach = messages[1]["params"]["attach"][0]
    assert attach["blocks"][0]["link"][0]["link"] == f"/crm/lead/details/{chat['lead_id']}/"

    users = history["users"]
    example_user = set(next(iter(example["users"].values())))
    assert set(users) == {guest, operator}
    assert all(set(u) == example_user for u in users.values())
    assert (users[guest]["connector"], users[guest]["externalAuthId"]) == (True, "imconnector")
    assert (users[operator]["connector"], users[operator]["bot"]) == (False, False)
    (chat_json,) = history["chat"].values()
    assert set(chat_json) == set(next(iter(example["chat"].values())))
    assert chat_json["entityId"] == chat["user_code"]
    assert history["files"] == []


async def test_history_errors_and_the_chat_id_trap(running: Running, token: str) -> None:
    missing = await running.rest("imopenlines.session.history.get", token)
    assert missing.json() == fixture_json("imopenlines.session.history.get.error.json")
    chat = await running.chat(messages=HELLO + ANSWER)
    # by CHAT_ID alone only a chat member may read; the app's admin is not one
    by_chat = await running.rest("imopenlines.session.history.get", token, CHAT_ID=chat["chat_id"])
    assert by_chat.status_code == 400 and by_chat.json()["error"] == "ACCESS_DENIED"
    operator_token = (await running.authorize(user_id=chat["operator_id"]))["access_token"]
    own = await running.ok(
        "imopenlines.session.history.get", operator_token, CHAT_ID=chat["chat_id"]
    )
    assert own["result"]["sessionId"] == chat["session_id"]


async def test_im_chat_get_finds_the_operator_chat(running: Running, token: str) -> None:
    chat = await running.chat(connector="telegrambot", messages=HELLO)
    body = await running.ok("im.chat.get", token, ENTITY_TYPE="LINES", ENTITY_ID=chat["user_code"])
    assert body["result"] == {"ID": chat["chat_id"]}
    assert set(body) == set(fixture_json("im.chat.get.json"))
    nothing = await running.ok(
        "im.chat.get", token, ENTITY_TYPE="LINES", ENTITY_ID="telegrambot|1|0|0"
    )
    assert nothing["result"] is None
    crm = await running.ok(
        "im.chat.get", token, ENTITY_TYPE="CRM", ENTITY_ID=f"LEAD|{chat['lead_id']}"
    )
    assert crm["result"] is None  # not the open-line chat


async def test_imconnector_list(running: Running, token: str) -> None:
    result = (await running.ok("imconnector.list", token))["result"]
    example = fixture_json("imconnector.list.json")["result"]
    for code in ("livechat", "telegrambot", "network"):
        assert result[code] == example[code]
    assert {"whatsappbyedna", "vkgroup", "avito"} <= set(result)
