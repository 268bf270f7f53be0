"""The settings: portal addresses, connectors, and the settings view (form, validation, storage)."""

from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from b24_openlines_plugin.connectors import CONNECTOR_ID_PATTERN, CONNECTORS, connector_label
from b24_openlines_plugin.portal import PortalAddressError, normalize_portal, parse_portal
from b24_openlines_plugin.settings import (
    MASK,
    B24Settings,
    FormMeta,
    build_settings_view,
    stored_settings,
)
from b24_openlines_plugin.site_script import MessengerLink
from hooks.host.urls import PublicUrls
from hooks.models import (
    Campaign,
    Catalog,
    Employee,
    FormField,
    Integration,
    IntegrationHealth,
    Language,
    MessengerLinkFigures,
    SettingsView,
    Site,
    Source,
)
from hooks.services import HostUrls
from tests.conftest import ElsewhereUrls, services_with_urls

STORED_SECRET = "stored-secret-Q7x9"
STORED_TOKEN = "stored-apptoken-K2m4"
NEW_SECRET = "new-secret-Z8w1"
WEBHOOK_TOKEN = "wh-token-unguessable-3f9a"

CATALOG = Catalog(
    employees=[Employee(id=12, name="Анна Петрова"), Employee(id=13, name="Олег")],
    sources=[
        Source(id=5, name="Яндекс Директ", utm_source="yandex"),
        Source(id=6, name="Мессенджеры", utm_source=None),
    ],
    sites=[Site(id=3, name="Магазин", domain="shop.example.ru")],
    campaigns=[
        Campaign(id=40, name="Весна", utm_campaign="spring"),
        Campaign(id=41, name="Лето", utm_campaign=None),
    ],
)

COMPLETE_SOURCE = {
    "client_id": "local.64ccbcf7db22b1.98148679",
    "client_secret": NEW_SECRET,
    "portal": "name.bitrix24.ru",
    "active": "on",
    "entity": "lead",
    "employee_id": "12",
    "traffic_type": "source",
    "source_id": "5",
    "site_id": "3",
    "campaign_id": "",
}


@dataclass(frozen=True)
class UrlsOnly:
    """What the settings use of the host: its URLs and its language."""

    urls: HostUrls
    language: Language = "ru"


HOST = UrlsOnly(PublicUrls("https://analytics.example/"))


def make_integration(
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    connection: dict[str, Any] | None = None,
) -> Integration:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Integration(
        id=7,
        plugin="b24_openlines",
        name="Bitrix24",
        settings=settings or {},
        secrets={key: SecretStr(value) for key, value in (secrets or {}).items()},
        connection=connection or {},
        webhook_token=SecretStr(WEBHOOK_TOKEN),
        created_at=now,
        updated_at=now,
    )


def render(
    submitted: dict[str, Any] | None = None,
    integration: Integration | None = None,
    catalog: Catalog = CATALOG,
) -> SettingsView:
    return build_settings_view(integration or make_integration(), catalog, submitted, HOST)


def field(view: SettingsView, key: str) -> FormField:
    return next(f for section in view.sections for f in section.fields if f.key == key)


def public_json(view: SettingsView) -> str:
    """Everything the host may show or log: the view without the secrets meant for storage."""
    return view.model_copy(update={"store": None}).model_dump_json()


