"""The parts an appeal is made of: transcript, contact, attribution (from official examples)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from b24_openlines_plugin.appeals import contact_of, normalize_phone, utm_of
from b24_openlines_plugin.attribution import attribute
from b24_openlines_plugin.bitrix.dialogs import is_open_lines
from b24_openlines_plugin.bitrix.wire import parse_crm_entity, parse_session_history
from b24_openlines_plugin.settings import B24Settings, MessengerRow
from b24_openlines_plugin.transcript import bbcode_to_text, messages_of, transcript_text
from hooks.models import SessionBinding, Utm, VisitorSession
from tests.examples import load_json

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("bbcode", "text"),
    [
        ("[b]A new lead has been created[/b]", "A new lead has been created"),
        (
            "See [url=https://shop.example.ru/item]the item[/url][br]thanks",
            "See the item (https://shop.example.ru/item)\nthanks",
        ),
        ("[url]https://x.ru[/url]", "https://x.ru"),
        ("[USER=5]Anna[/USER], hello", "Anna, hello"),
        ("Price &lt; 100 &amp; [i]free[/i]", "Price < 100 & free"),
        (
            "<script>alert(1)</script>",
            "<script>alert(1)</script>",
        ),  # text stays text; pages escape it
        ("[color=#ff0000][size=12]red[/size][/color]", "red"),
    ],
)
def test_bbcode_becomes_plain_text(bbcode: str, text: str) -> None:
    assert bbcode_to_text(bbcode) == text


def test_official_history_becomes_messages_oldest_first() -> None:
    history = parse_session_history(load_json("imopenlines.session.history.get.json")["result"])
    messages = messages_of(history)
    assert [(m.author, m.text) for m in messages] == [
        # The system message's attach block (a contact form) is part of what it says.
        ("system", "A new lead has been created\nName: John\nPhone: +11234567890"),
        ("operator", "Open the task card and click Observers"),
    ]
    assert messages[0].at.utcoffset() is not None
    assert transcript_text(messages, "en") == "Operator: Open the task card and click Observers"
    assert transcript_text(messages, "ru") == "Оператор: Open the task card and click Observers"


def test_official_lead_gives_contact_and_is_an_open_lines_lead() -> None:
    lead = parse_crm_entity(load_json("crm.lead.get.json")["result"])
    assert is_open_lines(lead)  # its IM field is imol|livechat|1|67|21
    contact = contact_of(lead)
    assert contact.phones == ["+15454777777"] and contact.emails == []
    assert utm_of(lead) == Utm()


def test_official_contact_gives_name_phones_and_emails() -> None:
    contact = contact_of(parse_crm_entity(load_json("crm.contact.get.json")["result"]))
    assert contact.name and contact.phones and contact.emails
    assert all(e == e.lower() for e in contact.emails)


def test_official_deal_is_not_an_open_lines_entity() -> None:
    deal = parse_crm_entity(load_json("crm.deal.get.json")["result"])
    assert not is_open_lines(deal)  # SOURCE_ID CALLBACK, no IM field
    assert utm_of(deal).utm_source == "google"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("8 (999) 123-45-67", "+79991234567"),
        ("+7 999 123 45 67", "+79991234567"),
        ("9991234567", "+79991234567"),
        ("+1 (545) 477-7777", "+15454777777"),
        ("ext. 12", "ext. 12"),
    ],
)
def test_phones_are_e164_where_clear(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


class Sessions:
    """The host's session store, as a plain in-memory one (it is a host service, not ours)."""

    def __init__(self, visits: list[VisitorSession], bindings: dict[str, str]) -> None:
        self.visits = {v.id: v for v in visits}
        self.bindings = bindings

    async def get(self, session_id: str) -> VisitorSession | None:
        return self.visits.get(session_id)

    async def bind(self, integration_id: int, external_id: str, session_id: str) -> SessionBinding:
        raise AssertionError("attribution only reads")

    async def binding(self, integration_id: int, external_id: str) -> SessionBinding | None:
        sid = self.bindings.get(external_id)
        return (
            SessionBinding(
                integration_id=integration_id,
                external_id=external_id,
                session_id=sid,
                created_at=datetime.now(UTC),
            )
            if sid
            else None
        )


VISIT = VisitorSession(
    id="v1",
    created_at=datetime.now(UTC),
    landing_url="https://shop.example.ru/?utm_campaign=spring",
    site_id=2,
    source_id=1,
    campaign_id=1,
    utm=Utm(utm_source="yandex", utm_campaign="spring"),
)
SOURCE = B24Settings(
    active=True,
    traffic_type="source",
    source_id=5,
    site_id=1,
    messenger_map={"telegrambot": MessengerRow(source_id=4)},
)
CAMPAIGN = B24Settings(
    active=True,
    traffic_type="campaign",
    campaign_id=3,
    messenger_map={"viber": MessengerRow(campaign_id=2)},
)


async def test_the_visit_the_custom_data_names_wins() -> None:
    sessions = Sessions([VISIT], {})
    a = await attribute(
        SOURCE, sessions, connector="livechat", crm_utm=Utm(), custom_data_visit="v1"
    )
    assert (a.method, a.session_id, a.campaign_id, a.source_id, a.site_id) == (
        "session",
        "v1",
        1,
        1,
        2,
    )
    assert a.utm.utm_campaign == "spring"


async def test_a_binding_alone_never_attributes() -> None:
    """A site script's report is a claim anyone can send: without the dialog's custom data
    naming the visit, the dialog counts for its channel's mapping or the default."""
    sessions = Sessions([VISIT], {"42": "v1"})
    site = await attribute(SOURCE, sessions, connector="livechat", crm_utm=Utm())
    telegram = await attribute(SOURCE, sessions, connector="telegrambot", crm_utm=Utm())
    assert (site.method, telegram.method) == ("default", "messenger")
    assert site.session_id is None and telegram.session_id is None


async def test_messenger_mapping_then_default_for_source_traffic() -> None:
    sessions = Sessions([], {})
    mapped = await attribute(
        SOURCE,
        sessions,
        connector="telegrambot",
        crm_utm=Utm(),
        custom_data_visit="gone",  # a visit the host no longer has
    )
    assert (mapped.method, mapped.source_id, mapped.site_id) == ("messenger", 4, 1)  # default site
    default = await attribute(
        SOURCE,
        sessions,
        connector="whatsappbyedna",
        crm_utm=Utm(utm_source="x"),
    )
    assert (default.method, default.source_id, default.site_id) == ("default", 5, 1)
    assert default.utm.utm_source == "x"  # the lead's own UTM kept


async def test_messenger_mapping_then_default_for_campaign_traffic() -> None:
    sessions = Sessions([], {})
    mapped = await attribute(
        CAMPAIGN,
        sessions,
        connector="viber",
        crm_utm=Utm(),
    )
    assert (mapped.method, mapped.campaign_id, mapped.source_id) == ("messenger", 2, None)
    default = await attribute(
        CAMPAIGN,
        sessions,
        connector="vkgroup",
        crm_utm=Utm(),
    )
    assert (default.method, default.campaign_id, default.traffic_type) == ("default", 3, "campaign")
