"""The demo site's messenger buttons and the messenger emulator they open, over HTTP."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest

from b24_openlines_plugin.sandbox.messenger import MessengerLink, parse_link
from tests.sandbox.conftest import HOOKS, Running

pytestmark = pytest.mark.anyio

TELEGRAM = "https://t.me/garden_shop_bot?start=K7PM2QXA"
WHATSAPP = "https://wa.me/79990001122?text=" + quote("Здравствуйте! Пишу с сайта [#K7PM2QXA]")
VIBER = "viber://pa?chatURI=gardenshop&text=" + quote("Вопрос [#K7PM2QXA]")


@pytest.mark.parametrize(
    ("link", "meant"),
    [
        ("https://t.me/garden_shop_bot", MessengerLink("telegram", "garden_shop_bot")),
        (TELEGRAM, MessengerLink("telegram", "garden_shop_bot", start="K7PM2QXA")),
        ("http://telegram.me/Shop_Bot/?start=x", MessengerLink("telegram", "Shop_Bot", start="x")),
        (
            "tg://resolve?domain=shop_bot&start=Q2",
            MessengerLink("telegram", "shop_bot", start="Q2"),
        ),
        ("https://wa.me/79990001122", MessengerLink("whatsapp", "79990001122")),
        (
            "https://api.whatsapp.com/send?phone=%2B7+999+000-11-22&text=Hi+there",
            MessengerLink("whatsapp", "79990001122", text="Hi there"),
        ),
        (
            "whatsapp://send?phone=79990001122&text=a",
            MessengerLink("whatsapp", "79990001122", text="a"),
        ),
        ("https://web.whatsapp.com/send?phone=7999", MessengerLink("whatsapp", "7999")),
        (VIBER, MessengerLink("viber", "gardenshop", text="Вопрос [#K7PM2QXA]")),
        ("viber://pa?chaturi=shop", MessengerLink("viber", "shop")),
        ("https://example.com/t.me/bot", None),
        ("https://t.me/joinchat/AAAA", None),
        ("https://wa.me/", None),
        ("viber://chat?number=7999", None),
        ("", None),
    ],
)
def test_the_link_forms_the_messengers_document(link: str, meant: MessengerLink | None) -> None:
    assert parse_link(link) == meant


def test_telegram_start_parameters_as_bitrix24_shows_them() -> None:
    assert parse_link(TELEGRAM).start_message == "/start K7PM2QXA"  # type: ignore[union-attr]
    for hidden in ("https://t.me/shop_bot", "https://t.me/shop_bot?start=btrxAbC123"):
        assert parse_link(hidden).start_message is None  # type: ignore[union-attr]


async def test_demo_pages_carry_the_messenger_buttons_and_the_emulator(running: Running) -> None:
    page = (await running.client.get("/site/landing")).text
    hrefs = {
        name: unescape(href) for name, href in re.findall(r'id="write-(\w+)" href="([^"]+)"', page)
    }
    assert hrefs == {
        "telegram": "https://t.me/garden_shop_bot",
        "whatsapp": "https://wa.me/79990001122",
        "viber": "viber://pa?chatURI=gardenshop&text="
        + quote("Здравствуйте! Вопрос по заказу", safe=""),
    }
    assert 'id="write-telegram" href="https://t.me/garden_shop_bot" target="_blank"' in page
    assert page.index('<script src="/sandbox/messenger.js"></script>') > page.index("write-viber")
    script = await running.client.get("/sandbox/messenger.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "window.addEventListener('click', caught, false)" in script.text

    await running.client.put(
        "/sandbox/api/site",
        json={"telegram_bot": "other_bot", "whatsapp_number": "4915100000", "viber_uri": "v.b"},
    )
    other = (await running.client.get("/site/contacts")).text
    assert 'href="https://t.me/other_bot"' in other and 'href="https://wa.me/4915100000"' in other
    assert "viber://pa?chatURI=v.b&amp;text=" in other


async def test_the_settings_page_sets_the_buttons(running: Running) -> None:
    saved = await running.client.post(
        "/sandbox/site/settings",
        data={
            "head_html": "",
            "telegram_bot": "my_shop_bot",
            "whatsapp_number": "",
            "viber_uri": "",
        },
    )
    assert saved.status_code == 303
    site = (await running.client.get("/sandbox/api/site")).json()
    assert (site["telegram_bot"], site["whatsapp_number"]) == ("my_shop_bot", "79990001122")
    page = (await running.client.get("/sandbox/site/settings")).text
    assert 'name="telegram_bot" value="my_shop_bot"' in page
    refused = await running.client.post(
        "/sandbox/site/settings", data={"head_html": "", "whatsapp_number": "+7 (999)"}
    )
    assert refused.status_code == 400 and "whatsapp_number" in refused.text


async def test_the_emulator_shows_each_messengers_first_message(running: Running) -> None:
    telegram = await running.client.get("/sandbox/messenger", params={"link": TELEGRAM})
    assert telegram.status_code == 200
    assert '<code id="messenger-start">/start K7PM2QXA</code>' in telegram.text
    assert 'data-connector="telegrambot"' in telegram.text
    whatsapp = await running.client.get("/sandbox/messenger", params={"link": WHATSAPP})
    assert 'data-connector="whatsappbyedna"' in whatsapp.text
    assert ">Здравствуйте! Пишу с сайта [#K7PM2QXA]</textarea>" in whatsapp.text
    assert 'id="messenger-phone" value="+79990001122"' in whatsapp.text
    viber = await running.client.get("/sandbox/messenger", params={"link": VIBER})
    assert ">Вопрос [#K7PM2QXA]</textarea>" in viber.text and 'data-connector="viber"' in viber.text
    hidden = await running.client.get(
        "/sandbox/messenger", params={"link": "https://t.me/garden_shop_bot?start=btrxQ1"}
    )
    assert 'id="messenger-start"' not in hidden.text
    assert "Bitrix24's own parameter: the chat does not show it" in hidden.text
    other = await running.client.get("/sandbox/messenger", params={"link": "https://vk.me/shop"})
    assert other.status_code == 400 and "Not a Telegram, WhatsApp or Viber link" in other.text


async def send(running: Running, link: str, **form: str) -> dict[str, Any]:
    sent = await running.client.post("/sandbox/messenger", data={"link": link, **form})
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    chat_id = int(re.findall(r"/sandbox/messenger/chats/(\d+)", location)[0])
    page = await running.client.get(location)
    assert page.status_code == 200 and f'data-chat-id="{chat_id}"' in page.text
    chat = (await running.client.get(f"/sandbox/api/chats/{chat_id}")).json()
    assert isinstance(chat, dict)
    return chat


def visitor_texts(running: Running, chat: dict[str, Any]) -> list[str]:
    portal = running.sandbox.portal
    return [
        m.text
        for m in portal.chat_messages(chat["chat_id"])
        if m.author_id == chat["guest_user_id"]
    ]


async def test_send_starts_the_chat_on_the_messengers_connector(running: Running) -> None:
    hook = await running.client.post(
        "/sandbox/api/outgoing-webhooks",
        json={"handler": HOOKS + "/hook", "events": ["ONCRMLEADADD"]},
    )
    assert hook.status_code == 201
    telegram = await send(running, TELEGRAM, name="Анна", message="Есть ли доставка?")
    assert (telegram["connector"], telegram["line_id"]) == ("telegrambot", 1)
    assert visitor_texts(running, telegram) == ["/start K7PM2QXA", "Есть ли доставка?"]
    assert telegram["lead_id"]
    whatsapp = await send(
        running, WHATSAPP, name="Пётр", phone="+7 999 000-11-22", message="Здравствуйте!"
    )
    assert whatsapp["connector"] == "whatsappbyedna" and whatsapp["lead_id"]
    assert visitor_texts(running, whatsapp) == ["Здравствуйте!"]  # the visitor deleted the code
    assert whatsapp["user_code"].startswith("whatsappbyedna|1|79990001122|")
    viber = await send(running, VIBER, message="Вопрос [#K7PM2QXA]")
    assert viber["connector"] == "viber" and visitor_texts(running, viber) == ["Вопрос [#K7PM2QXA]"]
    await running.settled()
    leads = [form["data[FIELDS][ID]"] for form in running.site.forms("/hook")]
    assert leads == [str(c["lead_id"]) for c in (telegram, whatsapp, viber)]


async def test_a_telegram_start_alone_is_a_chat_an_empty_whatsapp_message_is_not(
    running: Running,
) -> None:
    alone = await send(running, TELEGRAM)
    assert visitor_texts(running, alone) == ["/start K7PM2QXA"]
    empty = await running.client.post("/sandbox/messenger", data={"link": WHATSAPP, "message": " "})
    assert empty.status_code == 400 and "WhatsApp sends no empty message" in empty.text
    bare = await running.client.post(
        "/sandbox/messenger", data={"link": "https://t.me/garden_shop_bot", "message": ""}
    )
    assert bare.status_code == 400
    assert len(running.sandbox.portal.chats) == 1
