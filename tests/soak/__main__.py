"""``make soak``: many chats through a faulty Bitrix24, and proof that every one arrives once.

Runs the whole system in one process (host + plugin + sandbox portal over HTTP transports),
turns the sandbox's fault knobs on — lost, duplicated and reordered webhooks, REST errors and
hangs, access tokens expiring — starts N chats of mixed channels (some closed later, some
returning customers), restarts the host in the middle, lets the periodic catch-up run, and
checks the appeals against the portal's own records:

* every dialog (Open Lines session) has exactly one appeal;
* every transcript holds every visitor and operator message of its dialog;
* every attribution is the one the settings give its channel (or the visitor's session).

``python -m tests.soak --chats 1000 --drop 0.2 --rest-errors 0.1``

``--cluster`` runs the same chats and checks against the scaled-out host instead, every part a
real process (PostgreSQL, the sandbox, the web process, workers), killing and restarting them
under load (``tests.soak.cluster``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b24_openlines_plugin.sandbox.chaos import FaultSettings
from b24_openlines_plugin.sandbox.portal import Portal
from tests.stack import PORTAL_URL, Stack, running_stack

MAPPED = {"telegrambot": 4, "vkgroup": 3}  # channel → source; the rest take the default (6)
MIX = ["livechat", "telegrambot", "whatsappbyedna", "vkgroup", "viber", "avito"]
CHURN_ROUNDS = 3
CHURN_PAUSE = 0.01  # seconds between two changes: the walk's pages come in between


@dataclass
class Report:
    chats: int = 0
    dialogs: int = 0
    appeals: int = 0
    duplicates: int = 0
    missing: int = 0
    incomplete: int = 0
    misattributed: int = 0
    catch_up_rounds: int = 0
    mode: str = "offline events"
    restarts: int = 0
    churned: int = 0  # dialogs changed while a walk was under way
    seconds: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)
    # The cluster soak's own figures: processes killed and restarted, and where it looked.
    cluster: list[str] = field(default_factory=list)
    # Which dialogs failed which check (session ids), to say precisely what went wrong.
    failed: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.appeals == self.dialogs and not (
            self.duplicates or self.missing or self.incomplete or self.misattributed
        )

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.injected.items()))
        once = self.duplicates == 0 and self.missing == 0
        return [
            f"chats created            {self.chats}",
            f"dialogs (sessions)       {self.dialogs}",
            f"appeals written          {self.appeals}  (exactly once: {once})",
            f"duplicates               {self.duplicates}",
            f"missing                  {self.missing}",
            f"complete transcripts     {self.appeals - self.incomplete}/{self.appeals}",
            f"correctly attributed     {self.appeals - self.misattributed}/{self.appeals}",
            f"faults injected          {faults}",
            *(self.cluster or [f"host restarts survived   {self.restarts}"]),
            f"catch-up rounds          {self.catch_up_rounds}  ({self.mode})",
            f"changed during walks     {self.churned}",
            f"wall time                {self.seconds:.1f} s",
            *(
                f"{name:<25}{len(ids)}: sessions {_some(ids)}"
                for name, ids in self.failed.items()
                if ids
            ),
            f"RESULT                   {'PASS' if self.ok else 'FAIL'}",
        ]


def _some(ids: list[int], shown: int = 20) -> str:
    more = f" … (+{len(ids) - shown})" if len(ids) > shown else ""
    return ", ".join(map(str, sorted(ids)[:shown])) + more


def expected_source(connector: str) -> int:
    return MAPPED.get(connector, 6)


def dialog_truth(portal: Portal) -> dict[int, tuple[str, list[str]]]:
    """Every dialog's channel and the texts of its visitor and operator messages."""
    truth: dict[int, tuple[str, list[str]]] = {}
    for session in portal.sessions.values():
        chat = portal.chats[session.chat_id]
        texts = [
            m.text
            for m in portal.messages.values()
            if m.session_id == session.id and m.author_id != 0
        ]
        truth[session.id] = (chat.connector, texts)
    return truth


