"""The report: our figures, the peers' side by side with ratios, and each target met or missed."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from tests.bench.core import Report

# The targets of issue 14 (a burst of 1,000 chats at the standard limit, one run).
MAX_REQUESTS_PER_APPEAL = 0.03
MAX_CATCH_UP_S = 1.5  # the last webhook stored → the last appeal first written
MAX_ACK_P99_MS = 20.0
MAX_PLUGIN_CPU_MS = 1.0  # median of five replays, no replay miss
MAX_MEMORY_GROWTH = 1.10  # "flat": 10x the chats, at most 10% more peak memory
MAX_FAIRNESS_S = 2.0  # another portal's single chat while one portal floods 1,000 (multi-portal)


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured in this run


def num(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def targets(report: Report) -> list[Target]:
    b = report.burst
    cpu = report.cpu
    found = [
        Target(
            "REST requests per appeal",
            f"<= {MAX_REQUESTS_PER_APPEAL}",
            f"{num(b.requests_per_appeal, 3)} ({b.rest_requests} for {b.appeals})",
            b.requests_per_appeal <= MAX_REQUESTS_PER_APPEAL,
        ),
        Target(
            "QUERY_LIMIT_EXCEEDED in the burst",
            "0",
            str(b.limit_refusals),
            b.limit_refusals == 0,
        ),
        Target(
            "last webhook in → its appeal written",
            f"<= {MAX_CATCH_UP_S:g} s",
            f"{num(b.catch_up_s, 2)} s",
            b.catch_up_s <= MAX_CATCH_UP_S,
        ),
    ]
    for peer in report.peers:
        name = f"requests, ours < {peer.name}'s"
        if peer.error:
            found.append(Target(name, "fewer", peer.error[:32], None))
            continue
        found.append(
            Target(
                name,
                "fewer",
                f"{b.rest_requests} vs {peer.requests}",
                b.rest_requests < peer.requests,
            )
        )
    if not report.peers:
        found.append(Target("requests, ours < the peers'", "fewer", "not run (--no-peers)", None))
    found += [
        Target(
            "plugin CPU per appeal (median of 5)",
            f"<= {MAX_PLUGIN_CPU_MS:g} ms",
            f"{num(cpu.plugin_ms_per_appeal, 3)} ms, {cpu.replay_misses} replay misses",
            cpu.plugin_ms_per_appeal <= MAX_PLUGIN_CPU_MS and cpu.replay_misses == 0,
        ),
        Target(
            "webhook ack p99",
            f"< {MAX_ACK_P99_MS:g} ms",
            f"{num(b.ack_p99_ms)} ms",
            b.ack_p99_ms < MAX_ACK_P99_MS,
        ),
    ]
    if len(report.growth) >= 2:
        small, large = report.growth[0], report.growth[-1]
        ratio = large.host_peak_rss_mb / small.host_peak_rss_mb
        found.append(
            Target(
                f"host peak memory, {large.chats} vs {small.chats} chats",
                f"<= {MAX_MEMORY_GROWTH:.2f}x",
                f"{ratio:.2f}x ({small.host_peak_rss_mb:.0f} → {large.host_peak_rss_mb:.0f} MB)",
                ratio <= MAX_MEMORY_GROWTH,
            )
        )
    else:
        found.append(Target("host peak memory growth", "flat", "not run (--compare-growth)", None))
    found.append(
        Target(
            "fairness: a single chat beside a flood",
            f"<= {MAX_FAIRNESS_S:g} s",
            "see --multi-portal",
            None,
        )
    )
    return found


def target_lines(found: list[Target]) -> list[str]:
    """One line per target: name, wanted, measured, met / MISSED / — (not measured)."""
    lines = []
    for t in found:
        verdict = {True: "met", False: "MISSED", None: "—"}[t.met]
        lines.append(f"  {t.name:<48}{t.wanted:<14}{t.measured:<36}{verdict}")
    return lines


def _ratio(ours: float, theirs: float) -> str:
    return "n/a" if theirs <= 0 or math.isnan(theirs) else f"{ours / theirs:.2f}"


def format_report(report: Report) -> str:
    b = report.burst
    limit = f"{b.rate:g}/s, burst {b.burst}"
    if report.limit == "off":
        limit = f"sandbox off; the plugin keeps its plan's {b.rate:g}/s, burst {b.burst}"
    lines = [
        f"b24-openlines benchmark ({report.mode}), {b.chats} chats, rate limit {report.limit}"
        f" ({limit})",
        "",
        "Burst through host + plugin + sandbox",
        f"  appeals                         {b.appeals} of {b.chats}"
        f"   inbox {dict(sorted(b.inbox.items()))}",
        f"  REST requests                   {b.rest_requests}"
        f"  ({b.limit_refusals} refused with QUERY_LIMIT_EXCEEDED)",
        f"  REST requests per appeal        {b.requests_per_appeal:.3f}",
        f"  commands in those requests      {b.rest_commands}"
        f"  (in full batches of 50: {b.command_floor} requests;"
        f" {sum(b.inbox.values())} deliveries stored)",
        f"  time to drain                   {b.drain_s:.2f} s"
        f"  (first webhook in → last appeal written)",
        f"  after the last webhook          {b.catch_up_s:.2f} s"
        f"  (last webhook in → its appeal written: every delivery done)",
        f"  rate-limit floor                {b.floor_s:.2f} s"
        f"  (max(0, {b.rest_requests - b.limit_refusals} - {b.burst}) / {b.rate:g})"
        + (f"   drain / floor {b.drain_over_floor:.2f}" if b.drain_over_floor else ""),
        (
            f"  the burst's {b.burst} requests carried {b.appeals_in_burst} appeals"
            f" (spent {b.burst_spent_s:.1f} s after the first webhook)"
            if b.appeals_in_burst is not None
            else f"  the burst of {b.burst} requests was never used up"
        ),
        f"  webhooks delivered in           {b.delivery_span_s:.2f} s"
        f"  (the sandbox delivers one at a time)",
        f"  appeals per second              {b.appeals_per_s:.1f}",
        f"  webhook ack latency             p50 {num(b.ack_p50_ms, 2)} ms,"
        f" p99 {num(b.ack_p99_ms, 2)} ms, max {num(b.ack_max_ms, 1)} ms ({b.acks} deliveries)",
        f"  host CPU per appeal             {b.host_cpu_ms_per_appeal:.2f} ms"
        f"  (web + worker: receive, verify, store, drain, plugin, SQLite)",
        f"  host peak memory                {b.host_peak_rss_mb:.1f} MB (VmHWM, web + worker)",
        f"  sandbox process CPU             {num(b.sandbox_cpu_s)} s"
        f" (it shares the machine's {os.cpu_count()} cores)",
        "",
        f"Plugin CPU in one process ({report.cpu.appeals} appeals, no rate limit)",
        f"  plugin alone (answers replayed) {report.cpu.plugin_ms_per_appeal:.3f} ms per appeal"
        " (median of 5 passes)",
        f"  with the sandbox answering      {report.cpu.whole_ms_per_appeal:.3f} ms per appeal"
        f"  ({report.cpu.requests} requests, {report.cpu.replay_misses} replay misses)",
    ]
    if report.peers:
        lines += [
            "",
            f"Same records ({len(b.lead_ids)} leads: lead, activities, history) from the same"
            " sandbox",
            f"  {'client':<22}{'requests':>9}{'refused':>9}{'req/appeal':>12}{'wall s':>9}"
            f"{'floor s':>9}{'ours/their req':>16}{'ours/their time':>17}",
            f"  {'b24-openlines (burst)':<22}{b.rest_requests:>9}{b.limit_refusals:>9}"
            f"{b.requests_per_appeal:>12.3f}{b.drain_s:>9.2f}{b.floor_s:>9.2f}",
        ]
        for peer in report.peers:
            name = f"{peer.name} {peer.version or ''}".strip()
            if peer.error:
                lines.append(f"  {name:<22}{peer.error}")
                continue
            per = peer.requests / max(len(b.lead_ids), 1)
            lines.append(
                f"  {name:<22}{peer.requests:>9}{peer.limit_refusals:>9}{per:>12.3f}"
                f"{peer.wall_s:>9.2f}{peer.floor_s:>9.2f}"
                f"{_ratio(b.rest_requests, peer.requests):>16}{_ratio(b.drain_s, peer.wall_s):>17}"
            )
        lines.append(
            "  (the peers get every lead id at once; the plugin learns of each chat from its"
            " webhook)"
        )
    if report.growth:
        lines += ["", "Memory as the burst grows (sandbox limit off, plugin on its plan)"]
        for g in report.growth:
            lines.append(
                f"  {g.chats:>6} chats: host peak {g.host_peak_rss_mb:.1f} MB,"
                f" {g.appeals} appeals, drain {g.drain_s:.1f} s,"
                f" {g.rest_requests} REST requests, sandbox CPU {num(g.sandbox_cpu_s)} s"
            )
    lines += ["", "Targets", *target_lines(targets(report))]
    lines.append(f"\n(the bench took {report.seconds:.0f} s)")
    return "\n".join(lines)
