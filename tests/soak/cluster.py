"""``python -m tests.soak --cluster``: the soak against the scaled-out host, every part a real
process (``tests.cluster``), with the same chats, fault knobs and checks as the in-process soak.

What only real processes show is what this adds: a random worker SIGKILLed every
``--kill-every`` seconds and started again (its running jobs must be recovered by the others),
the web process SIGKILLed once (webhooks arriving meanwhile are lost: the catch-up must find
them), and PostgreSQL crashing once (``pg_ctl restart -m immediate``: every process must
reconnect and nothing committed may be lost). The workers' own periodic catch-up
(``--schedule-seconds``) then runs by itself; a round is one such period of waiting.

The truth comes from the sandbox over HTTP (``GET /sandbox/api/dialogs``), the appeals from
the web process's API, so nothing is read from inside a process under test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg

from tests.client_settings import sandbox_settings
from tests.cluster import Cluster, ClusterConfig

# ``python -m tests.soak`` runs its __main__ as ``__main__``; this import loads the same
# definitions once more under their package name, which is harmless (no state at import).
from tests.soak.__main__ import MAPPED, Report, bulk_body, check, fault_knobs

PROGRESS_SECONDS = 5.0
PAGE = 500
STABLE_READS = 5
# Seconds after the chats start: the web process dies while the portal is still pushing their
# events (those sent meanwhile are lost), PostgreSQL while the drains run.
WEB_KILL_AT = 2.0
PG_CRASH_AT = 8.0


def soak_cluster(args: argparse.Namespace) -> Report:
    report = Report(mode="offline events" if args.offline else "activity cursor")
    started = time.monotonic()
    shutil.rmtree(args.logs, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="soak-cluster-") as folder:
        config = ClusterConfig(
            directory=Path(folder),
            pg_dir=None,  # a throwaway server, removed with the cluster
            pg_port=0,
            durable=False,
            web_port=0,
            sandbox_port=0,
            workers=args.workers,
            schedule_seconds=args.schedule_seconds,
            offline_events=args.offline,
            seed_crm=False,
            log_dir=args.logs,
            snapshot=True,  # processes restarted mid-run run the code the run started with
            sqlite=Path(folder) / "soak.sqlite3" if args.sqlite else None,
        )
        with Cluster(config) as cluster, httpx.Client(timeout=30.0) as client:
            print("\n".join(f"  {line}" for line in cluster.lines()), flush=True)
            run = Run(args, cluster, client, report, started)
            run.prepare()
            run.chaos()
            run.catch_up()
            if not report.ok:
                print("\n".join(f"  {line}" for line in run.explain()), flush=True)
            report.injected = run.injected()
            report.cluster = run.figures()
    report.seconds = time.monotonic() - started
    return report


class Run:
    """One soak against a running cluster, step by step."""

    def __init__(
        self,
        args: argparse.Namespace,
        cluster: Cluster,
        client: httpx.Client,
        report: Report,
        started: float,
    ) -> None:
        self.args = args
        self.cluster = cluster
        self.client = client
        self.report = report
        self.started = started
        self.rng = random.Random(f"kills:{args.seed}")
        self.worker_kills: list[str] = []
        self.web_restarts = 0
        self.pg_restarts = 0
        self.unreachable = 0  # checks that found the web process or the portal away

    # --- steps ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """An integration set up as a client would, its handlers bound by a worker's first
        periodic run, the fault knobs on, and the chats started."""
        integration_id = self._configure()
        self._connect(integration_id)
        self._until_bound()
        sandbox = self.cluster.sandbox_url
        knobs = vars(fault_knobs(self.args))
        answer = self.client.post(f"{sandbox}/sandbox/api/faults", json=knobs)
        assert answer.status_code == 200, answer.text
        bulk = self.client.post(
            f"{sandbox}/sandbox/api/chats/bulk", json=bulk_body(self.args), timeout=300
        )
        assert bulk.status_code == 201, bulk.text
        self.report.chats = bulk.json()["count"]
        self._say(f"{self.report.chats} chats started")

    def chaos(self) -> None:
        """Kill and restart while the chats are processed: a worker every ``--kill-every``
        seconds, the web process and PostgreSQL once each (``WEB_KILL_AT``, ``PG_CRASH_AT``)."""
        args, began = self.args, time.monotonic()
        web_at = WEB_KILL_AT if args.restart else None
        pg_at = PG_CRASH_AT if args.restart and not args.sqlite else None
        next_kill = args.kill_every if args.kill_every > 0 else None
        next_progress = PROGRESS_SECONDS
        while (elapsed := time.monotonic() - began) < args.chaos_seconds:
            if web_at is not None and elapsed >= web_at:
                web_at = None
                self.cluster.kill_and_restart_web()
                self.web_restarts += 1
                pid = self.cluster.web.pid if self.cluster.web else None
                self._say(f"web process SIGKILLed and started again (pid {pid})")
            if pg_at is not None and elapsed >= pg_at:
                pg_at = None
                before = self._postmaster()
                self.cluster.restart_postgres()
                self.pg_restarts += 1
                self._say(
                    f"PostgreSQL crashed (pg_ctl stop -m immediate) and started again"
                    f" (postmaster pid {before} → {self._postmaster()})"
                )
            if next_kill is not None and elapsed >= next_kill:
                next_kill += args.kill_every
                self._kill_a_worker()
            if elapsed >= next_progress:
                next_progress += PROGRESS_SECONDS
                self._progress()
            time.sleep(0.2)

    def catch_up(self) -> None:
        """Quiet now: wait period by period for the workers' periodic catch-up, checking after
        each, until every dialog is right or the rounds run out."""
        for round_ in range(1, self.args.rounds + 1):
            self.report.catch_up_rounds = round_
            time.sleep(self.args.schedule_seconds)
            done = self._check(stable=True)
            self._progress(f"round {round_}")
            if done:
                return

    # --- helpers -------------------------------------------------------------------------

    def _configure(self) -> int:
        web, sandbox = self.cluster.web_url, self.cluster.sandbox_url
        app = self.client.get(f"{sandbox}/sandbox/api/app").json()
        created = self.client.post(
            f"{web}/api/integrations", json={"plugin": "b24_openlines", "name": "Soak"}
        )
        assert created.status_code == 201, created.text
        integration = created.json()
        hook = self.client.post(
            f"{sandbox}/sandbox/api/outgoing-webhooks",
            json={"handler": integration["webhook_url"], "events": ["ONCRMLEADADD"]},
        )
        assert hook.status_code == 201, hook.text
        body = sandbox_settings(
            app,
            sandbox,
            hook.json()["application_token"],
            messenger_map={c: {"source_id": s} for c, s in MAPPED.items()},
        )
        saved = self.client.put(f"{web}/api/integrations/{integration['id']}/settings", json=body)
        assert saved.status_code == 200, saved.text
        integration_id: int = integration["id"]
        return integration_id

    def _connect(self, integration_id: int) -> None:
        """Connect Bitrix24 → the portal's consent page → Allow → the host's callback."""
        start = self.client.get(f"{self.cluster.web_url}/integrations/{integration_id}/connect")
        assert start.status_code == 303, start.text
        authorize = start.headers["location"]
        assert self.client.get(authorize).status_code == 200
        allowed = self.client.post(
            f"{self.cluster.sandbox_url}/oauth/authorize/",
            data={**dict(parse_qsl(urlsplit(authorize).query)), "user_id": "1"},
        )
        assert allowed.status_code == 302, allowed.text
        back = self.client.get(allowed.headers["location"])
        assert back.status_code == 303, back.text
        assert back.headers["location"].endswith("connected=1"), back.headers["location"]

    def _until_bound(self) -> None:
        """Until a worker's periodic run has bound the plugin's handlers (and, with offline
        events, started the queue the catch-up reads): chats before that would be unseen."""
        deadline = time.monotonic() + 10 * self.args.schedule_seconds + 30
        while time.monotonic() < deadline:
            url = f"{self.cluster.sandbox_url}/sandbox/api/event-handlers"
            if self.client.get(url).json():
                self._say("handlers bound by a worker")
                return
            time.sleep(0.5)
        raise RuntimeError("no worker bound the plugin's handlers: see the workers' logs")

    def _kill_a_worker(self) -> None:
        index = self.rng.randrange(len(self.cluster.workers))
        worker = self.cluster.workers[index]
        pid = worker.pid
        code = self.cluster.kill_worker(index, signal.SIGKILL)
        self.cluster.restart_worker(index)
        self.worker_kills.append(worker.name)
        self._say(f"{worker.name} (pid {pid}) SIGKILLed ({code}), started again as {worker.pid}")

    def _postmaster(self) -> str:
        pid_file = self.cluster.pg.data / "postmaster.pid"
        return pid_file.read_text().split("\n", 1)[0] if pid_file.exists() else "none"

    def _check(self, *, stable: bool = False) -> bool:
        """The report's figures now; ``stable``: the appeals read twice alike, since pages
        read while workers write may shift."""
        try:
            truth = self._truth()
            appeals = self._appeals()
            for _ in range(STABLE_READS if stable else 0):
                again = self._appeals()
                if again == appeals:
                    break
                appeals = again
        except (httpx.HTTPError, ValueError, KeyError):
            self.unreachable += 1
            return False
        check(truth, appeals, self.report)
        return self.report.ok

    def _truth(self) -> dict[int, tuple[str, list[str]]]:
        """Every dialog's channel and its visitor and operator messages, from the portal."""
        answer = self.client.get(f"{self.cluster.sandbox_url}/sandbox/api/dialogs")
        answer.raise_for_status()
        return {
            d["session_id"]: (d["connector"], [m["text"] for m in d["messages"] if m["author_id"]])
            for d in answer.json()
        }

    def _appeals(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            answer = self.client.get(
                f"{self.cluster.web_url}/api/appeals", params={"limit": PAGE, "offset": len(found)}
            )
            answer.raise_for_status()
            page: list[dict[str, Any]] = answer.json()["appeals"]
            found += page
            if len(page) < PAGE:
                return found

    def _progress(self, label: str = "") -> None:
        if not label:
            self._check()
        r = self.report
        self._say(
            f"{label + ': ' if label else ''}{r.appeals}/{r.dialogs} appeals, {r.missing} missing,"
            f" {r.incomplete} incomplete, {r.misattributed} misattributed, {r.duplicates} doubled"
        )

    def _say(self, text: str) -> None:
        print(f"  {time.monotonic() - self.started:6.1f} s  {text}", flush=True)

    def explain(self, shown: int = 10) -> list[str]:
        """What the portal did with the events of the dialogs that failed a check: their
        deliveries (dropped, answered, failed) and their offline records (left waiting,
        reserved by a read never cleared, or marked erroneous)."""
        sandbox = self.cluster.sandbox_url
        dialogs = {
            d["session_id"]: d for d in self.client.get(f"{sandbox}/sandbox/api/dialogs").json()
        }
        deliveries = self.client.get(f"{sandbox}/sandbox/api/deliveries").json()
        offline = self.client.get(f"{sandbox}/sandbox/api/offline-events").json()
        failed = sorted({i for ids in self.report.failed.values() for i in ids})
        lines = [f"why {min(shown, len(failed))} of the {len(failed)} failed dialogs failed:"]
        for session_id in failed[:shown]:
            dialog = dialogs.get(session_id, {})
            ids = {dialog.get("lead_id"), dialog.get("deal_id"), dialog.get("activity_id")} - {None}
            sent = [_delivery(d) for d in deliveries if d["entity_id"] in ids]
            kept = [_offline(r) for r in offline if _offline_id(r) in ids]
            lines.append(
                f"  session {session_id} (chat {dialog.get('chat_id')}, lead"
                f" {dialog.get('lead_id')}, activity {dialog.get('activity_id')}):"
                f" deliveries [{'; '.join(sent) or 'none'}]; offline records"
                f" [{'; '.join(kept) or 'none left'}]"
            )
        return [*lines, *self._host_state()]

    def _host_state(self) -> list[str]:
        """The host's side, read from its database (a diagnosis, never the truth): the
        plugin's catch-up state, the inbox by status and the jobs by name and status."""
        queries = {
            "catch-up state": "SELECT id, connection FROM integrations",
            "inbox": "SELECT status, count(*) FROM webhook_inbox GROUP BY status",
            "jobs": (
                "SELECT name, status, count(*) FROM jobs GROUP BY name, status"
                if self.args.sqlite
                else "SELECT task_name, status, count(*) FROM procrastinate_jobs"
                " GROUP BY task_name, status"
            ),
        }
        try:
            rows = _query(self.cluster.db_url, queries, sqlite=self.args.sqlite)
        except Exception as exc:  # a diagnosis must not hide the report
            return [f"host state unavailable: {exc!r}"]
        lines = []
        for integration_id, connection in rows["catch-up state"]:
            raw = json.loads(connection) if isinstance(connection, str) else connection
            stored = (raw or {}).get("catchup") or {}  # none saved yet: no run got to its end
            state = {k: v for k, v in stored.items() if k != "handler"}
            lines.append(f"integration {integration_id} catch-up state: {state}")
        lines.append(f"inbox: {dict(rows['inbox'])}")
        lines.append(f"jobs: {[tuple(row) for row in rows['jobs']]}")
        return lines

    def injected(self) -> dict[str, int]:
        faults = self.client.get(f"{self.cluster.sandbox_url}/sandbox/api/faults").json()
        return {k: v for k, v in faults["injected"].items() if v}

    def figures(self) -> list[str]:
        kills = ", ".join(f"{n} {c}" for n, c in sorted(Counter(self.worker_kills).items()))
        errors = ", ".join(f"{n} {c}" for n, c in _log_errors(self.cluster).items() if c)
        return [
            f"workers                  {len(self.cluster.workers)}"
            f"  (concurrency {self.cluster.config.concurrency} each)",
            f"worker SIGKILLs          {len(self.worker_kills)}  ({kills or 'none'})",
            f"web process SIGKILLs     {self.web_restarts}",
            f"PostgreSQL crashes       {self.pg_restarts}  (pg_ctl restart -m immediate)",
            f"checks while away        {self.unreachable}",
            f"ERROR lines in the logs  {errors or 'none'}  ({self.cluster.log_dir}/)",
        ]


def _query(url: str, queries: dict[str, str], *, sqlite: bool) -> dict[str, list[Any]]:
    if sqlite:
        with contextlib.closing(sqlite3.connect(url)) as db:
            return {name: db.execute(sql).fetchall() for name, sql in queries.items()}
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def _delivery(delivery: dict[str, Any]) -> str:
    kind = "app" if delivery["kind"] == "app" else "webhook"
    if delivery["dropped"]:
        fate = "dropped"
    elif delivery["status_code"] is not None:
        fate = str(delivery["status_code"])
    else:
        fate = delivery["error"] or "not sent yet"
    return f"{delivery['event']} {kind} {fate}"


def _offline_id(record: dict[str, Any]) -> int | None:
    fields = (record.get("EVENT_DATA") or {}).get("FIELDS") or {}
    raw = str(fields.get("ID", ""))
    return int(raw) if raw.isdigit() else None


def _offline(record: dict[str, Any]) -> str:
    if record.get("ERROR") == "1":
        state = "marked erroneous"
    elif record.get("PROCESS_ID"):
        state = f"reserved by {record['PROCESS_ID'][:8]}…, never cleared"
    else:
        state = "waiting"
    return f"{record['EVENT_NAME']} #{record['ID']} {state}"


def _log_errors(cluster: Cluster) -> dict[str, int]:
    """ERROR lines per process log: expected around the kills, telling when they are not."""
    found: dict[str, int] = {}
    for log in sorted(cluster.log_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        found[log.stem] = sum(" ERROR " in line for line in text.splitlines())
    return found
