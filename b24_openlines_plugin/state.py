"""What the plugin keeps about a connected portal, typed: the host stores it as JSON.

``integration.connection`` holds the portal's identity and endpoints (written at OAuth) and the
catch-up's progress (written each run); ``integration.secrets`` holds the tokens. Both are read
here once, into models, so no other module spells a stored key; a value the host cannot give
back as stored (an old row, a hand edit) reads as absent instead of failing a delivery.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from b24_openlines_plugin.bitrix.records import ChatEntity
from hooks.errors import Conflict, RetryLater, UpstreamError
from hooks.models import Integration
from hooks.services import HostServices

CATCHUP = "catchup"
PROBLEM = "problem"
MAX_RETRY = 1000


def not_connected() -> UpstreamError:
    return UpstreamError(
        "The portal is not connected: connect it in the settings", code="not_connected"
    )


class _Stored(BaseModel):
    # extra="ignore": keys of older versions are let be; validate_assignment keeps types true.
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class HistoryImport(_Stored):
    """The import of the dialogs before connecting: what it covers and how far it got."""

    since: AwareDatetime
    until: AwareDatetime  # when the portal was connected: later dialogs are live ones
    total: int | None = None  # Open Lines activities in the window, counted once at the start
    seen: int = 0  # of them, walked so far
    done: bool = False

    def covers(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= moment <= self.until


class Catchup(_Stored):
    """The periodic catch-up's progress; see ``catchup``."""

    handler: str | None = None  # the handler URL bound last, so later runs skip ``event.bind``
    entity: ChatEntity | None = None  # the entity event bound with it
    offline: bool = False  # the portal delivers offline events to us
    cursor: AwareDatetime | None = None  # the activity keyset: LAST_UPDATED of the last read
    cursor_id: int = 0  # … and its ID; 0 reads the cursor's second from its start
    walk_pending: bool = False  # walk even with offline events, until the end of the list
    reserved: str | None = None  # an offline page's process_id, read but not yet cleared
    retry: list[tuple[str, int]] = Field(default_factory=list)  # events to try again
    history: HistoryImport | None = None

    def remember(self, event: str, entity_id: int) -> None:
        """Keep an event that failed for the next run (each once, the newest ``MAX_RETRY``)."""
        if (event, entity_id) not in self.retry:
            self.retry = [*self.retry, (event, entity_id)][-MAX_RETRY:]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Problem(_Stored):
    """Why the connection does not work, as the plugin last saw it: a failed OAuth callback, a
    refused token refresh, a catch-up refused by Bitrix24. Cleared when the same works again."""

    code: str = Field(max_length=100)  # a HookError code: ``bitrix24:invalid_client``, …
    at: AwareDatetime


class Connection(_Stored):
    """The connected portal, as OAuth and the catch-up left it."""

    member_id: str | None = None
    domain: str | None = None  # the portal's host[:port]
    client_endpoint: str | None = None  # https://portal/rest/
    server_endpoint: str | None = None
    oauth_server: str | None = None
    scope: list[str] | None = None
    user_id: int | None = None
    access_expires_at: AwareDatetime | None = None
    connected_at: AwareDatetime | None = None  # by the portal's clock
    catchup: Catchup | None = None
    problem: Problem | None = None

    @property
    def connected(self) -> bool:
        return bool(self.member_id and self.client_endpoint)

    @property
    def portal_url(self) -> str:
        """``https://portal``: where the portal's own pages (a lead's card) are."""
        return self.endpoint.removesuffix("/rest/").rstrip("/")

    @property
    def endpoint(self) -> str:
        """The REST endpoint with one trailing slash; an error when there is none yet."""
        if not self.client_endpoint:
            raise not_connected()
        return self.client_endpoint.rstrip("/") + "/"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


PinnedToken = Literal["pinned_application_token", "pinned_app_event_token"]


class Secrets(_Stored):
    """The integration's write-only values that the plugin writes itself (never shown)."""

    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    pinned_application_token: SecretStr | None = None  # of the outgoing webhook's events
    pinned_app_event_token: SecretStr | None = None  # of the handlers bound by the plugin

    def token(self, name: str) -> str:
        """A token by field name; an error saying to connect when there is none."""
        value = getattr(self, name)
        if not isinstance(value, SecretStr):
            raise not_connected()
        return value.get_secret_value()


def connection_of(integration: Integration) -> Connection:
    """The stored connection; a part that does not read as stored is left out, not raised."""
    raw = dict(integration.connection)
    try:
        return Connection.model_validate(raw)
    except ValidationError as exc:
        broken = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        return Connection.model_validate({k: v for k, v in raw.items() if k not in broken})


def secrets_of(integration: Integration) -> Secrets:
    return Secrets.model_validate(
        {name: integration.secrets.get(name) for name in Secrets.model_fields}
    )


async def save_connection(
    host: HostServices,
    integration_id: int,
    connection: dict[str, Any],
    secrets: dict[str, SecretStr | None] | None = None,
    *,
    same_as: Connection | None = None,
) -> None:
    """Merge ``connection`` (and ``secrets``) into the stored integration; a token refresh or a
    save may move the version on meanwhile, so read and write again a few times. With
    ``same_as``, only while the portal is still the one connected then: what a run learned of
    a portal must not outlive a reconnect (or a disconnect) that happened while it ran."""
    for _ in range(3):
        current = await host.integrations.get(integration_id)
        if current is None:
            return
        if same_as is not None and not _same_portal(connection_of(current), same_as):
            raise RetryLater("the portal was connected anew meanwhile: the next run starts afresh")
        try:
            await host.integrations.update(
                current.id, expected_version=current.version, connection=connection, secrets=secrets
            )
            return
        except Conflict:
            continue
    raise RetryLater("could not save the connection: the integration kept changing")


def _same_portal(now: Connection, then: Connection) -> bool:
    return (now.member_id, now.connected_at) == (then.member_id, then.connected_at)
