"""One portal's concurrent lookups merged into list commands (the DataLoader pattern).

Appeals processed at the same time each want one lead, deal, contact or activity, or an
entity's newest dialog. A Bitrix24 list method answers up to 50 of them in one command (the
documented ``@`` prefix: ``filter[@ID]`` = an array is IN; ``BINDINGS`` = several
``OWNER_TYPE_ID``/``OWNER_ID`` objects, any of which matches). Keys asked until the client
composes its next batch (a moment, or as long as the request waits for the rate limit) become
one list command per 50 keys in that batch, beside everyone else's commands; each caller gets
its own value, or its chunk's error. A list that answers ``next`` is followed page by page.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from b24_openlines_plugin.bitrix.client import MAX_BATCH, Command, CommandResult, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.records import (
    OWNER_TYPE_IDS,
    SESSION_PROVIDER,
    Activity,
    ActivityBinding,
    ChatEntity,
    CrmEntity,
    OwnerType,
    SessionHistory,
)
from b24_openlines_plugin.bitrix.wire import (
    WireError,
    parse_activities,
    parse_activity_bindings,
    parse_crm_entity,
    parse_session_history,
)
from hooks.errors import HookError, RetryLater, UpstreamError

PAGE = 50  # rows a list method answers at once, and ids one list command asks for
MAX_CHUNKS = 10  # list commands one gathering makes (at most the 50 a batch carries)
MAX_PAGES = 20  # a dialog list still running past this (a portal ignoring a filter) stops
ACTIVITY_FIELDS = [
    "ID",
    "PROVIDER_ID",
    "OWNER_TYPE_ID",
    "OWNER_ID",
    "ASSOCIATED_ENTITY_ID",
    "RESULT_SOURCE_ID",
    "PROVIDER_PARAMS",
    "COMPLETED",
    "CREATED",
    "LAST_UPDATED",
    "END_TIME",
]
# "*" is every plain field (the UTM tags too), without the multiple ones, asked by name.
ENTITY_FIELDS: dict[OwnerType, list[str]] = {
    "lead": ["*", "PHONE", "EMAIL", "IM"],
    "deal": ["*"],
    "contact": ["*", "PHONE", "EMAIL", "IM"],
}
NEWEST_FIRST = {"ID": "DESC"}

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
Row = Mapping[str, Any]
Pages = AsyncIterator[list[Row]]


def parsed(result: CommandResult, parse: Any) -> Any:
    """A command's result read by ``parse``; its error, or an answer it cannot read, raised."""
    return _parse(parse, result.unwrap())


def bindings_command(activity_id: int) -> Command:
    return Command("crm.activity.binding.list", {"activityId": activity_id})


def bindings_of(result: CommandResult) -> list[ActivityBinding]:
    """An activity's bindings; none when the portal refuses to list them (an error answer,
    not a busy one), which leaves its owner to go by, as before bindings were read."""
    if isinstance(result.error, BitrixError):
        return []
    bindings: list[ActivityBinding] = parsed(result, parse_activity_bindings)
    return bindings


async def read_bindings(client: RestClient, activity_id: int) -> list[ActivityBinding]:
    return bindings_of(await client.command(bindings_command(activity_id)))


class _Lane(Generic[T]):
    """One kind of lookup: its command for some keys (``per_command`` of them), and each
    key's value from the pages that command answers."""

    per_command = PAGE
    max_commands = MAX_CHUNKS  # the commands one gathering makes at most

    def command(self, keys: list[int]) -> Command:
        raise NotImplementedError

    async def settle(self, keys: list[int], pages: Pages) -> Mapping[int, T | HookError]:
        raise NotImplementedError

    async def resolve(
        self, keys: list[int], client: RestClient, command: Command, first: CommandResult
    ) -> Mapping[int, T | HookError]:
        return await self.settle(keys, _pages(client, command, first))


