"""``make bench`` stays runnable: its core on 20 chats, in one process, with no rate limit.

Checks that every figure of the report comes out as a number, not how fast anything is: on a
shared machine a timing threshold would only make the suite flaky.
"""

from __future__ import annotations

import math

import pytest

from tests.bench import format_report, run_bench, targets
from tests.bench.peers import PEERS, version_of

pytestmark = pytest.mark.anyio


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


async def test_the_bench_reports_every_figure() -> None:
    report = await run_bench(20, "off", mode="in-process", progress=lambda _: None)

    burst = report.burst
    assert burst.appeals == burst.chats == 20
    # Each chat's lead, and its dialog's activity events to the plugin's own handlers.
    assert set(burst.inbox) == {"done"} and burst.inbox["done"] >= 20
    assert burst.rest_requests > 0 and burst.limit_refusals == 0
    assert burst.rest_commands >= burst.rest_requests
    for name in (
        "requests_per_appeal",
        "drain_s",
        "catch_up_s",
        "floor_s",
        "delivery_span_s",
        "appeals_per_s",
        "ack_p50_ms",
        "ack_p99_ms",
        "host_cpu_ms_per_appeal",
        "host_peak_rss_mb",
    ):
        assert _number(getattr(burst, name)), name
    assert burst.acks == 20
    assert report.cpu.appeals == 20 and report.cpu.replay_misses == 0
    assert _number(report.cpu.plugin_ms_per_appeal) and report.cpu.plugin_ms_per_appeal > 0
    assert _number(report.cpu.whole_ms_per_appeal)

    assert [peer.name for peer in report.peers] == list(PEERS)
    for peer in report.peers:
        if version_of(peer.name) is None:  # the bench extra is not installed
            assert peer.error is not None
            continue
        assert peer.error is None, peer.error
        assert (peer.leads, peer.activities, peer.histories) == (20, 20, 20)
        assert peer.requests > 0 and _number(peer.wall_s)

    assert {t.name for t in targets(report)} >= {
        "REST requests per appeal",
        "QUERY_LIMIT_EXCEEDED in the burst",
        "last webhook in → its appeal written",
        "plugin CPU per appeal (median of 5)",
        "webhook ack p99",
        "fairness: a single chat beside a flood",
    }
    text = format_report(report)
    assert "REST requests per appeal" in text and "fast_bitrix24" in text
