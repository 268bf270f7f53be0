"""Contract types shared by the host and its plugins (pydantic).

Everything that crosses the hook boundary is one of these: plugins never see the host's
framework objects and the host never sees a plugin's internals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

Language = Literal["ru", "en"]


class ContractModel(BaseModel):
    """Strict base: an unknown key is a bug on one side of the contract, not data to keep."""

    model_config = ConfigDict(extra="forbid")


class LocalizedText(ContractModel):
    """A text shown to people, in every language the host offers."""

    ru: str
    en: str

    def get(self, language: Language) -> str:
        return self.ru if language == "ru" else self.en


# --- the account's catalog ---------------------------------------------------------------


class Employee(ContractModel):
    id: int
    name: str


class Source(ContractModel):
    id: int
    name: str
    utm_source: str | None = Field(
        default=None, description="the utm_source tag that marks this source"
    )


class Site(ContractModel):
    id: int
    name: str
    domain: str


class Campaign(ContractModel):
    id: int
    name: str
    site_id: int | None = None
    utm_campaign: str | None = Field(default=None, description="the utm_campaign tag of its ads")


class Catalog(ContractModel):
    """The client's account lists that settings choose from."""

    employees: list[Employee] = []
    sources: list[Source] = []
    sites: list[Site] = []
    campaigns: list[Campaign] = []


# --- integrations ------------------------------------------------------------------------


class Integration(ContractModel):
    """One configured instance of a plugin, as stored by the host.

    ``settings`` is what the settings form edits (no secrets); ``secrets`` holds write-only
    values (client secret, tokens), never shown back; ``connection`` holds non-secret facts a
    plugin learns (portal identity, endpoints, scopes). ``version`` grows with every write and
    is what compare-and-swap updates check.
    """

    id: int
    plugin: str
    name: str
    settings: dict[str, Any] = {}
    secrets: dict[str, SecretStr] = {}
    connection: dict[str, Any] = {}
    webhook_token: SecretStr
    version: int = 1
    created_at: AwareDatetime
    updated_at: AwareDatetime


# --- settings form -----------------------------------------------------------------------

FieldKind = Literal["text", "secret", "checkbox", "select", "radio"]


class Choice(ContractModel):
    value: str
    label: LocalizedText


class ShowWhen(ContractModel):
    """The field is shown only while another field has this value."""

    key: str
    equals: str


class FormField(ContractModel):
    """One input. ``key`` is a dotted path in the settings JSON (``messenger_map.viber.source_id``).

    Secrets have ``value=None`` always and ``is_set`` tells whether one is stored.
    """

    key: str
    kind: FieldKind
    label: LocalizedText
    help: LocalizedText | None = None
    value: str | bool | None = None
    is_set: bool = False
    required: bool = False
    choices: list[Choice] = []
    show_when: ShowWhen | None = None
    row: LocalizedText | None = Field(
        default=None, description="row heading when the section is a table"
    )


class FormSection(ContractModel):
    id: str
    title: LocalizedText
    help: LocalizedText | None = None
    layout: Literal["form", "table"] = "form"
    fields: list[FormField] = []


class Status(ContractModel):
    level: Literal["ok", "warning", "error", "off"]
    text: LocalizedText


class DerivedValues(ContractModel):
    """Read-only values the client copies elsewhere or reads."""

    webhook_url: str
    redirect_url: str
    authorize_url: str | None = None
    portal_url: str | None = None
    status: Status
    progress: LocalizedText | None = Field(
        default=None, description="work under way that the client follows, e.g. an import"
    )
    site_script: str | None = None
    site_script_note: LocalizedText | None = None


class MessengerLinkFigures(ContractModel):
    """One messenger channel's links on the client's site, over the last 7 days."""

    clicks: int = Field(default=0, description="links clicked (days in the account's zone)")
    chats: int = Field(default=0, description="dialogs that arrived with a code and took it")


class IntegrationHealth(ContractModel):
    """What the host saw of an integration's deliveries and appeals: shown beside its status,
    and handed to the plugin, which alone can tell what a failure's reason means."""

    last_event_at: AwareDatetime | None = Field(default=None, description="last webhook stored")
    last_appeal_at: AwareDatetime | None = Field(default=None, description="last appeal written")
    appeals_today: int = Field(default=0, description="created since midnight, account's zone")
    appeals_week: int = Field(default=0, description="created in the last 7 days, today included")
    failures_day: int = Field(default=0, description="deliveries failed in the last 24 hours")
    last_failure: str | None = Field(default=None, description="the newest failure's reason")
    last_failure_at: AwareDatetime | None = None
    messenger_links: dict[str, MessengerLinkFigures] = Field(
        default={},
        description="by channel (telegram, whatsapp, viber): clicks on its links and chats that "
        "arrived with a code in the last 7 days; a channel with neither is absent",
    )