# --- portal addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("name.bitrix24.ru", "https://name.bitrix24.ru"),
        ("b24.example.ru", "https://b24.example.ru"),
        ("https://name.bitrix24.ru/", "https://name.bitrix24.ru"),
        ("https://name.bitrix24.com", "https://name.bitrix24.com"),
        ("  HTTPS://Name.Bitrix24.RU  ", "https://name.bitrix24.ru"),
        (
            "https://name.bitrix24.ru/oauth/authorize/?client_id=local.64ccbcf7db22b1.98148679",
            "https://name.bitrix24.ru",
        ),
        ("b24.example.ru/oauth/authorize?client_id=app.1&state=x", "https://b24.example.ru"),
        ("портал.рф", "https://xn--80awhdgm.xn--p1ai"),
        ("ПОРТАЛ.РФ", "https://xn--80awhdgm.xn--p1ai"),
        ("name.bitrix24.ru:8443", "https://name.bitrix24.ru:8443"),
        ("https://name.bitrix24.ru:443/", "https://name.bitrix24.ru"),
        ("name.bitrix24.ru.", "https://name.bitrix24.ru"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://127.5.0.1", "http://127.5.0.1"),
        ("http://localhost:5000/", "http://localhost:5000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_portal_accepted_forms(raw: str, expected: str) -> None:
    assert normalize_portal(raw) == expected


@pytest.mark.parametrize(
    ("raw", "in_message"),
    [
        ("", "Enter your Bitrix24 portal address"),
        ("   ", "Enter your Bitrix24 portal address"),
        ("YOURDOMAIN.bitrix24.ru", "YOURDOMAIN"),
        ("https://yourdomain.bitrix24.ru/oauth/authorize/?client_id=local.1", "YOURDOMAIN"),
        ("b24.YourDomain.ru", "YOURDOMAIN"),
        ("oauth.bitrix.info", "Bitrix24's authorization server, not your portal"),
        ("https://oauth.bitrix24.tech/oauth/token/", "Bitrix24's authorization server"),
        ("OAUTH.BITRIX.INFO:443", "Bitrix24's authorization server"),
        ("https://user:password@name.bitrix24.ru", "without a user name or password"),
        ("admin@name.bitrix24.ru", "without a user name or password"),
        ("http://name.bitrix24.ru", "over https:// only"),
        ("http://10.0.0.5", "not by IP address"),
        ("ftp://name.bitrix24.ru", "'ftp:' address does not work"),
        ("javascript:alert(1)", "'javascript:' address does not work"),
        ("https:name.bitrix24.ru", "two slashes"),
        ("name .bitrix24.ru", "must not contain spaces"),
        ("name.bitrix24.ru/ crm", "must not contain spaces"),
        ("name_1.bitrix24.ru", "invalid characters"),
        ("na!me.bitrix24.ru", "invalid characters"),
        ("[::1", "invalid characters"),
        ("portal", "with its domain zone"),
        ("https://mybitrix/", "with its domain zone"),
        ("a" * 64 + ".bitrix24.ru", "longer than 63"),
        ("-name.bitrix24.ru", "hyphen"),
        ("name-.bitrix24.ru", "hyphen"),
        ("name..bitrix24.ru", "two dots in a row"),
        (".bitrix24.ru", "two dots in a row"),
        (".".join(["a" * 60] * 5), "too long"),
        ("name.bitrix24.ru:99999", "Invalid port"),
        ("name.bitrix24.ru:abc", "Invalid port"),
        ("name.bitrix24.ru:", "Invalid port"),
        ("name.bitrix24.ru:0", "Invalid port"),
        ("185.12.33.4", "not by IP address"),
        ("https://[2001:db8::1]/", "not by IP address"),
        ("127.1", "not by IP address"),
        ("https://", "is missing"),
    ],
)
def test_portal_rejected_forms_say_what_to_change(raw: str, in_message: str) -> None:
    with pytest.raises(PortalAddressError) as caught:
        normalize_portal(raw)
    message = caught.value.message
    assert in_message in message.en
    assert message.ru and message.ru != message.en
    assert str(caught.value) == message.en


@pytest.mark.parametrize(
    ("raw", "dropped"),
    [
        ("https://x.bitrix24.ru/crm/lead/", "/crm/lead/"),
        ("x.bitrix24.ru/crm/deal/details/12/?IFRAME=Y", "/crm/deal/details/12/?IFRAME=Y"),
        ("https://x.bitrix24.ru/?lang=ru", "?lang=ru"),
        ("https://x.bitrix24.ru#top", "#top"),
        (
            "https://x.bitrix24.ru/oauth/authorize/?client_id=local.1",
            "/oauth/authorize/?client_id=local.1",
        ),
        ("https://x.bitrix24.ru/", ""),
        ("x.bitrix24.ru", ""),
    ],
)
def test_portal_pasted_with_a_path_is_trimmed_to_its_address(raw: str, dropped: str) -> None:
    assert parse_portal(raw) == ("https://x.bitrix24.ru", dropped)
    assert normalize_portal(raw) == "https://x.bitrix24.ru"


def test_portal_refuses_an_oauth_server_from_the_environment_but_not_a_loopback_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", "https://oauth.example.ru,http://127.0.0.1:8100")
    with pytest.raises(PortalAddressError) as caught:
        normalize_portal("oauth.example.ru")
    assert "сервер авторизации Битрикс24, а не ваш портал" in caught.value.message.ru
    # The sandbox is a portal and its own OAuth server.
    assert normalize_portal("http://127.0.0.1:8100") == "http://127.0.0.1:8100"
    monkeypatch.setenv("B24_OAUTH_SERVERS", "not a server")  # refused where OAuth needs it
    with pytest.raises(PortalAddressError):
        normalize_portal("oauth.bitrix.info")


def test_portal_yourdomain_message_in_russian_names_it() -> None:
    with pytest.raises(PortalAddressError) as caught:
        normalize_portal("https://YOURDOMAIN.bitrix24.ru")
    assert "Замените YOURDOMAIN" in caught.value.message.ru


# --- connectors ----------------------------------------------------------------------------


def test_connectors_cover_the_open_lines_channels() -> None:
    ids = [connector.id for connector in CONNECTORS]
    assert len(ids) == len(set(ids))
    assert all(CONNECTOR_ID_PATTERN.fullmatch(connector_id) for connector_id in ids)
    for expected in (
        "livechat",
        "telegrambot",
        "whatsappbyedna",
        "whatsappbytwilio",
        "notifications",
        "vkgroup",
        "viber",
        "facebook",
        "fbinstagramdirect",
        "avito",
        "ok",
        "olx",
        "yandex",
        "imessage",
        "wechat",
        "network",
        "email",
    ):
        assert expected in ids
    assert ids[0] == "livechat"


def test_connector_label_known_and_unknown() -> None:
    assert connector_label("vkgroup").ru == "ВКонтакте"
    assert connector_label("livechat").en == "Website live chat"
    custom = connector_label("wz_whatsapp_cd25")
    assert (custom.ru, custom.en) == ("wz_whatsapp_cd25", "wz_whatsapp_cd25")


# --- the model is the single source --------------------------------------------------------


def test_every_field_carries_its_form_metadata_and_radio_options_match_the_type() -> None:
    for name, info in B24Settings.model_fields.items():
        metas = [item for item in info.metadata if isinstance(item, FormMeta)]
        assert len(metas) == 1, name
        if metas[0].kind == "radio":
            # A switch (bool) is a radio pair: the form sends "True" or "False".
            allowed = typing.get_args(info.annotation) or ("True", "False")
            assert tuple(value for value, _ in metas[0].options) == allowed


def test_settings_json_keys_are_the_documented_ones() -> None:
    view = render()
    assert list(view.values) == [
        "client_id",
        "client_secret",
        "portal",
        "active",
        "entity",
        "import_days",
        "plan",
        "application_token",
        "employee_id",
        "traffic_type",
        "source_id",
        "site_id",
        "campaign_id",
        "site_domains",
        "tracker_getter",
        "messenger_map",
        "links_telegram",
        "links_telegram_bot",
        "links_whatsapp",
        "links_whatsapp_number",
        "links_whatsapp_text",
        "links_viber",
        "links_viber_uri",
        "links_viber_text",
    ]


# --- the page ------------------------------------------------------------------------------


def test_fresh_integration_page_follows_the_eight_steps() -> None:
    view = render()
    assert [section.id for section in view.sections] == [
        "credentials",
        "activation",
        "webhook",
        "employee",
        "traffic",
        "messengers",
        "messenger_links",
        "script",
    ]
    assert view.errors == {} and view.store is None
    assert view.values["active"] is False
    assert view.values["entity"] == "lead" and view.values["traffic_type"] == "source"
    assert view.values["client_secret"] is None and view.values["messenger_map"] == {}
    derived = view.derived
    assert derived.webhook_url == f"https://analytics.example/webhooks/7/{WEBHOOK_TOKEN}"
    assert derived.redirect_url == "https://analytics.example/oauth2/callback"
    assert derived.authorize_url is None and derived.portal_url is None
    assert derived.status.level == "off"
    assert derived.site_script is None
    assert (
        derived.site_script_note is not None and "после сохранения" in derived.site_script_note.ru
    )
    script = view.sections[-1]
    assert [f.key for f in script.fields] == ["site_domains", "tracker_getter"]
    assert script.title.ru == "Скрипт для сайта"


def test_a_portal_link_is_stored_as_its_address_with_a_note() -> None:
    view = render({**COMPLETE_SOURCE, "portal": "https://x.bitrix24.ru/crm/lead/"})
    assert view.store is not None and not view.errors
    assert view.store.settings["portal"] == "https://x.bitrix24.ru"
    assert view.values["portal"] == "https://x.bitrix24.ru"
    note = view.notes["portal"]
    assert (
        note.ru
        == "Оставлен только адрес портала https://x.bitrix24.ru: «/crm/lead/» в нём не нужно."
    )
    assert (
        note.en
        == "Kept only the portal's address https://x.bitrix24.ru: '/crm/lead/' is not needed."
    )
    # With another field wrong, the note comes all the same, and the field shows the address.
    wrong = render({**COMPLETE_SOURCE, "portal": "x.bitrix24.ru/crm/", "employee_id": "999"})
    assert wrong.store is None and "employee_id" in wrong.errors
    assert wrong.values["portal"] == "https://x.bitrix24.ru" and "portal" in wrong.notes
    # An address alone is kept as typed, without a note; so is the stored one, later.
    plain = render(COMPLETE_SOURCE)
    assert plain.store is not None and plain.store.settings["portal"] == "name.bitrix24.ru"
    assert plain.notes == {}
    assert render(None, make_integration(view.store.settings)).notes == {}


def test_an_oauth_server_is_refused_as_the_portal() -> None:
    view = render({**COMPLETE_SOURCE, "portal": "https://oauth.bitrix.info/"})
    assert view.store is None
    assert "сервер авторизации Битрикс24, а не ваш портал" in view.errors["portal"].ru
    assert "Bitrix24's authorization server, not your portal" in view.errors["portal"].en


def test_credentials_are_named_as_the_local_applications_card_names_them() -> None:
    view = render()
    assert field(view, "client_id").label.ru == "Код приложения (client_id)"
    assert field(view, "client_id").label.en == "Application ID (client_id)"
    assert field(view, "client_secret").label.ru == "Ключ приложения (client_secret)"
    assert field(view, "client_secret").label.en == "Application key (client_secret)"
    credentials = view.sections[0].help
    assert credentials is not None
    assert "«Код приложения (client_id)» и «Ключ приложения (client_secret)»" in credentials.ru


def test_labels_are_the_clients_russian_ones_with_english() -> None:
    view = render()
    expected = {
        "client_id": "Код приложения (client_id)",
        "client_secret": "Ключ приложения (client_secret)",
        "portal": "Адрес портала Битрикс24",
        "active": "Интеграция активна",
        "entity": "Сущность, которую создаёт чат",
        "employee_id": "Сотрудник",
        "traffic_type": "Тип трафика",
        "source_id": "Источник",
        "site_id": "Сайт",
        "campaign_id": "Рекламная кампания",
    }
    for key, ru in expected.items():
        label = field(view, key).label
        assert label.ru == ru and label.en
    titles = {section.id: section.title.ru for section in view.sections}
    assert titles["credentials"] == "Учетные данные"
    assert titles["messengers"] == "Соответствие мессенджеров и источников"
    assert [c.label.ru for c in field(view, "entity").choices] == ["Лид", "Сделка"]
    assert [c.label.ru for c in field(view, "traffic_type").choices] == [
        "Источник",
        "Рекламная кампания",
    ]


def test_section_help_tells_the_redirect_url_scopes_and_webhook_events() -> None:
    sections = {section.id: section for section in render().sections}
    credentials = sections["credentials"].help
    assert credentials is not None
    for text in (credentials.ru, credentials.en):
        assert "https://analytics.example/oauth2/callback" in text
        for scope in ("(crm)", "(imopenlines)", "(im)", "(contact_center)"):
            assert scope in text
    webhook = sections["webhook"].help
    assert webhook is not None
    for text in (webhook.ru, webhook.en):
        assert "ONCRMLEADADD" in text and "ONCRMDEALADD" in text
        assert f"/webhooks/7/{WEBHOOK_TOKEN}" in text
    assert [f.key for f in sections["webhook"].fields] == ["application_token"]


def test_selects_offer_the_catalog_with_ids_as_strings() -> None:
    view = render()
    employees = field(view, "employee_id").choices
    assert [c.value for c in employees] == ["", "12", "13"]
    assert employees[1].label.ru == "Анна Петрова"
    assert [c.value for c in field(view, "site_id").choices] == ["", "3"]
    assert field(view, "site_id").choices[1].label.ru == "Магазин (shop.example.ru)"
    assert [c.value for c in field(view, "campaign_id").choices] == ["", "40", "41"]


def test_traffic_fields_follow_the_traffic_type() -> None:
    view = render()
    for key in ("source_id", "site_id"):
        show_when = field(view, key).show_when
        assert show_when is not None and (show_when.key, show_when.equals) == (
            "traffic_type",
            "source",
        )
    show_when = field(view, "campaign_id").show_when
    assert show_when is not None and show_when.equals == "campaign"
    assert field(view, "traffic_type").kind == "radio"


def test_messenger_table_has_one_row_per_connector() -> None:
    view = render()
    table = next(section for section in view.sections if section.id == "messengers")
    assert table.layout == "table"
    assert len(table.fields) == 3 * len(CONNECTORS)
    telegram = [f for f in table.fields if f.key.startswith("messenger_map.telegrambot.")]
    assert [f.key.rsplit(".", 1)[1] for f in telegram] == ["source_id", "site_id", "campaign_id"]
    assert all(f.row is not None and f.row.ru == "Telegram" for f in telegram)
    source, site, campaign = telegram
    assert source.show_when is not None and source.show_when.equals == "source"
    assert site.show_when is not None and site.show_when.equals == "source"
    assert campaign.show_when is not None and campaign.show_when.equals == "campaign"
    assert source.choices[0].value == "" and source.choices[0].label.ru == "По умолчанию"
    assert [c.value for c in source.choices[1:]] == ["5", "6"]


# --- valid submissions ---------------------------------------------------------------------


def test_form_submission_with_strings_is_stored_typed() -> None:
    submitted = {**COMPLETE_SOURCE, "messenger_map": {"telegrambot": {"source_id": "6"}}}
    view = render(submitted)
    assert view.errors == {}
    assert view.store is not None
    assert view.store.settings == {
        "client_id": "local.64ccbcf7db22b1.98148679",
        "portal": "name.bitrix24.ru",
        "active": True,
        "entity": "lead",
        "import_days": 7,
        "employee_id": 12,
        "traffic_type": "source",
        "plan": "standard",
        "source_id": 5,
        "site_id": 3,
        "campaign_id": None,
        "site_domains": None,
        "tracker_getter": "analyticsHost.getSessionId",
        "messenger_map": {"telegrambot": {"source_id": 6}},
        "links_telegram": False,
        "links_telegram_bot": None,
        "links_whatsapp": True,
        "links_whatsapp_number": None,
        "links_whatsapp_text": None,
        "links_viber": True,
        "links_viber_uri": None,
        "links_viber_text": None,
    }
    assert view.store.secrets["client_secret"].get_secret_value() == NEW_SECRET
    assert view.values["client_secret"] == MASK and view.values["application_token"] is None
    assert field(view, "client_secret").is_set and field(view, "client_secret").value is None
    assert field(view, "employee_id").value == "12"
    assert field(view, "active").value is True
    assert field(view, "messenger_map.telegrambot.source_id").value == "6"


def test_json_submission_with_real_types_stores_the_same() -> None:
    from_form = render(COMPLETE_SOURCE).store
    as_json = {
        **COMPLETE_SOURCE,
        "active": True,
        "employee_id": 12,
        "source_id": 5,
        "site_id": 3,
        "campaign_id": None,
    }
    from_json = render(as_json).store
    assert from_form is not None and from_json is not None
    assert from_form.settings == from_json.settings


def test_derived_values_of_a_valid_submission() -> None:
    submitted = {**COMPLETE_SOURCE, "client_id": "local.abc+1"}
    view = render(submitted)
    assert view.derived.portal_url == "https://name.bitrix24.ru"
    assert view.derived.authorize_url == (
        "https://name.bitrix24.ru/oauth/authorize/?client_id=local.abc%2B1"
    )
    assert view.derived.status.level == "warning"
    assert "authorization URL" in view.derived.status.text.en


def test_portal_is_stored_as_entered_and_normalised_beside_it() -> None:
    entered = "  HTTPS://Name.Bitrix24.ru:443  "
    view = render({**COMPLETE_SOURCE, "portal": entered})
    assert view.store is not None
    assert view.store.settings["portal"] == entered.strip()
    assert view.derived.portal_url == "https://name.bitrix24.ru"
    pasted = "  https://Name.Bitrix24.ru/oauth/authorize/?client_id=local.1  "
    view = render({**COMPLETE_SOURCE, "portal": pasted})  # a link: stored as its address
    assert view.store is not None
    assert view.store.settings["portal"] == view.derived.portal_url == "https://name.bitrix24.ru"


def test_unticked_checkbox_means_inactive_and_a_draft_may_be_empty() -> None:
    view = render({"client_id": "", "portal": "", "employee_id": "", "source_id": ""})
    assert view.errors == {}
    assert view.store is not None and view.store.settings["active"] is False
    assert view.store.secrets == {}
    assert view.derived.status.level == "off"


def test_campaign_traffic_needs_only_the_campaign() -> None:
    submitted = {
        **COMPLETE_SOURCE,
        "traffic_type": "campaign",
        "source_id": "",
        "site_id": "",
        "campaign_id": "40",
        "messenger_map": {"viber": {"campaign_id": "41"}, "avito": {"campaign_id": ""}},
    }
    view = render(submitted)
    assert view.errors == {}
    assert view.store is not None
    assert view.store.settings["campaign_id"] == 40
    assert view.store.settings["messenger_map"] == {"viber": {"campaign_id": 41}}


def test_empty_rows_and_default_choices_are_dropped() -> None:
    submitted = {
        **COMPLETE_SOURCE,
        "messenger_map": {
            "livechat": {"source_id": "", "site_id": "", "campaign_id": ""},
            "vkgroup": {},
            "ok": None,
            "avito": {"source_id": "5", "site_id": "3", "campaign_id": ""},
        },
    }
    view = render(submitted)
    assert view.store is not None
    assert view.store.settings["messenger_map"] == {"avito": {"source_id": 5, "site_id": 3}}


def test_custom_rest_connector_is_accepted_and_shown_as_a_row() -> None:
    submitted = {**COMPLETE_SOURCE, "messenger_map": {"wz_whatsapp_cd25": {"source_id": 6}}}
    view = render(submitted)
    assert view.store is not None
    assert view.store.settings["messenger_map"] == {"wz_whatsapp_cd25": {"source_id": 6}}
    row = field(view, "messenger_map.wz_whatsapp_cd25.source_id")
    assert row.value == "6" and row.row is not None and row.row.en == "wz_whatsapp_cd25"


# --- required fields and dependent fields --------------------------------------------------


@pytest.mark.parametrize(
    ("traffic_type", "required"),
    [
        ("source", {"client_id", "client_secret", "portal", "employee_id", "source_id", "site_id"}),
        ("campaign", {"client_id", "client_secret", "portal", "employee_id", "campaign_id"}),
    ],
)
def test_active_integration_requires_the_default_of_its_traffic_type(
    traffic_type: str, required: set[str]
) -> None:
    view = render({"active": "on", "traffic_type": traffic_type})
    assert view.store is None
    assert set(view.errors) == required
    assert all(
        error.en == "Required while the integration is active" for error in view.errors.values()
    )
    for key in required:
        assert field(view, key).required


@pytest.mark.parametrize(
    ("missing", "present"),
    [("source_id", {"site_id": "3"}), ("site_id", {"source_id": "5"})],
)
def test_source_traffic_needs_both_source_and_site(missing: str, present: dict[str, str]) -> None:
    submitted = {**COMPLETE_SOURCE, "source_id": "", "site_id": "", **present}
    view = render(submitted)
    assert set(view.errors) == {missing}


def test_required_flags_follow_active_and_traffic_type() -> None:
    inactive = render()
    assert not any(f.required for section in inactive.sections for f in section.fields)
    view = render({"active": "on", "traffic_type": "campaign"})
    assert field(view, "campaign_id").required
    assert not field(view, "source_id").required and not field(view, "site_id").required
    assert not field(view, "application_token").required


def test_stored_secret_is_not_required_again() -> None:
    integration = make_integration(secrets={"client_secret": STORED_SECRET})
    view = render({**COMPLETE_SOURCE, "client_secret": ""}, integration)
    assert view.errors == {}
    assert not field(view, "client_secret").required


def test_inactive_draft_must_still_be_valid() -> None:
    view = render({"portal": "https://YOURDOMAIN.bitrix24.ru", "employee_id": "99"})
    assert view.store is None
    assert "YOURDOMAIN" in view.errors["portal"].en
    assert view.errors["employee_id"].en == "No such employee in the account"


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"employee_id": "99"}, "employee_id", "No such employee in the account"),
        ({"source_id": "99"}, "source_id", "No such source in the account"),
        ({"site_id": "99"}, "site_id", "No such site in the account"),
        ({"campaign_id": "99"}, "campaign_id", "No such ad campaign in the account"),
        (
            {"messenger_map": {"viber": {"source_id": "99"}}},
            "messenger_map.viber.source_id",
            "No such source in the account",
        ),
        (
            {"messenger_map": {"viber": {"source_id": "5", "site_id": "99"}}},
            "messenger_map.viber.site_id",
            "No such site in the account",
        ),
        (
            {
                "traffic_type": "campaign",
                "campaign_id": "40",
                "messenger_map": {"ok": {"campaign_id": 99}},
            },
            "messenger_map.ok.campaign_id",
            "No such ad campaign in the account",
        ),
    ],
)
def test_ids_must_exist_in_the_catalog(changes: dict[str, Any], key: str, message: str) -> None:
    view = render({**COMPLETE_SOURCE, **changes})
    assert view.store is None
    assert set(view.errors) == {key}
    assert view.errors[key].en == message


