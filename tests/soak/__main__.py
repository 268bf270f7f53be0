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
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
    seconds: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)

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
            f"host restarts survived   {self.restarts}",
            f"catch-up rounds          {self.catch_up_rounds}  ({self.mode})",
            f"wall time                {self.seconds:.1f} s",
            f"RESULT                   {'PASS' if self.ok else 'FAIL'}",
        ]


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


def check(stack: Stack, appeals: list[dict[str, Any]], report: Report) -> None:
    truth = dialog_truth(stack.sandbox.portal)
    report.dialogs = len(truth)
    report.appeals = len(appeals)
    keys = Counter(a["key"] for a in appeals)
    report.duplicates = sum(n - 1 for n in keys.values())
    by_session = {int(a["key"].rsplit(":", 1)[1]): a for a in appeals}
    report.missing = len(set(truth) - set(by_session))
    report.incomplete = report.misattributed = 0
    for session_id, appeal in by_session.items():
        connector, texts = truth.get(session_id, ("?", []))
        if any(text not in appeal["text"] for text in texts):
            report.incomplete += 1
        attribution = appeal["attribution"]
        if attribution["source_id"] != expected_source(connector) or appeal["channel"] != connector:
            report.misattributed += 1


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
        knobs = FaultSettings(
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
        set_faults = await stack.browser.post(f"{PORTAL_URL}/sandbox/api/faults", json=vars(knobs))
        assert set_faults.status_code == 200, set_faults.text
        bulk = await stack.browser.post(
            f"{PORTAL_URL}/sandbox/api/chats/bulk",
            json={
                "count": args.chats,
                "mix": MIX,
                "lines": [1],
                "close": True,
                "seed": args.seed,
            },
            timeout=120,
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
        for round_ in range(1, args.rounds + 1):
            report.catch_up_rounds = round_
            await stack.catch_up(integration["id"])
            check(stack, await stack.all_appeals(), report)
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
    parser.add_argument("--rounds", type=int, default=30, help="catch-up rounds at most")
    parser.add_argument("--no-restart", dest="restart", action="store_false")
    parser.add_argument(
        "--no-offline",
        dest="offline",
        action="store_false",
        help="a plan without offline events: the catch-up walks the activities instead",
    )
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    os.environ["B24_OAUTH_SERVERS"] = PORTAL_URL
    with tempfile.TemporaryDirectory() as folder:
        report = asyncio.run(soak(args, Path(folder) / "soak.sqlite3"))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