class _Gathering(Generic[T]):
    """The keys of one lane asked before the batch that carries them is composed."""

    def __init__(self, lane: _Lane[T], spill: Callable[[dict[int, Any]], object]) -> None:
        self.lane = lane
        self.spill = spill  # where the keys that do not fit in the batch go on waiting
        self.waiting: dict[int, asyncio.Future[T | None]] = {}
        self.chunks: list[tuple[list[int], Command]] = []
        self.sealed = False

    def __len__(self) -> int:
        return -(-len(self.waiting) // self.lane.per_command)

    @property
    def full(self) -> bool:
        return len(self.waiting) >= self.lane.per_command * self.lane.max_commands

    def seal(self, room: int) -> dict[str, Command]:
        self.sealed = True
        size = self.lane.per_command
        keys = list(self.waiting)[: max(room, 1) * size]
        if len(keys) < len(self.waiting):
            self.spill({key: self.waiting.pop(key) for key in list(self.waiting)[len(keys) :]})
        self.chunks = [
            (chunk, self.lane.command(chunk))
            for chunk in (keys[i : i + size] for i in range(0, len(keys), size))
        ]
        return {f"c{n}": command for n, (_, command) in enumerate(self.chunks)}


class _Loader(Generic[T]):
    def __init__(self, client: RestClient, lane: _Lane[T]) -> None:
        self.client = client
        self.lane = lane
        self._unsent: list[_Gathering[T]] = []  # the last one is open, unless full
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: int) -> T | None:
        if not isinstance(key, int) or key <= 0:
            return None  # no record has it, and its command would fail everyone's batch
        self._unsent = [g for g in self._unsent if not g.sealed]
        # A key already asked for and not sent yet is answered with that command: its answer
        # is as fresh as a new one would be.
        future = next((g.waiting[key] for g in self._unsent if key in g.waiting), None)
        if future is None:
            gathering = self._unsent[-1] if self._unsent else None
            if gathering is None or gathering.full:
                gathering = self._gathering()
            future = gathering.waiting[key] = asyncio.get_running_loop().create_future()
            self.client.joined()
        # Shielded: a caller that gives up must not cancel the value others wait for.
        return await asyncio.shield(future)

    def _gathering(self, waiting: dict[int, Any] | None = None) -> _Gathering[T]:
        """A new gathering, on its way to the client's next batches."""
        gathering = _Gathering(self.lane, self._gathering)
        gathering.waiting.update(waiting or {})
        self._unsent.append(gathering)
        task = asyncio.get_running_loop().create_task(self._run(gathering))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return gathering

    async def _run(self, gathering: _Gathering[T]) -> None:
        try:
            results = await self.client.gathered(gathering)
            await asyncio.gather(
                *(
                    self._settle(gathering, keys, command, results[f"c{n}"])
                    for n, (keys, command) in enumerate(gathering.chunks)
                )
            )
        except Exception as exc:  # the batch itself failed: everyone in it
            _fail(gathering.waiting.values(), exc)
        finally:
            _fail(gathering.waiting.values(), RetryLater("a Bitrix24 lookup was interrupted"))

    async def _settle(
        self, gathering: _Gathering[T], keys: list[int], command: Command, first: CommandResult
    ) -> None:
        futures = [gathering.waiting[key] for key in keys]
        try:
            values = await self.lane.resolve(keys, self.client, command, first)
        except Exception as exc:  # this chunk's command failed: its callers only
            _fail(futures, exc)
            return
        for key, future in zip(keys, futures, strict=True):
            if future.done():
                continue
            value = values.get(key)
            if isinstance(value, HookError):
                future.set_exception(value)
            else:
                future.set_result(value)


