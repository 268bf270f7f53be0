"""``python -m tests.fuzz [--examples N] [--seed N] [--seeds N]``: the long run (``make fuzz``).

For each seed, a fresh host and sandbox, ``--examples`` requests to every public route, then
the figures: requests and answers per route, and how many refused or read-only requests were
checked to leave the database as it was. Exits 1 on the first failure, with the request that
Hypothesis shrank it to.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from tests.fuzz.target import Figures, fuzz, running_target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--examples", type=int, default=1000, help="requests per route and seed")
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--seeds", type=int, default=3, help="seeds in a row, each on a fresh host")
    return parser.parse_args(argv)


def report(figures: Figures, seconds: float) -> None:
    by_route: dict[str, Counter[int]] = {}
    for (route, status), count in sorted(figures.answers.items()):
        by_route.setdefault(route, Counter())[status] = count
    for route, statuses in by_route.items():
        answers = "  ".join(f"{status}×{count}" for status, count in sorted(statuses.items()))
        print(f"  {route:<50} {sum(statuses.values()):>6}  {answers}")
    print(
        f"  {figures.requests} requests in {seconds:.0f} s ({figures.requests / seconds:.0f}/s),"
        f" no 5xx, no broken connection; {figures.unchanged_checks} refused or read-only"
        " requests left the database unchanged",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    total = 0
    for seed in range(args.seed, args.seed + args.seeds):
        print(f"seed {seed}: {args.examples} requests per route", flush=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as directory, running_target(Path(directory)) as target:
            for number, route in enumerate(target.routes.strategies):
                try:
                    fuzz(target, route, examples=args.examples, seed=seed * 1000 + number)
                except Exception as exc:  # Hypothesis's notes name the shrunk request
                    traceback.print_exception(exc)
                    print(f"FAILED on {route} (seed {seed})", file=sys.stderr)
                    return 1
            report(target.figures, time.monotonic() - started)
            total += target.figures.requests
    print(f"{total} requests over {args.seeds} seeds: all answered below 500")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
