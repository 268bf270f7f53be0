"""An async Bitrix24 REST client that batches, throttles and refreshes on its own.

Every call goes out inside a ``batch``: callers that ask at about the same time share one HTTP
request (up to 50 commands), each keeping its own ``$result[...]`` references; a request waits
briefly to go out full while callers keep coming. A ``Gathering`` (``lookups``: list commands
of many callers' ids) makes its commands only when the batch that carries it is composed.
The portal's rate limit is kept on our side (``limits``), an expired access token is refreshed
once per portal however many callers hit it, and failures come back as the host's error types:
``RetryLater`` for what may pass, ``BitrixError`` for what will not. Each request, command,
wait on the limit and failed refresh is reported to the host (``host.metrics``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pydantic_core

from b24_openlines_plugin.bitrix.errors import BitrixError, error_for
from b24_openlines_plugin.bitrix.limits import LeakyBucket
from b24_openlines_plugin.bitrix.records import ErrorBody
from b24_openlines_plugin.bitrix.wire import WireError, form_encode, parse_error
from hooks.errors import HookError, RetryLater, UpstreamError
from hooks.services import Metrics, NoMetrics

MAX_BATCH = 50
FILL_WAIT_SECONDS = 2.0  # the longest a request waits for more commands while they come
FILL_STEP_SECONDS = 0.01
# Steps with nobody joining after which no one else is coming now (0.15 s on an idle machine,
# longer on a busy one: the drain takes new webhooks every 0.1 s, late when the loop is busy).
QUIET_STEPS = 15
LIMIT_RETRIES = 5
_REFERENCE = re.compile(r"\$result\[([^\]]+)\]")
# An outcome becomes a metric's label: Bitrix24's error codes are short words; anything else
# a portal might answer is one label, not a new series each time.
_LABEL = re.compile(r"[A-Za-z0-9_.]{1,64}")


@dataclass(frozen=True)
class Command:
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandResult:
    result: Any = None
    error: HookError | None = None
    total: int | None = None
    next: int | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class Credentials:
    """The portal's access token, and a way to get a new one when it expires."""

    def __init__(self, token: str, refresh: Callable[[str], Awaitable[str]]) -> None:
        self.token = token
        self._refresh = refresh
        self._lock = asyncio.Lock()

    async def renew(self, stale: str) -> str:
        """One refresh however many callers saw ``stale`` expire: the rest reuse its result."""
        async with self._lock:
            if self.token == stale:
                self.token = await self._refresh(stale)
            return self.token


class Gathering(Protocol):
    """Commands that callers keep adding to until the batch that carries them is composed:
    ids asked while a request waits for the rate limit still join its list commands."""

    def __len__(self) -> int:
        """The commands it would make now (at most ``MAX_BATCH``)."""
        ...

    def seal(self, room: int) -> Mapping[str, Command]:
        """Its commands, at most ``room`` of them, fixed: nothing joins it any more (what did
        not fit goes on waiting for the next batch)."""
        ...


@dataclass
class _Group:
    commands: dict[str, Command]
    halt: bool
    future: asyncio.Future[dict[str, CommandResult]]
    gathering: Gathering | None = None  # commands made when the batch is composed

    def __len__(self) -> int:
        return len(self.commands) if self.gathering is None else len(self.gathering)

    def seal(self, room: int) -> None:
        if self.gathering is not None:
            self.commands = dict(self.gathering.seal(room))
            self.gathering = None