def check(
    truth: dict[int, tuple[str, list[str]]], appeals: list[dict[str, Any]], report: Report
) -> None:
    """The appeals against the portal's dialogs (``dialog_truth``): the report's figures."""
    report.dialogs = len(truth)
    report.appeals = len(appeals)
    keys = Counter(a["key"] for a in appeals)
    report.duplicates = sum(n - 1 for n in keys.values())
    by_session = {int(a["key"].rsplit(":", 1)[1]): a for a in appeals}
    missing = sorted(set(truth) - set(by_session))
    incomplete: list[int] = []
    misattributed: list[int] = []
    for session_id, appeal in by_session.items():
        connector, texts = truth.get(session_id, ("?", []))
        if any(text not in appeal["text"] for text in texts):
            incomplete.append(session_id)
        attribution = appeal["attribution"]
        if attribution["source_id"] != expected_source(connector) or appeal["channel"] != connector:
            misattributed.append(session_id)
    report.missing, report.incomplete = len(missing), len(incomplete)
    report.misattributed = len(misattributed)
    report.failed = {
        "duplicated": sorted(int(k.rsplit(":", 1)[1]) for k, n in keys.items() if n > 1),
        "missing": missing,
        "incomplete": incomplete,
        "misattributed": misattributed,
    }


def fault_knobs(args: argparse.Namespace) -> FaultSettings:
    """The sandbox's soak knobs from the command line (the same in both modes)."""
    return FaultSettings(
        seed=args.seed,
        webhook_drop_rate=args.drop,
        webhook_duplicate_rate=args.duplicate,
        webhook_reorder=5,
        rest_error_rate=args.rest_errors,
        operating_block_seconds=1.0,
        rest_timeout_rate=args.timeouts,
        rest_timeout_seconds=1.0,
        expire_tokens_every=args.expire_every,
    )


def bulk_body(args: argparse.Namespace) -> dict[str, Any]:
    """``POST /sandbox/api/chats/bulk``: the chats of a run."""
    return {"count": args.chats, "mix": MIX, "lines": [1], "close": True, "seed": args.seed}


async def soak(args: argparse.Namespace, db: Path) -> Report:
    report = Report(mode="offline events" if args.offline else "activity cursor")
    started = time.monotonic()
    async with running_stack(db, seed_crm=False, offline_events=args.offline) as stack:
        integration = await stack.configure(
            messenger_map={c: {"source_id": s} for c, s in MAPPED.items()}
        )
        answer = await stack.connect(integration["id"])
        assert answer.status_code == 303, answer.text
        await stack.catch_up(integration["id"])  # binds the handlers, sets the cursor
        knobs = vars(fault_knobs(args))
        set_faults = await stack.browser.post(f"{PORTAL_URL}/sandbox/api/faults", json=knobs)
        assert set_faults.status_code == 200, set_faults.text
        bulk = await stack.browser.post(
            f"{PORTAL_URL}/sandbox/api/chats/bulk", json=bulk_body(args), timeout=120
        )
        assert bulk.status_code == 201, bulk.text
        report.chats = bulk.json()["count"]
        print(
            f"  {report.chats} chats started after {time.monotonic() - started:.1f} s", flush=True
        )
        if args.restart:
            await asyncio.sleep(0.5)  # mid-processing
            await stack.restart_host()
            report.restarts += 1
        await stack.settled()
        print(f"  pushes processed after {time.monotonic() - started:.1f} s", flush=True)
        rng = random.Random(args.seed)
        for round_ in range(1, args.rounds + 1):
            report.catch_up_rounds = round_
            changing = round_ <= CHURN_ROUNDS and args.churn > 0
            churn = asyncio.create_task(_churn(stack, rng, args.churn if changing else 0))
            await stack.catch_up(integration["id"])
            report.churned += await churn
            await stack.settled()
            truth = dialog_truth(stack.sandbox.portal)
            check(truth, await stack.all_appeals(), report)
            print(
                f"  round {round_}: {report.appeals}/{report.dialogs} appeals, "
                f"{report.incomplete} incomplete",
                flush=True,
            )
            if report.ok:
                break
        faults = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/faults")).json()
        report.injected = {k: v for k, v in faults["injected"].items() if v}
    report.seconds = time.monotonic() - started
    return report