@pytest.mark.parametrize(
    ("traffic", "row", "key", "in_message"),
    [
        ("source", {"campaign_id": "40"}, "campaign_id", "not a campaign"),
        ("source", {"source_id": "5", "campaign_id": "40"}, "campaign_id", "not a campaign"),
        ("campaign", {"source_id": "5"}, "source_id", "not a source"),
        ("campaign", {"site_id": "3"}, "site_id", "not a source"),
        ("source", {"site_id": "3"}, "source_id", "a site goes together with a source"),
    ],
)
def test_messenger_rows_follow_the_traffic_type(
    traffic: str, row: dict[str, str], key: str, in_message: str
) -> None:
    submitted = {**COMPLETE_SOURCE, "traffic_type": traffic, "campaign_id": "40"}
    view = render({**submitted, "messenger_map": {"whatsappbyedna": row}})
    assert view.store is None
    assert set(view.errors) == {f"messenger_map.whatsappbyedna.{key}"}
    assert in_message in view.errors[f"messenger_map.whatsappbyedna.{key}"].en


@pytest.mark.parametrize("connector", ["Telegram", "my.connector", "x" * 65, "wz whatsapp"])
def test_bad_connector_ids_are_rejected(connector: str) -> None:
    view = render({**COMPLETE_SOURCE, "messenger_map": {connector: {"source_id": 5}}})
    assert view.store is None
    assert "connector id" in view.errors[f"messenger_map.{connector}"].en


