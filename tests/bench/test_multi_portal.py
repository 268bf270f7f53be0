"""``python -m tests.bench --multi-portal`` stays runnable: 2 portals x 3 chats, 1 then 2 workers
with the portals answering each REST request after 0.05 s (the bench's own path for Bitrix24's
time; answering at once is ``tests/test_cluster_rate_limit.py``'s), as a burst and as a stored
backlog, then a steady flow (2 chats a second for 2 s, 1 worker) and the fairness run (a flood of
20 chats beside a single chat).

Real processes (PostgreSQL, the portals' process, the web process, the workers, the relay), as
the bench runs them; it checks that every figure comes out, not how fast anything is.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.bench.multi_portal import format_multi_report, multi_targets, run_multi_portal

pytestmark = pytest.mark.anyio


async def test_the_multi_portal_bench_reports_every_figure(tmp_path: Path) -> None:
    report = await run_multi_portal(
        2, 3, answer_times=(0.05,), steady_rates=(2.0,), steady_seconds=2.0, fairness_chats=20,
        progress=lambda _: None, logs=tmp_path,
    )  # fmt: skip

    assert [(run.workers, run.answer_after_s) for run in report.runs] == [(1, 0.05), (2, 0.05)]
    for run in report.runs:
        assert run.appeals == run.chats == 6 and run.portals_complete == 2
        assert run.inbox.get("done", 0) >= 6 and not run.inbox.get("failed")
        assert run.acks >= 6 and run.rest_requests > 0 and run.limit_refusals == 0
        for value in (run.appeals_per_s, run.ack_p50_ms, run.ack_p99_ms, run.cpu_share):
            assert isinstance(value, float) and not math.isnan(value) and value > 0
        assert set(run.cpu_s) >= {"web process", "workers", "PostgreSQL"}
    assert [(b.workers, b.answer_after_s) for b in report.backlogs] == [(1, 0.05), (2, 0.05)]
    for backlog in report.backlogs:
        assert backlog.appeals == backlog.chats == 6 and backlog.limit_refusals == 0
        assert backlog.stored >= 6 and backlog.rest_requests > 0
        assert 0 < backlog.up_s < backlog.first_appeal_s and backlog.drain_s > 0
        assert backlog.appeals_per_s > 0 and backlog.cpu_s["workers"] > 0
    scaled = [t.name for t in multi_targets(report) if t.name.startswith("appeals/s")]
    assert scaled == [
        "appeals/s, burst, REST in 0.05 s: 2 / 1 workers",
        "appeals/s, backlog, REST in 0.05 s: 2 / 1 workers",
    ]
    (steady,) = report.steady
    assert (steady.workers, steady.answer_after_s, steady.spread_s) == (1, 0.05, 2.0)
    assert steady.chats_per_s == 2.0 and steady.appeals == steady.chats == 4
    assert steady.acks >= 4 and steady.limit_refusals == 0
    assert 0 < steady.lag_s < steady.drain_s and not math.isnan(steady.ack_p99_ms)
    acks = [t.name for t in multi_targets(report) if t.name.startswith("webhook ack p99")]
    assert acks[-1] == "webhook ack p99, steady 2 chats/s, 1 worker, 0.05 s"
    fair = report.fairness
    assert fair is not None
    assert fair.flood_chats == fair.flood_appeals == 20
    assert not math.isnan(fair.delay_s) and fair.delay_s > 0
    assert fair.started_after_s > 0 and fair.flood_drain_s > 0
    assert any(t.name.startswith("fairness") for t in multi_targets(report))
    text = format_multi_report(report)
    assert "appeals per second" in text and "QUERY_LIMIT_EXCEEDED" in text
    assert "A stored backlog" in text and "A steady flow" in text
    assert "webhook stored → appeal written" in text