async def _churn(stack: Stack, rng: random.Random, changes: int) -> int:
    """Dialogs answered and closed while a catch-up round walks them (``--churn``): each change
    moves its activity's LAST_UPDATED past the walk's cursor, where the walk must find it, and
    its new message must reach the appeal. How many changes were made."""
    made = 0
    for _ in range(changes):
        await asyncio.sleep(CHURN_PAUSE)
        portal = stack.sandbox.portal
        open_chats = sorted({s.chat_id for s in portal.sessions.values() if not s.closed})
        if not open_chats:
            break
        chat_id = rng.choice(open_chats)
        body = {
            "messages": [{"author": "operator", "text": f"churn {made} of chat {chat_id}"}],
            "close": True,  # a message alone in an answered dialog changes no activity
        }
        answer = await stack.browser.post(
            f"{PORTAL_URL}/sandbox/api/chats/{chat_id}/messages", json=body
        )
        made += answer.status_code == 200
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--drop", type=float, default=0.2, help="share of webhooks lost")
    parser.add_argument(
        "--duplicate", type=float, default=0.05, help="share of webhooks sent twice"
    )
    parser.add_argument(
        "--rest-errors", type=float, default=0.1, help="share of REST calls failing"
    )
    parser.add_argument("--timeouts", type=float, default=0.005, help="share of REST calls hanging")
    parser.add_argument("--expire-every", type=int, default=150, help="tokens expire every N calls")
    parser.add_argument(
        "--rounds", type=int, help="catch-up rounds at most (default 30; --cluster: 60)"
    )
    parser.add_argument(
        "--no-restart",
        dest="restart",
        action="store_false",
        help="no host restart (--cluster: neither the web process's nor PostgreSQL's)",
    )
    parser.add_argument(
        "--no-offline",
        dest="offline",
        action="store_false",
        help="a plan without offline events: the catch-up walks the activities instead",
    )
    parser.add_argument(
        "--churn",
        type=int,
        default=30,
        help=f"dialogs answered and closed during each of the first {CHURN_ROUNDS} catch-up"
        " rounds, while the walk pages on",
    )
    parser.add_argument("--seed", type=int, default=20261125)
    cluster = parser.add_argument_group("cluster mode")
    cluster.add_argument(
        "--cluster",
        action="store_true",
        help="PostgreSQL, the sandbox, the web process and workers as real processes, killed"
        " and restarted under load",
    )
    cluster.add_argument("--workers", type=int, default=3)
    cluster.add_argument(
        "--kill-every", type=float, default=20.0, help="SIGKILL a random worker every N s (0: no)"
    )
    cluster.add_argument(
        "--chaos-seconds",
        type=float,
        default=65.0,
        help="how long after the chats start processes are killed; the catch-up comes after",
    )
    cluster.add_argument(
        "--schedule-seconds", type=float, default=5.0, help="the workers' catch-up period"
    )
    cluster.add_argument(
        "--sqlite",
        action="store_true",
        help="the cluster on a SQLite file instead of PostgreSQL (no PostgreSQL crash)",
    )
    cluster.add_argument(
        "--logs", type=Path, default=Path("var/soak-cluster"), help="the processes' logs"
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="run this many seeds in a row, from --seed on"
    )
    args = parser.parse_args(argv)
    verdicts: list[str] = []
    for seed in range(args.seed, args.seed + max(args.seeds, 1)):
        if args.seeds > 1:
            print(f"seed {seed}", flush=True)
        ok = _soak_once(argparse.Namespace(**{**vars(args), "seed": seed}))
        verdicts.append(f"seed {seed}: {'PASS' if ok else 'FAIL'}")
    if len(verdicts) > 1:
        print("\n".join(verdicts))
    return 0 if all(v.endswith("PASS") for v in verdicts) else 1


def _soak_once(args: argparse.Namespace) -> bool:
    if args.cluster:
        from tests.soak.cluster import soak_cluster

        args.rounds = 60 if args.rounds is None else args.rounds
        report = soak_cluster(args)
    else:
        args.rounds = 30 if args.rounds is None else args.rounds
        os.environ["B24_OAUTH_SERVERS"] = PORTAL_URL
        with tempfile.TemporaryDirectory() as folder:
            report = asyncio.run(soak(args, Path(folder) / "soak.sqlite3"))
    print("\n".join(report.lines()), flush=True)
    return bool(report.ok)


if __name__ == "__main__":
    sys.exit(main())