@pytest.mark.parametrize(
    ("submitted", "key", "message"),
    [
        ({"webhook_url": "x"}, "webhook_url", "Unknown setting"),
        ({"messenger_map": {"viber": {"utm": "x"}}}, "messenger_map.viber.utm", "Unknown setting"),
        ({"employee_id": "12x"}, "employee_id", "Expected a whole number"),
        ({"employee_id": True}, "employee_id", "Expected a whole number"),
        ({"active": "maybe"}, "active", "Expected yes or no"),
        ({"entity": "invoice"}, "entity", "Allowed values: 'lead' or 'deal'"),
        ({"traffic_type": "utm"}, "traffic_type", "Allowed values"),
        ({"messenger_map": ["viber"]}, "messenger_map", "Expected an object"),
        ({"client_id": "local.1 2"}, "client_id", "no spaces"),
        ({"client_id": "x" * 101}, "client_id", "up to 100 characters"),
        ({"client_secret": "has space"}, "client_secret", "no spaces"),
        ({"application_token": "токен"}, "application_token", "Latin letters"),
        ({"client_secret": 12345}, "client_secret", "Expected text"),
    ],
)
def test_malformed_values_get_a_localized_error_on_their_key(
    submitted: dict[str, Any], key: str, message: str
) -> None:
    view = render(submitted)
    assert view.store is None
    assert message in view.errors[key].en
    assert view.errors[key].ru


