"""Calls waiting at the same moment, made as one: a database round trip shared by requests.

Under a burst the web process has dozens of webhooks in flight, each making the same small
queries (its integration, its inbox row, its drain's job). A round trip costs the process far
more CPU than a row in it, so the requests waiting for the same query share one bulk query
(``Batcher``): group commit, without a timer, so a lone request never waits for company.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")

Bulk = Callable[[list[A]], Awaitable[Sequence[R]]]


class Batcher(Generic[A, R]):
    """``await call(arg)``: calls are answered by ``bulk(args)``, which returns one result per
    argument, in order, one bulk call at a time (group commit).

    A call with nothing running starts a bulk call on the event loop's next turn, so the
    calls made in the same turn join it and a lone request never waits for company. Calls made
    while a bulk call runs wait for it to end and then go together in the next one: the busier
    the process, the more each round trip carries, at most ``max_size`` arguments.

    If the bulk call raises, each caller of a batch of several is tried again alone
    (``bulk([arg])``), so an error stays with the request that caused it (an unknown
    integration fails its own webhook, not its neighbours'); ``bulk`` must therefore be safe
    to repeat for its arguments. A caller cancelled while waiting leaves the others alone; its
    argument is left out if its batch has not started yet.
    """

    def __init__(self, bulk: Bulk[A, R], *, max_size: int = 500) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._bulk = bulk
        self._max_size = max_size
        self._waiting: list[tuple[A, asyncio.Future[R]]] = []
        self._pump: asyncio.Task[None] | None = None  # runs the batches, one after another
        self._loop: asyncio.AbstractEventLoop | None = None  # the pump's

    async def call(self, arg: A) -> R:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (tests run one per test): start afresh
            self._waiting, self._pump, self._loop = [], None, loop
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((arg, future))
        if self._pump is None or self._pump.done():
            # A task's first step runs on the loop's next turn: the calls made until then join.
            self._pump = loop.create_task(self._run_waiting(), name="batch")
        return await future

    async def _run_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_size]
            del self._waiting[: self._max_size]
            await self._run(batch)

    async def _run(self, batch: list[tuple[A, asyncio.Future[R]]]) -> None:
        waiting = [(arg, future) for arg, future in batch if not future.done()]
        try:
            if not waiting:
                return
            try:
                results = await self._call_bulk([arg for arg, _ in waiting])
            except Exception as error:
                if len(waiting) == 1:
                    _fail(waiting[0][1], error)
                    return
                await asyncio.gather(*(self._alone(arg, future) for arg, future in waiting))
                return
            for (_, future), result in zip(waiting, results, strict=True):
                _answer(future, result)
        except BaseException:
            for _, future in waiting:
                future.cancel()
            raise

    async def _alone(self, arg: A, future: asyncio.Future[R]) -> None:
        if future.done():  # its caller is gone
            return
        try:
            (result,) = await self._call_bulk([arg])
        except Exception as error:
            _fail(future, error)
        else:
            _answer(future, result)

    async def _call_bulk(self, args: list[A]) -> Sequence[R]:
        results = await self._bulk(args)
        if len(results) != len(args):
            raise RuntimeError(f"a bulk call answered {len(results)} results for {len(args)}")
        return results


def _answer(future: asyncio.Future[R], result: R) -> None:
    if not future.done():  # else its caller was cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[R], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