class ConnectionCheck(ContractModel):
    """The answer to a person's action on the connection (a live check, disconnecting)."""

    status: Status


class StoredSettings(ContractModel):
    """What the host saves after a valid submission; ``secrets`` are merged into the stored ones."""

    settings: dict[str, Any]
    secrets: dict[str, SecretStr] = {}


class SettingsView(ContractModel):
    """Everything the host needs to show the settings page or answer the settings API."""

    sections: list[FormSection]
    values: dict[str, Any] = Field(description="the settings as JSON, secrets masked")
    errors: dict[str, LocalizedText] = {}
    notes: dict[str, LocalizedText] = Field(
        default={},
        description="by dotted key, like errors: what was changed in what was typed, e.g. a "
        "portal link cut to its address; shown beside the field, not an error",
    )
    store: StoredSettings | None = None
    derived: DerivedValues


# --- visitors and sessions ---------------------------------------------------------------


class Utm(ContractModel):
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None


class VisitorSession(ContractModel):
    """The host's record of a website visit: where the visitor came from."""

    id: str
    created_at: AwareDatetime
    landing_url: str
    referrer: str | None = None
    site_id: int | None = None
    source_id: int | None = None
    campaign_id: int | None = None
    utm: Utm = Utm()


class SessionBinding(ContractModel):
    """A visitor session tied to a plugin's conversation (an Open Lines session id)."""

    integration_id: int
    external_id: str
    session_id: str
    created_at: AwareDatetime


# --- appeals: "Raw data → Appeals and goals" --------------------------------------------


class Contact(ContractModel):
    name: str | None = None
    phones: list[str] = []
    emails: list[str] = []


class Attribution(ContractModel):
    method: Literal["session", "messenger", "default"]
    session_id: str | None = None
    traffic_type: Literal["source", "campaign"]
    source_id: int | None = None
    site_id: int | None = None
    campaign_id: int | None = None
    utm: Utm = Utm()


class Message(ContractModel):
    at: AwareDatetime
    author: Literal["visitor", "operator", "system"]
    text: str


class CrmRef(ContractModel):
    entity_type: Literal["lead", "deal", "contact"]  # contact: a returning customer's new dialog
    entity_id: int
    url: str | None = None


class PortalRef(ContractModel):
    domain: str
    member_id: str


class Appeal(ContractModel):
    """One Open Lines dialog as an appeal; upserted by ``key``, so replays never duplicate."""

    key: str = Field(min_length=1, max_length=200)
    integration_id: int
    created_at: AwareDatetime
    channel: str
    channel_title: LocalizedText | None = Field(
        default=None,
        description="the channel's name as the settings show it: the appeal names its channel "
        "itself, so the host shows it without asking the plugin (which may be gone)",
    )
    contact: Contact = Contact()
    attribution: Attribution
    employee_id: int | None = None
    messages: list[Message] = []
    text: str = ""
    crm: CrmRef
    portal: PortalRef


class StoredAppeal(ContractModel):
    """An appeal as the sink keeps it, with the host's bookkeeping."""

    appeal: Appeal
    first_seen_at: datetime
    updated_at: datetime


# --- requests handed to hooks ------------------------------------------------------------


class HookRequest(ContractModel):
    """An HTTP request as plugins see it: framework-free, body kept raw for verification."""

    method: str
    path: str
    query: dict[str, list[str]] = {}
    headers: dict[str, str] = Field(default={}, description="lower-case names")
    body: bytes = b""
    client_ip: str | None = None
    received_at: AwareDatetime


class HookResponse(ContractModel):
    """What a hook answers to a browser or a remote service."""

    status: int = 200
    headers: dict[str, str] = {}
    json_body: Any = None


class WebhookVerdict(ContractModel):
    """``on_webhook_verify``'s decision on a delivery, before the host stores it."""

    result: Literal["accept", "ignore"]
    reason: str | None = None
    reason_text: LocalizedText | None = Field(
        default=None, description="the reason in people's words, shown on the inbox page"
    )
    dedupe_key: str | None = Field(
        default=None,
        max_length=200,
        description="deliveries with the same key are one event; the body is the default key",
    )


class WebhookOutcome(ContractModel):
    """How ``on_webhook`` dealt with an event that it accepted."""

    result: Literal["processed", "ignored"]
    reason: str | None = None
    reason_text: LocalizedText | None = Field(
        default=None, description="the reason in people's words, shown on the inbox page"
    )
    appeal_keys: list[str] = []


class ScheduleOutcome(ContractModel):
    """What a periodic ``on_schedule`` run did, for the host's log."""

    appeal_keys: list[str] = []
    note: str | None = None


class OAuthOutcome(ContractModel):
    """What ``on_oauth_callback`` learned: merged into the integration by the host."""

    secrets: dict[str, SecretStr] = {}
    connection: dict[str, Any] = {}
    message: LocalizedText