def test_client_id_is_trimmed() -> None:
    view = render({"client_id": "  local.64ccbcf7db22b1.98148679 "})
    assert view.store is not None
    assert view.store.settings["client_id"] == "local.64ccbcf7db22b1.98148679"


def test_every_problem_is_reported_at_once() -> None:
    view = render(
        {
            "active": "on",
            "portal": "https://oauth.bitrix.info/crm/",
            "employee_id": "abc",
            "source_id": "99",
            "messenger_map": {"viber": {"campaign_id": "40"}},
            "extra": "1",
        }
    )
    assert set(view.errors) == {
        "client_id",
        "client_secret",
        "portal",
        "employee_id",
        "source_id",
        "site_id",
        "messenger_map.viber.campaign_id",
        "extra",
    }
    assert "oauth.bitrix.info" in view.errors["portal"].en
    assert view.errors["employee_id"].en == "Expected a whole number"


def test_errors_show_what_was_typed_and_derived_stays_on_the_stored_settings() -> None:
    stored = {"client_id": "local.old", "portal": "old.bitrix24.ru", "active": False}
    integration = make_integration(settings=stored)
    view = render(
        {"client_id": "local.new", "portal": "http://new.bitrix24.ru", "employee_id": "abc"},
        integration,
    )
    assert view.store is None
    assert field(view, "portal").value == "http://new.bitrix24.ru"
    assert field(view, "employee_id").value == "abc"
    assert field(view, "client_id").value == "local.new"
    assert view.values["portal"] == "http://new.bitrix24.ru"
    assert view.derived.portal_url == "https://old.bitrix24.ru"
    assert (
        view.derived.authorize_url == "https://old.bitrix24.ru/oauth/authorize/?client_id=local.old"
    )


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("left", [None, "", "   ", MASK, "absent"])
def test_secret_left_empty_or_masked_keeps_the_stored_one(left: str | None) -> None:
    integration = make_integration(
        secrets={"client_secret": STORED_SECRET, "application_token": STORED_TOKEN}
    )
    submitted = {**COMPLETE_SOURCE, "client_secret": left, "application_token": left}
    if left == "absent":
        del submitted["client_secret"], submitted["application_token"]
    view = render(submitted, integration)
    assert view.errors == {}
    assert view.store is not None and view.store.secrets == {}
    assert view.values["client_secret"] == MASK and view.values["application_token"] == MASK
    assert field(view, "client_secret").is_set and field(view, "application_token").is_set


