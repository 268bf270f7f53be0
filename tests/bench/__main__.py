"""``python -m tests.bench [--chats N] [--limit standard|enterprise|off] [--compare-growth]``."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from tests.bench.core import run_bench
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
    args = parser.parse_args(argv)
    if args.chats < 1:
        parser.error("--chats must be at least 1")
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