class RestClient:
    """One portal's REST API (``endpoint`` is its ``client_endpoint``, ``https://…/rest/``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: str,
        credentials: Credentials,
        bucket: LeakyBucket,
        *,
        window: float = 0.005,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        integration_id: int = 0,
    ) -> None:
        self.http = http
        self.endpoint = endpoint.rstrip("/") + "/"
        self.credentials = credentials
        self.bucket = bucket
        self.window = window
        self.clock = clock
        self.requests = 0  # HTTP requests sent, for the benchmark and the tests
        self.metrics = metrics or NoMetrics()
        self.integration_id = integration_id
        self._pending: list[_Group] = []
        self._sender: asyncio.Task[None] | None = None
        self._arrivals = 0  # commands, and ids of gatherings, that joined the pending ones

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.command(Command(method, params or {}))).unwrap()

    async def command(self, command: Command) -> CommandResult:
        """One command, sharing a batch with whatever else is being sent."""
        return (await self.batch({"call": command}))["call"]

    async def batch(
        self, commands: Mapping[str, Command], *, halt: bool = False
    ) -> dict[str, CommandResult]:
        """Run commands whose params may refer to earlier ones as ``$result[key]...``."""
        if not commands or len(commands) > MAX_BATCH:
            raise ValueError(f"a batch takes 1 to {MAX_BATCH} commands")
        return await self._enqueue(_Group(dict(commands), halt, self._future()))

    async def gathered(self, gathering: Gathering) -> dict[str, CommandResult]:
        """Run the commands ``gathering`` makes when the batch that takes it is composed."""
        return await self._enqueue(_Group({}, False, self._future(), gathering))

    def joined(self) -> None:
        """Something joined a pending gathering (an id to its list command): the next batch
        carries more, though no more commands."""
        self._arrivals += 1

    def _future(self) -> asyncio.Future[dict[str, CommandResult]]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, group: _Group) -> dict[str, CommandResult]:
        self._pending.append(group)
        self._arrivals += 1
        loop = asyncio.get_running_loop()
        sender = self._sender
        if sender is None or sender.done() or sender.get_loop() is not loop:
            # Sent by a task of its own, not by the first caller: no caller's answer waits
            # for the batches composed after its own.
            self._sender = loop.create_task(self._send_pending())
        return await group.future

    async def _send_pending(self) -> None:
        """Wait a moment for more callers, then send everyone's commands.

        The request's place in the bucket is taken *before* the commands are: while it waits
        for the portal's limit, more commands join. Then, while callers keep joining (a burst,
        or the callers of the last answer asking their next round), it waits briefly to go out
        full: every request spent is one the portal's limit counts.
        """
        taken: list[_Group] = []
        try:
            await asyncio.sleep(self.window)
            while self._pending:
                taken = []
                await self._send_next(taken)
        except BaseException:  # cancelled (the loop is closing): nobody is left waiting
            _fail([*taken, *self._pending], RetryLater("the Bitrix24 client stopped"))
            self._pending = []
            raise

    async def _send_next(self, taken: list[_Group]) -> None:
        """One request: its place in the bucket, a moment to fill, the groups that fit."""
        try:
            await self._acquire()
        except Exception as exc:
            # The host could not count the request (its database): no one waiting can go.
            _fail(self._pending, exc)
            self._pending = []
            return
        await self._fill()
        size = 0
        # A gathering fills the room left (the rest of it waits for the next request); other
        # groups go whole, in order.
        while self._pending and (
            size + len(self._pending[0]) <= MAX_BATCH
            or (self._pending[0].gathering is not None and size < MAX_BATCH)
        ):
            group = self._pending.pop(0)
            group.seal(MAX_BATCH - size)
            taken.append(group)
            size += len(group.commands)
        try:
            await self._send(taken)
        except Exception as exc:  # a HookError, or the host's failure in a retry's counting
            _fail(taken, exc)

    async def _fill(self) -> None:
        """Until the batch is full, ``FILL_WAIT_SECONDS`` pass, or nobody joined for
        ``QUIET_STEPS`` (a lone chat is not held up for others that are not coming)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FILL_WAIT_SECONDS
        seen, quiet = self._arrivals, 0
        while sum(len(g) for g in self._pending) < MAX_BATCH and loop.time() < deadline:
            await asyncio.sleep(FILL_STEP_SECONDS)
            quiet = 0 if self._arrivals != seen else quiet + 1
            seen = self._arrivals
            if quiet >= QUIET_STEPS:
                return

    async def _send(self, groups: list[_Group]) -> None:
        cmd: dict[str, str] = {}
        for number, group in enumerate(groups):
            keys = set(group.commands)
            for key, command in group.commands.items():
                params = _rename_references(command.params, keys, f"g{number}_")
                query = form_encode(params)
                cmd[f"g{number}_{key}"] = command.method + (f"?{query}" if query else "")
        # A merged batch never halts: one caller's failing command must not stop another's.
        halt = len(groups) == 1 and groups[0].halt
        body = await self._post("batch", {"halt": 1 if halt else 0, "cmd": cmd})
        outer = body.get("result") if isinstance(body, dict) else None
        if not isinstance(outer, dict):
            raise UpstreamError("Bitrix24 answered a batch without results")
        for number, group in enumerate(groups):
            results = {key: _command_result(outer, f"g{number}_{key}") for key in group.commands}
            for key, command in group.commands.items():
                self.metrics.rest_command(
                    self.integration_id, method=command.method, outcome=_outcome(results[key])
                )
            if not group.future.done():  # its caller may have given up (cancelled)
                group.future.set_result(results)

    async def _acquire(self) -> None:
        waited = await self.bucket.acquire()
        if waited > 0:
            self.metrics.rate_limit_wait(self.integration_id, waited)

    def _report(self, method: str, outcome: str) -> None:
        label = outcome if _LABEL.fullmatch(outcome) else "other"
        self.metrics.rest_request(self.integration_id, method=method, outcome=label)

    async def _post(self, method: str, params: dict[str, Any]) -> Any:
        """POST one request (its first place in the bucket is taken), with one token refresh
        and backoff when the portal says its limit is reached."""
        refreshed = False
        for attempt in range(LIMIT_RETRIES + 1):
            if attempt:
                await self._acquire()
            token = self.credentials.token
            try:
                self.requests += 1
                answer = await self.http.post(
                    f"{self.endpoint}{method}", json={**params, "auth": token}
                )
            except httpx.TimeoutException as exc:
                self._report(method, "timeout")
                raise RetryLater(f"Bitrix24 did not answer {method} in time") from exc
            except httpx.TransportError as exc:
                self._report(method, "unreachable")
                raise RetryLater(f"Bitrix24 unreachable: {type(exc).__name__}") from exc
            payload = _json(answer)
            error = _error_of(payload)
            self._report(method, _answer_outcome(error, answer.status_code))
            if error is None:
                if answer.status_code >= 400:
                    raise _status_error(answer.status_code)
                return payload
            code = error.error.lower()
            if code == "expired_token" and not refreshed:
                refreshed = True
                await self._renew(token)
                continue
            if code == "query_limit_exceeded" and attempt < LIMIT_RETRIES:
                await self.bucket.saturate()
                continue
            raise error_for(error.error, error.description, retry_after=self._reset_in(payload))
        raise RetryLater("Bitrix24 kept refusing: request limit")  # pragma: no cover - loop exits

    async def _renew(self, stale: str) -> None:
        try:
            await self.credentials.renew(stale)
        except Exception:
            self.metrics.token_refresh_failed(self.integration_id)
            raise

    def _reset_in(self, payload: Any) -> float | None:
        """Seconds until Bitrix24's operating-time window resets, when it says."""
        timing = payload.get("time") if isinstance(payload, dict) else None
        reset_at = timing.get("operating_reset_at") if isinstance(timing, dict) else None
        if isinstance(reset_at, int | float):
            return max(float(reset_at) - self.clock(), 1.0)
        return None