def test_secret_given_replaces_the_stored_one_and_an_equal_one_is_no_change() -> None:
    integration = make_integration(
        secrets={"client_secret": STORED_SECRET, "application_token": STORED_TOKEN}
    )
    view = render({**COMPLETE_SOURCE, "application_token": STORED_TOKEN}, integration)
    assert view.store is not None
    assert set(view.store.secrets) == {"client_secret"}
    assert view.store.secrets["client_secret"].get_secret_value() == NEW_SECRET


def test_secrets_never_leave_except_as_secretstr_in_store() -> None:
    integration = make_integration(
        settings={"client_id": "local.1", "portal": "name.bitrix24.ru"},
        secrets={"client_secret": STORED_SECRET, "application_token": STORED_TOKEN},
    )
    views = [
        render(None, integration),
        render({**COMPLETE_SOURCE, "application_token": "new-token-P1"}, integration),
        render(
            {**COMPLETE_SOURCE, "employee_id": "99", "application_token": "bad token"}, integration
        ),
    ]
    for view in views:
        dumped = public_json(view)
        for secret in (STORED_SECRET, STORED_TOKEN, NEW_SECRET, "new-token-P1", "bad token"):
            assert secret not in dumped
            assert secret not in str(view.values)
        assert field(view, "client_secret").value is None
        assert field(view, "application_token").value is None
    valid = views[1].store
    assert valid is not None
    assert "client_secret" not in valid.settings and "application_token" not in valid.settings
    assert all(isinstance(value, SecretStr) for value in valid.secrets.values())
    assert NEW_SECRET not in valid.model_dump_json()


def test_a_secret_in_stored_settings_is_ignored() -> None:
    integration = make_integration(settings={"client_secret": "leaked", "client_id": "local.1"})
    view = render(None, integration)
    assert "leaked" not in public_json(view)
    assert view.values["client_secret"] is None


