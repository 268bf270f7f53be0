"""Bitrix24's event delivery as the plugin drives it: which events, the handlers bound to
them (``event.get``/``event.bind``), and the offline queue (``event.offline.get``/``clear``).

Offline events are Bitrix24's only lossless delivery, but reading them without clearing
(``clear=0``, then ``event.offline.clear``) needs the plan's ``rest_offline_extended``
feature, and binding them needs an administrator: both are found out here, by asking.
"""

from __future__ import annotations

from b24_openlines_plugin.bitrix.client import Command, RestClient
from b24_openlines_plugin.bitrix.dialogs import parsed
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.records import ChatEntity, OfflinePage
from b24_openlines_plugin.bitrix.wire import parse_event_handlers, parse_offline_page
from hooks.errors import HookError

ACTIVITY_EVENTS = frozenset({"ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"})
ACTIVITY_CHANGED = "ONCRMACTIVITYUPDATE"  # what a dialog seen through its activity is kept as
ENTITY_EVENTS: dict[ChatEntity, str] = {"lead": "ONCRMLEADADD", "deal": "ONCRMDEALADD"}
OFFLINE_PAGE = 50  # event.offline.get's default and documented page size
_ALREADY_BOUND = "ERROR_HANDLER_ALREADY_EXIST"
_OFFLINE_FEATURE = "rest_offline_extended"
_NO_OFFLINE_LICENSE = "WRONG_LICENSE"


def wanted_events(entity: ChatEntity) -> list[str]:
    """The events the plugin binds: the entity chats create, and the dialogs' activities."""
    return [ENTITY_EVENTS[entity], *sorted(ACTIVITY_EVENTS)]


async def bind_handlers(client: RestClient, handler: str, events: list[str]) -> bool:
    """Bind ``handler`` to each event online, and offline where no offline handler is bound
    yet; one ``event.get`` and one batch. True when offline events can be read losslessly
    (bound, and the plan has the feature). An online binding refused is an error."""
    bound = parsed(await client.command(Command("event.get")), parse_event_handlers)
    online = {(row.event, row.handler) for row in bound if not row.offline}
    offline = {row.event for row in bound if row.offline}
    commands: dict[str, Command] = {}
    for name in events:
        if (name, handler) not in online:
            commands[f"online_{name}"] = Command("event.bind", {"event": name, "handler": handler})
        if name not in offline:
            commands[f"offline_{name}"] = Command(
                "event.bind", {"event": name, "handler": handler, "event_type": "offline"}
            )
    commands["feature"] = Command("feature.get", {"CODE": _OFFLINE_FEATURE})
    results = await client.batch(commands)
    feature = results.pop("feature")
    has_feature = feature.error is None and _flag(feature.result, "value")
    for key, result in results.items():
        if key.startswith("online_") and result.error and not _already_bound(result.error):
            raise result.error
    return has_feature and all(
        result.error is None or _already_bound(result.error)
        for key, result in results.items()
        if key.startswith("offline_")
    )


async def unbind_handlers(client: RestClient, handler: str, events: list[str]) -> None:
    """Remove ``handler`` from each event, online and offline, in one batch: a portal being
    disconnected stops sending. A refusal (not an absent binding, which counts 0) is raised."""
    commands = {
        f"{kind}_{name}": Command(
            "event.unbind",
            {"event": name, "handler": handler}
            | ({"event_type": "offline"} if kind == "offline" else {}),
        )
        for name in events
        for kind in ("online", "offline")
    }
    for result in (await client.batch(commands)).values():
        result.unwrap()


async def granted_scopes(client: RestClient) -> list[str]:
    """What the portal lets the application do now (``scope``)."""
    granted = await client.call("scope")
    return [str(scope) for scope in granted] if isinstance(granted, list) else []


async def read_offline(client: RestClient, process_id: str | None) -> OfflinePage:
    """A page of offline events, reserved and left in the queue; with ``process_id``, the
    page an earlier read reserved and never cleared."""
    query: dict[str, object] = {"clear": 0, "limit": OFFLINE_PAGE}
    if process_id:
        query["process_id"] = process_id
    page: OfflinePage = parsed(
        await client.command(Command("event.offline.get", query)), parse_offline_page
    )
    return page


async def clear_offline(client: RestClient, process_id: str) -> None:
    await client.call("event.offline.clear", {"process_id": process_id})


def is_offline_unlicensed(error: BitrixError) -> bool:
    """The plan lacks confirmed offline reading after all: walk the activities instead."""
    return error.b24_code.upper() == _NO_OFFLINE_LICENSE


def _already_bound(error: HookError) -> bool:
    return _ALREADY_BOUND in error.code


def _flag(result: object, key: str) -> bool:
    return isinstance(result, dict) and result.get(key) == "Y"