def _answer_outcome(error: ErrorBody | None, status: int) -> str:
    """A request's outcome: Bitrix24's error code, else ``http_<status>`` for a failed one."""
    if error is not None:
        return error.error
    return f"http_{status}" if status >= 400 else "ok"


def _outcome(result: CommandResult) -> str:
    """A command's outcome as a label: ``ok``, or Bitrix24's error code."""
    if result.error is None:
        return "ok"
    code = result.error.code.removeprefix("bitrix24:")
    return code if _LABEL.fullmatch(code) else "other"


def _fail(groups: list[_Group], error: Exception) -> None:
    for group in groups:
        if not group.future.done():
            group.future.set_exception(error)


def _rename_references(value: Any, keys: set[str], prefix: str) -> Any:
    if isinstance(value, str):
        return _REFERENCE.sub(lambda m: f"$result[{prefix}{m[1]}]" if m[1] in keys else m[0], value)
    if isinstance(value, Mapping):
        return {k: _rename_references(v, keys, prefix) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rename_references(v, keys, prefix) for v in value]
    return value


def _section(outer: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = outer.get(name)
    return part if isinstance(part, Mapping) else {}  # PHP sends an empty map as []


def _command_result(outer: Mapping[str, Any], key: str) -> CommandResult:
    errors = _section(outer, "result_error")
    if key in errors:
        error = _error_of(errors[key])
        if error is None:
            return CommandResult(error=UpstreamError(f"Bitrix24 failed command {key}"))
        return CommandResult(error=error_for(error.error, error.description))
    results = _section(outer, "result")
    if key not in results:  # not run: an earlier command halted the batch
        return CommandResult(error=BitrixError("NOT_RUN", "an earlier command of the batch failed"))
    total = _section(outer, "result_total").get(key)
    following = _section(outer, "result_next").get(key)
    return CommandResult(
        result=results[key],
        total=int(total) if isinstance(total, int | str) and str(total).isdigit() else None,
        next=int(following)
        if isinstance(following, int | str) and str(following).isdigit()
        else None,
    )


def _error_of(payload: Any) -> ErrorBody | None:
    """Bitrix24's error body, if the answer is one; a malformed one counts as a bad answer."""
    try:
        return parse_error(payload)
    except WireError:
        return ErrorBody(error="ERROR_UNEXPECTED_ANSWER", description="malformed error body")


def _json(answer: httpx.Response) -> Any:
    """The answer's JSON, read by pydantic's parser (already ours, and quicker than the
    standard library's on the large answers of a full batch); None if it is not JSON."""
    try:
        return pydantic_core.from_json(answer.content)
    except ValueError:
        return None


def _status_error(status: int) -> HookError:
    if status >= 500 or status == 429:
        return RetryLater(f"Bitrix24 answered HTTP {status}")
    return UpstreamError(f"Bitrix24 answered HTTP {status}")