def test_the_settings_in_force_follow_every_change_of_the_stored_ones() -> None:
    """Parsed settings are reused for one integration while they stay the same (a drain's
    deliveries), never once they change: same id and version, other values."""
    saved = render(COMPLETE_SOURCE).store
    assert saved is not None
    first = stored_settings(make_integration(saved.settings, {"client_secret": "one"}))
    again = stored_settings(make_integration(saved.settings, {"client_secret": "one"}))
    assert again == first
    changed = stored_settings(make_integration({**saved.settings, "plan": "enterprise"}))
    assert changed.plan == "enterprise" and changed.client_secret is None
    secret = stored_settings(make_integration(saved.settings, {"client_secret": "two"}))
    assert secret.plan == first.plan and secret.client_secret is not None
    assert secret.client_secret.get_secret_value() == "two"


# --- status --------------------------------------------------------------------------------


def test_status_lists_what_to_fill_in() -> None:
    integration = make_integration(settings={"active": True, "client_id": "local.1"})
    status = render(None, integration).derived.status
    assert status.level == "warning"
    assert status.text.ru.startswith(
        "Заполните: Ключ приложения (client_secret), Адрес портала Битрикс24, Сотрудник"
    )
    assert status.text.en.startswith("Fill in: Application key (client_secret)")


def test_status_flags_a_catalog_item_that_disappeared() -> None:
    saved = render(COMPLETE_SOURCE).store
    assert saved is not None
    integration = make_integration(settings=saved.settings, secrets={"client_secret": "s"})
    smaller = CATALOG.model_copy(update={"employees": [Employee(id=13, name="Олег")]})
    status = render(None, integration, smaller).derived.status
    assert status.level == "warning" and status.text.en == "Fix: Employee"


def test_status_connected() -> None:
    saved = render(COMPLETE_SOURCE).store
    assert saved is not None
    integration = make_integration(
        settings=saved.settings,
        secrets={"client_secret": STORED_SECRET},
        connection={"member_id": "a223c6b3710f85df22e9377d6c4f7553", "domain": "name.bitrix24.ru"},
    )
    status = render(None, integration).derived.status
    assert status.level == "ok"
    assert status.text.ru == "Подключено к name.bitrix24.ru"
    assert status.text.en == "Connected to name.bitrix24.ru"


# --- with the host's real services ---------------------------------------------------------


def test_works_with_the_hosts_services() -> None:
    client = httpx.AsyncClient()
    try:
        host = services_with_urls(PublicUrls("https://analytics.example/"), client, CATALOG)
        view = build_settings_view(make_integration(), CATALOG, None, host)
    finally:
        asyncio.run(client.aclose())
    assert view.derived.redirect_url == "https://analytics.example/oauth2/callback"


def test_the_urls_shown_are_the_hosts_own() -> None:
    """The plugin spells no host route: every URL it shows comes from ``host.urls``."""
    view = build_settings_view(
        make_integration(), CATALOG, COMPLETE_SOURCE, UrlsOnly(ElsewhereUrls())
    )
    webhook = f"https://elsewhere.example/in/b24/7?key={WEBHOOK_TOKEN}"
    assert view.derived.webhook_url == webhook
    assert view.derived.redirect_url == "https://elsewhere.example/sso/return"
    assert view.derived.site_script is not None
    assert '"endpoint": "https://elsewhere.example/track/7"' in view.derived.site_script
    sections = {section.id: section for section in view.sections}
    credentials, hook = sections["credentials"].help, sections["webhook"].help
    assert credentials is not None and hook is not None
    for text in (credentials.ru, credentials.en):
        assert "https://elsewhere.example/sso/return" in text
    for text in (hook.ru, hook.en):
        assert webhook in text
    shown = view.model_dump_json()
    assert "analytics.example" not in shown
    for route in ("/webhooks/", "/oauth2/", "/api/sessions/"):
        assert route not in shown


def test_saved_settings_show_the_site_script_with_escaped_values() -> None:
    view = render({**COMPLETE_SOURCE, "tracker_getter": "uis.getSession"})
    assert view.store is not None
    script = view.derived.site_script
    assert script is not None and script.startswith("<script>") and script.endswith("</script>")
    assert '"getter": "uis.getSession"' in script
    assert "/api/sessions/7" in script and view.derived.site_script_note is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tracker_getter", "alert(1)"),
        ("tracker_getter", "a.</script><script>x"),
        ("site_domains", "https://shop.example.ru/"),
        ("site_domains", "shop.example.ru, <b>"),
    ],
)
def test_script_settings_reject_what_is_not_a_name(field: str, value: str) -> None:
    view = render({**COMPLETE_SOURCE, field: value})
    assert view.store is None and field in view.errors


def test_site_domains_are_tidied() -> None:
    view = render({**COMPLETE_SOURCE, "site_domains": " Shop.Example.ru,shop.example.ru  b.ru"})
    assert view.store is not None and view.store.settings["site_domains"] == "shop.example.ru, b.ru"


# --- messenger links (issue 15) ------------------------------------------------------------


def links_section(view: SettingsView) -> Any:
    return next(section for section in view.sections if section.id == "messenger_links")


@pytest.mark.parametrize(
    "typed",
    [
        "shop_support_bot",
        "@shop_support_bot",
        "https://t.me/shop_support_bot",
        "t.me/shop_support_bot?start=promo",
        "https://telegram.me/shop_support_bot/",
        "tg://resolve?domain=shop_support_bot&start=x",
    ],
)
def test_the_telegram_bot_is_kept_as_its_username(typed: str) -> None:
    view = render({**COMPLETE_SOURCE, "links_telegram": "True", "links_telegram_bot": typed})
    assert view.errors == {} and view.store is not None
    assert view.store.settings["links_telegram_bot"] == "shop_support_bot"


@pytest.mark.parametrize(
    "typed", ["shop", "shop_support", "my-shop-bot", "bot", "a" * 30 + "bot", "@", "магазин_bot"]
)
def test_a_telegram_username_that_no_bot_can_have_is_refused(typed: str) -> None:
    view = render({**COMPLETE_SOURCE, "links_telegram": "True", "links_telegram_bot": typed})
    assert view.store is None
    assert "bot" in view.errors["links_telegram_bot"].en


