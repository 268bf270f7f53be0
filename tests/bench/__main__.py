"""``python -m tests.bench [--chats N] [--limit standard|enterprise|off] [--compare-growth]``;
``python -m tests.bench --multi-portal [--portals P] [--chats-per-portal C] [--seed S]
[--steady-rate R ...] [--fairness-chats F]``."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from tests.bench.core import Report, run_bench
from tests.bench.multi_portal import (
    CHATS_PER_PORTAL,
    CONCURRENCY,
    FAIRNESS_FLOOD_CHATS,
    PORTALS,
    STEADY_RATES,
    STEADY_SECONDS,
    MultiPortalReport,
    format_multi_report,
    run_multi_portal,
)
from tests.bench.report import format_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="A burst of chats through the host, the plugin and the sandbox portal on"
        " loopback, the same records through fast_bitrix24 and b24pysdk (docs/benchmarks.md).",
    )
    parser.add_argument("--chats", type=int, default=1_000, help="chats in the burst (1000)")
    parser.add_argument(
        "--limit",
        choices=["standard", "enterprise", "off"],
        default="standard",
        help="the sandbox's rate limit: standard 2/s burst 50, enterprise 5/s burst 250",
    )
    parser.add_argument(
        "--compare-growth",
        action="store_true",
        help="also burst 1,000 and 10,000 chats (sandbox limit off) and compare peak memory",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip fast_bitrix24 and b24pysdk")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    multi = parser.add_argument_group(
        "multi-portal",
        "many sandbox portals at once through the host on PostgreSQL, with 1 then 2 workers",
    )
    multi.add_argument(
        "--multi-portal", action="store_true", help="run this bench instead of the burst above"
    )
    multi.add_argument("--portals", type=int, default=PORTALS, help=f"sandbox portals ({PORTALS})")
    multi.add_argument(
        "--chats-per-portal",
        type=int,
        default=CHATS_PER_PORTAL,
        help=f"chats each portal starts ({CHATS_PER_PORTAL})",
    )
    multi.add_argument("--seed", type=int, default=1, help="the chats' seed (1), same in both runs")
    multi.add_argument(
        "--worker-concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"jobs each worker runs at once ({CONCURRENCY}, the host's default)",
    )
    multi.add_argument(
        "--answer-after",
        type=float,
        action="append",
        metavar="SECONDS",
        help="how long each portal takes to answer a REST request; repeat for several runs"
        " (default: at once, then the median time of Bitrix24's official answers)",
    )
    multi.add_argument(
        "--no-backlog",
        action="store_true",
        help="skip the runs on a stored backlog (workers started after the burst is stored)",
    )
    multi.add_argument(
        "--steady-rate",
        type=float,
        action="append",
        metavar="CHATS_PER_S",
        help="a steady flow of this many chats a second over all portals, 1 worker; repeat for"
        f" several, 0 to skip (default: {', '.join(f'{r:g}' for r in STEADY_RATES)})",
    )
    multi.add_argument(
        "--steady-seconds",
        type=float,
        default=STEADY_SECONDS,
        help=f"how long each steady flow lasts ({STEADY_SECONDS:g})",
    )
    multi.add_argument(
        "--fairness-chats",
        type=int,
        default=FAIRNESS_FLOOD_CHATS,
        help=f"then one portal floods this many chats beside another's single chat"
        f" ({FAIRNESS_FLOOD_CHATS}; 0: skip)",
    )
    args = parser.parse_args(argv)
    if min(args.chats, args.portals, args.chats_per_portal, args.worker_concurrency) < 1:
        parser.error("--chats, --portals, --chats-per-portal, --worker-concurrency: at least 1")
    if args.steady_seconds <= 0 or min(args.steady_rate or [0.0]) < 0:
        parser.error("--steady-seconds: more than 0; --steady-rate: 0 or more")
    report: Report | MultiPortalReport
    if args.multi_portal:
        report = asyncio.run(
            run_multi_portal(
                args.portals,
                args.chats_per_portal,
                args.limit,
                args.seed,
                concurrency=args.worker_concurrency,
                answer_times=tuple(args.answer_after or ()) or None,
                backlog=not args.no_backlog,
                steady_rates=tuple(r for r in (args.steady_rate or STEADY_RATES) if r > 0),
                steady_seconds=args.steady_seconds,
                fairness_chats=args.fairness_chats,
            )
        )
        print(format_multi_report(report))
    else:
        report = asyncio.run(
            run_bench(
                args.chats,
                args.limit,
                compare_growth=args.compare_growth,
                peers=not args.no_peers,
            )
        )
        print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
