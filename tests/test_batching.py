"""``Batcher``: the calls waiting at the same moment share one bulk call, and each caller still
gets its own answer or its own error."""

from __future__ import annotations

import asyncio

import pytest

from hooks.host.batching import Batcher

pytestmark = pytest.mark.anyio


class Unknown(Exception):
    pass


class Doubler:
    """A real bulk function: doubles each number, refuses negative ones (the whole batch
    fails, as a statement with one bad row does), and records the batches it was given."""

    def __init__(self, *, hold: asyncio.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.hold = hold

    async def __call__(self, args: list[int]) -> list[int]:
        self.batches.append(list(args))
        if self.hold is not None:
            await self.hold.wait()
        bad = [arg for arg in args if arg < 0]
        if bad:
            raise Unknown(f"no such number: {bad[0]}")
        await asyncio.sleep(0)  # a round trip
        return [arg * 2 for arg in args]


async def test_concurrent_callers_share_one_bulk_call() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    results = await asyncio.gather(*(batcher.call(n) for n in range(50)))
    assert results == [n * 2 for n in range(50)]
    assert bulk.batches == [list(range(50))]


async def test_callers_arriving_while_a_batch_runs_make_the_next_one() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    first = asyncio.gather(*(batcher.call(n) for n in range(3)))
    await asyncio.sleep(0)  # the first batch has started
    second = asyncio.gather(*(batcher.call(n) for n in range(10, 12)))
    assert await first == [0, 2, 4] and await second == [20, 22]
    assert bulk.batches == [[0, 1, 2], [10, 11]]


async def test_calls_made_over_several_turns_of_a_running_bulk_go_together_next() -> None:
    hold = asyncio.Event()
    bulk = Doubler(hold=hold)
    batcher = Batcher(bulk)
    first = asyncio.ensure_future(batcher.call(1))
    later = []
    for n in range(5):  # five turns of the loop while the first bulk call waits
        await asyncio.sleep(0)
        later.append(asyncio.ensure_future(batcher.call(10 + n)))
    await asyncio.sleep(0)
    assert bulk.batches == [[1]]  # one bulk call at a time
    hold.set()
    assert await first == 2 and await asyncio.gather(*later) == [20, 22, 24, 26, 28]
    assert bulk.batches == [[1], [10, 11, 12, 13, 14]]


async def test_a_batch_holds_at_most_max_size() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk, max_size=2)
    assert await asyncio.gather(*(batcher.call(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert bulk.batches == [[0, 1], [2, 3], [4]]


async def test_a_lone_caller_is_served_without_delay() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(20):
        assert await batcher.call(n) == n * 2
    assert loop.time() - started < 0.5  # no timer: twenty in a row take no measurable wait
    assert bulk.batches == [[n] for n in range(20)]
    # Served within a few turns of the loop, not after any timeout.
    task = asyncio.create_task(batcher.call(7))
    for _ in range(5):
        await asyncio.sleep(0)
    assert task.done() and task.result() == 14


async def test_a_failing_bulk_falls_back_to_one_call_per_caller() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    results = await asyncio.gather(
        *(batcher.call(n) for n in (1, -2, 3, -4)), return_exceptions=True
    )
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], Unknown) and str(results[1]) == "no such number: -2"
    assert isinstance(results[3], Unknown) and str(results[3]) == "no such number: -4"
    assert bulk.batches[0] == [1, -2, 3, -4]
    assert sorted(bulk.batches[1:]) == [[-4], [-2], [1], [3]]


async def test_a_lone_failing_call_is_not_repeated() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    with pytest.raises(Unknown):
        await batcher.call(-1)
    assert bulk.batches == [[-1]]


async def test_a_bulk_answering_the_wrong_number_of_results_fails_each_caller() -> None:
    async def short(args: list[int]) -> list[int]:
        return args[:-1]

    batcher = Batcher(short)
    results = await asyncio.gather(batcher.call(1), batcher.call(2), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)


async def test_a_caller_cancelled_before_the_batch_starts_is_left_out() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    gone = asyncio.create_task(batcher.call(1))
    stays = asyncio.create_task(batcher.call(2))
    await asyncio.sleep(0)  # both wait in the batch, which starts on the next turn
    gone.cancel()
    assert await stays == 4
    assert gone.cancelled()
    assert bulk.batches == [[2]]


async def test_a_caller_cancelled_while_the_bulk_runs_does_not_break_the_others() -> None:
    hold = asyncio.Event()
    bulk = Doubler(hold=hold)
    batcher = Batcher(bulk)
    tasks = [asyncio.create_task(batcher.call(n)) for n in range(3)]
    while not bulk.batches:
        await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.sleep(0)
    hold.set()
    assert await tasks[0] == 0 and await tasks[2] == 4
    assert tasks[1].cancelled()
    assert bulk.batches == [[0, 1, 2]]
    assert await batcher.call(5) == 10  # and the batcher goes on


async def test_all_callers_cancelled_make_no_bulk_call() -> None:
    bulk = Doubler()
    batcher = Batcher(bulk)
    tasks = [asyncio.create_task(batcher.call(n)) for n in range(3)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)
    assert bulk.batches == []