def test_telegram_links_need_the_bot_and_are_off_by_default() -> None:
    fresh = render()
    assert fresh.values["links_telegram"] is False
    assert field(fresh, "links_telegram").value == "False"
    assert not field(fresh, "links_telegram_bot").required
    on = render({**COMPLETE_SOURCE, "links_telegram": "True"})
    assert on.store is None
    assert on.errors["links_telegram_bot"].ru.startswith("Укажите имя бота")
    assert field(on, "links_telegram_bot").required
    # The check to make is written next to the switch, in both languages.
    help_ = field(fresh, "links_telegram").help
    assert help_ is not None and "лид" in help_.ru and "lead" in help_.en


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("+7 (999) 123-45-67", "79991234567"),
        ("8 999 123 45 67", "79991234567"),
        ("https://wa.me/79991234567?text=Hi", "79991234567"),
        ("https://api.whatsapp.com/send?phone=4915112345678&text=x", "4915112345678"),
        ("+44 20 7946 0958", "442079460958"),
    ],
)
def test_the_whatsapp_number_is_kept_as_digits(typed: str, kept: str) -> None:
    view = render({**COMPLETE_SOURCE, "links_whatsapp_number": typed})
    assert view.errors == {} and view.store is not None
    assert view.store.settings["links_whatsapp_number"] == kept


@pytest.mark.parametrize("typed", ["позвоните нам", "123", "+7 999 123 45 67 доб. 5", "1" * 16])
def test_a_whatsapp_number_that_is_no_number_is_refused(typed: str) -> None:
    view = render({**COMPLETE_SOURCE, "links_whatsapp_number": typed})
    assert view.store is None and "links_whatsapp_number" in view.errors


def test_the_viber_uri_is_read_from_a_pasted_link_and_texts_are_bounded() -> None:
    view = render({**COMPLETE_SOURCE, "links_viber_uri": "viber://pa?chatURI=shopsupport&text=Hi"})
    assert view.store is not None and view.store.settings["links_viber_uri"] == "shopsupport"
    long = render({**COMPLETE_SOURCE, "links_viber_text": "я" * 301})
    assert long.store is None and "300" in long.errors["links_viber_text"].ru
    bad = render({**COMPLETE_SOURCE, "links_viber_uri": "shop support"})
    assert bad.store is None and "links_viber_uri" in bad.errors


def test_the_links_switched_on_are_what_the_script_marks() -> None:
    default = stored_settings(make_integration({}))
    assert default.messenger_links() == (
        MessengerLink("whatsapp", None, "Здравствуйте! Пишу с сайта"),
        MessengerLink("viber", None, "Здравствуйте! Пишу с сайта"),
    )
    view = render(
        {
            **COMPLETE_SOURCE,
            "links_telegram": "True",
            "links_telegram_bot": "@shop_support_bot",
            "links_whatsapp": "False",
            "links_whatsapp_number": "+7 999 123-45-67",
            "links_viber_text": "Вопрос с сайта",
        }
    )
    assert view.store is not None
    settings = stored_settings(make_integration(view.store.settings))
    assert settings.messenger_links() == (
        MessengerLink("telegram", "shop_support_bot", None),
        MessengerLink("viber", None, "Вопрос с сайта"),
    )
    assert settings.code_channels == {"telegram", "viber"}
    # The saved switches are shown as saved; the script carries the links and where to ask.
    shown = render(integration=make_integration(view.store.settings))
    assert field(shown, "links_whatsapp").value == "False"
    assert field(shown, "links_telegram").value == "True"
    script = build_settings_view(
        make_integration(view.store.settings), CATALOG, None, UrlsOnly(ElsewhereUrls())
    ).derived.site_script
    assert script is not None
    assert '"codeEndpoint": "https://elsewhere.example/codes/7"' in script
    assert '"target": "shop_support_bot"' in script and "whatsapp" not in script.split("links")[-1]


def test_the_links_section_sits_before_the_script_and_says_to_copy_it_again() -> None:
    view = render()
    ids = [section.id for section in view.sections]
    assert ids.index("messengers") + 1 == ids.index("messenger_links") == ids.index("script") - 1
    section = links_section(view)
    assert section.title.ru == "Ссылки на мессенджеры" and section.title.en == "Messenger links"
    assert [f.key for f in section.fields] == [
        "links_telegram",
        "links_telegram_bot",
        "links_whatsapp",
        "links_whatsapp_number",
        "links_whatsapp_text",
        "links_viber",
        "links_viber_uri",
        "links_viber_text",
    ]
    assert "скопируйте скрипт" in section.help.ru and "copy the site script" in section.help.en


def test_the_links_section_shows_the_weeks_clicks_and_chats_per_channel_on() -> None:
    health = IntegrationHealth(
        messenger_links={
            "telegram": MessengerLinkFigures(clicks=40, chats=3),  # switched off: not shown
            "whatsapp": MessengerLinkFigures(clicks=12, chats=5),
        }
    )
    view = build_settings_view(make_integration({}), CATALOG, None, HOST, health)
    help_ = links_section(view).help
    assert "WhatsApp — 12 кликов, 5 чатов с кодом" in help_.ru
    assert "Viber — 0 кликов, 0 чатов с кодом" in help_.ru
    assert "WhatsApp — 12 clicks, 5 chats with the code" in help_.en
    assert "Telegram" not in help_.ru.split("7 дней")[-1]
    off = build_settings_view(
        make_integration({"links_whatsapp": False, "links_viber": False}), CATALOG, None, HOST
    )
    assert "Ни один мессенджер не включён" in links_section(off).help.ru