def _fail(futures: Iterable[asyncio.Future[Any]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
            future.exception()  # read: nobody may be waiting any more (all gave up)


async def _pages(client: RestClient, command: Command, first: CommandResult) -> Pages:
    """The rows of a list command, page by page, the next one asked only when wanted."""
    result = first
    for _ in range(MAX_PAGES):
        rows = result.unwrap()
        if isinstance(rows, Mapping):  # PHP sends a list with gaps in its keys as a map
            rows = list(rows.values())
        if not isinstance(rows, list):
            raise UpstreamError(f"Bitrix24 answered {command.method} without a list")
        yield rows
        if result.next is None:
            return
        result = await client.command(
            Command(command.method, {**command.params, "start": result.next})
        )


async def _all_rows(pages: Pages) -> list[Row]:
    return [row async for page in pages for row in page]


class _Entities(_Lane[CrmEntity]):
    def __init__(self, kind: OwnerType) -> None:
        self.kind = kind

    def command(self, keys: list[int]) -> Command:
        return Command(
            f"crm.{self.kind}.list",
            {"filter": {"@ID": keys}, "select": ENTITY_FIELDS[self.kind]},
        )

    async def settle(self, keys: list[int], pages: Pages) -> dict[int, CrmEntity | HookError]:
        found: dict[int, CrmEntity | HookError] = {}
        for row in await _all_rows(pages):
            entity = _parse(parse_crm_entity, row)
            found[entity.id] = entity
        return found


class _Activities(_Lane[Activity]):
    """Open Lines activities by id (``None``: another provider's, or gone)."""

    def command(self, keys: list[int]) -> Command:
        return Command(
            "crm.activity.list",
            {
                "filter": {"@ID": keys, "PROVIDER_ID": SESSION_PROVIDER},
                "select": ACTIVITY_FIELDS,
            },
        )

    async def settle(self, keys: list[int], pages: Pages) -> dict[int, Activity | HookError]:
        found: dict[int, Activity | HookError] = {}
        for activity in _parse(parse_activities, await _all_rows(pages)):
            found[activity.id] = activity
        return found


class _Histories(_Lane[SessionHistory]):
    """Dialogs' transcripts: the one lookup without a list form, one command per dialog. Two
    callers asking for the same dialog before its command is sent (an entity's event and its
    dialog's, drained together) share that command: its answer is as fresh for both."""

    per_command = 1
    max_commands = MAX_BATCH

    def command(self, keys: list[int]) -> Command:
        return Command("imopenlines.session.history.get", {"SESSION_ID": keys[0]})

    async def resolve(
        self, keys: list[int], client: RestClient, command: Command, first: CommandResult
    ) -> dict[int, SessionHistory | HookError]:
        return {keys[0]: _parse(parse_session_history, first.unwrap())}


class AskOwner:
    """The portal refused or ignored ``BINDINGS``: the entity's dialogs are asked by owner."""


ASK_OWNER = AskOwner()


class _OwnedDialogs(_Lane[Activity]):
    """Each entity's newest dialog among those it owns (``@OWNER_ID``, newest first)."""

    def __init__(self, kind: ChatEntity) -> None:
        self.type_id = OWNER_TYPE_IDS[kind]

    def command(self, keys: list[int]) -> Command:
        owners = {"OWNER_TYPE_ID": self.type_id, "@OWNER_ID": keys}
        return _dialog_list(owners)

    async def settle(self, keys: list[int], pages: Pages) -> dict[int, Activity | HookError]:
        newest: dict[int, Activity | HookError] = {}
        async for rows in pages:
            for activity in _parse(parse_activities, rows):
                owner = activity.owner_id
                if activity.owner_type_id == self.type_id and owner is not None and owner in keys:
                    newest.setdefault(owner, activity)
            if len(newest) == len(keys):
                break  # newest first: the later pages are older dialogs
        return newest


class _BoundDialogs(_Lane[Activity | AskOwner]):
    """Each entity's newest dialog among those bound to it (``BINDINGS``, newest first).

    A row is the entity's it is owned by; one owned by something else (a contact: a returning
    customer's dialog) is the entity's its bindings name. A row bound to none of the entities
    asked means the portal ignored the filter key and answered every dialog it has: the
    entities are then asked by owner, never given another visitor's chat.
    """

    def __init__(self, client: RestClient, kind: ChatEntity) -> None:
        self.client = client
        self.type_id = OWNER_TYPE_IDS[kind]

    def command(self, keys: list[int]) -> Command:
        owners = [{"OWNER_TYPE_ID": self.type_id, "OWNER_ID": key} for key in keys]
        return _dialog_list({"BINDINGS": owners})

    async def settle(
        self, keys: list[int], pages: Pages
    ) -> dict[int, Activity | AskOwner | HookError]:
        asked = set(keys)
        newest: dict[int, Activity | AskOwner | HookError] = {}
        try:
            async for rows in pages:
                activities = _parse(parse_activities, rows)
                bound = await self._bindings_of_others(activities, asked, set(newest))
                for activity in activities:
                    if len(newest) == len(asked):
                        break
                    owners = self._entities_of(activity, asked, bound)
                    if owners is None:
                        return dict.fromkeys(keys, ASK_OWNER)
                    if isinstance(owners, HookError):  # maybe theirs: no one left can tell
                        return {key: newest.get(key, owners) for key in keys}
                    for key in owners:
                        newest.setdefault(key, activity)
                if len(newest) == len(asked):
                    break  # newest first: the later pages are older dialogs
        except BitrixError:  # the filter refused (an error answer, not a busy one)
            return dict.fromkeys(keys, ASK_OWNER)
        return newest

    def _owner(self, activity: Activity, asked: set[int]) -> int | None:
        if activity.owner_type_id == self.type_id and activity.owner_id in asked:
            return activity.owner_id
        return None

    async def _bindings_of_others(
        self, activities: list[Activity], asked: set[int], found: set[int]
    ) -> dict[int, list[ActivityBinding] | HookError]:
        """The bindings of the rows owned by none of the entities, while some entity has
        no dialog yet (one command each, in the next batch)."""
        others: list[int] = []
        for activity in activities:
            if len(found) == len(asked):
                break
            owner = self._owner(activity, asked)
            if owner is None:
                others.append(activity.id)
            else:
                found.add(owner)
        others = list(dict.fromkeys(others))  # a row bound twice is listed twice
        answers = await asyncio.gather(
            *(read_bindings(self.client, a) for a in others), return_exceptions=True
        )
        out: dict[int, list[ActivityBinding] | HookError] = {}
        for activity_id, answer in zip(others, answers, strict=True):
            if isinstance(answer, HookError):
                out[activity_id] = answer
            elif isinstance(answer, BaseException):
                raise answer
            else:
                out[activity_id] = answer
        return out

    def _entities_of(
        self,
        activity: Activity,
        asked: set[int],
        bound: Mapping[int, list[ActivityBinding] | HookError],
    ) -> set[int] | HookError | None:
        """The asked entities whose dialog the row is; ``None``: none of them (the filter was
        ignored); an error: its bindings could not be read."""
        owner = self._owner(activity, asked)
        if owner is not None:
            return {owner}
        bindings = bound.get(activity.id)
        if bindings is None:  # not read: every entity already had a newer dialog
            return set()
        if isinstance(bindings, HookError):
            return bindings
        mine = {b.owner_id for b in bindings if b.owner_type_id == self.type_id} & asked
        return mine or None


def _dialog_list(filter_: dict[str, Any]) -> Command:
    return Command(
        "crm.activity.list",
        {
            "filter": {**filter_, "PROVIDER_ID": SESSION_PROVIDER},
            "order": NEWEST_FIRST,
            "select": ACTIVITY_FIELDS,
        },
    )


def _parse(parse: Callable[[Any], T], payload: Any) -> T:
    """Bitrix24's answer read, or the host's error for an answer we cannot read."""
    try:
        return parse(payload)
    except WireError as exc:
        raise UpstreamError(f"Unexpected Bitrix24 answer: {exc}") from exc


class Lookups:
    """A portal's merged lookups; one per ``RestClient`` (``lookups(client)``)."""

    def __init__(self, client: RestClient) -> None:
        self._entities = {kind: _Loader(client, _Entities(kind)) for kind in ENTITY_FIELDS}
        self._activities = _Loader(client, _Activities())
        kinds: tuple[ChatEntity, ...] = ("lead", "deal")
        self._bound = {kind: _Loader(client, _BoundDialogs(client, kind)) for kind in kinds}
        self._owned = {kind: _Loader(client, _OwnedDialogs(kind)) for kind in kinds}
        self._histories = _Loader(client, _Histories())

    async def entity(self, kind: OwnerType, entity_id: int) -> CrmEntity | None:
        """A lead, deal or contact; ``None`` when the portal has none by that id."""
        return await self._entities[kind].get(entity_id)

    async def activity(self, activity_id: int) -> Activity | None:
        """An Open Lines activity, without its bindings; ``None`` when it is none."""
        return await self._activities.get(activity_id)

    async def history(self, session_id: int) -> SessionHistory | None:
        """A dialog's transcript (``None`` only for an id no dialog can have)."""
        return await self._histories.get(session_id)

    async def newest_dialog(self, kind: ChatEntity, entity_id: int) -> Activity | None:
        """The entity's newest dialog activity (the highest ID) found by binding, else, on a
        portal that refuses or ignores ``BINDINGS``, by owner."""
        found = await self._bound[kind].get(entity_id)
        if isinstance(found, AskOwner):
            return await self._owned[kind].get(entity_id)
        return found


_LOOKUPS: weakref.WeakKeyDictionary[RestClient, Lookups] = weakref.WeakKeyDictionary()


def lookups(client: RestClient) -> Lookups:
    """The client's lookups: every caller of one portal merges into the same lists."""
    found = _LOOKUPS.get(client)
    if found is None:
        found = _LOOKUPS[client] = Lookups(client)
    return found


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Two lookups at once (they ride in the same batch); the first error is raised once both
    are done, so neither is left running unread."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b
