"""Issue 13, item 1, with real processes: ``--log-format json`` from the web process and its
local worker, and the local worker's own ``/metrics`` (``--worker-metrics-port``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.servers import free_port, running_servers
from tests.test_operations import CHAT, Scrape


def drained(url: str, integration_id: int, timeout: float = 20.0) -> Scrape:
    """The worker's metrics once it has finished a drain of the integration."""
    deadline = time.monotonic() + timeout
    while True:
        scraped = Scrape(httpx.get(url).text)
        drains = "analytics_host_drain_duration_seconds_count"
        if scraped.total(drains, integration_id=integration_id) >= 1:
            return scraped
        assert time.monotonic() < deadline, "no drain finished"
        time.sleep(0.1)


def test_json_logs_and_the_local_workers_metrics(tmp_path: Path) -> None:
    log = tmp_path / "host.log"
    worker_port = free_port()
    args = ["--log-format", "json", "--worker-metrics-port", str(worker_port)]
    with running_servers(tmp_path / "host.sqlite3", host_args=args, host_log=log) as servers:
        integration = servers.integration()
        iid = integration["id"]
        servers.connect(iid)
        chat = servers.client.post(f"{servers.portal_url}/sandbox/api/chats", json=CHAT)
        assert chat.status_code == 201, chat.text
        servers.appeals()
        app = servers.client.get(f"{servers.portal_url}/sandbox/api/app").json()
        # What the worker did, from the worker itself; what the database holds, from the web.
        # (The catch-up that connecting starts may write the appeal before the drain is done.)
        worker = drained(f"http://127.0.0.1:{worker_port}/metrics", iid)
        requests = "analytics_host_rest_requests_total"
        assert worker.value(requests, integration_id=iid, method="batch", outcome="ok") >= 1
        web = Scrape(servers.client.get(f"{servers.host_url}/metrics").text)
        assert web.value("analytics_host_webhooks_received_total", integration_id=iid) >= 1
        assert web.value("analytics_host_appeals_written_total", integration_id=iid) == 1
        ready = servers.client.get(f"{servers.host_url}/readyz")
        assert ready.status_code == 200 and ready.json()["workers"] == 1, ready.text
    text = log.read_text()
    records: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines() if line]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    processing = [r for r in records if r.get("event") == "ONCRMLEADADD"]
    assert processing, "no line of the webhook's processing"
    assert all(r["integration_id"] == iid and r["inbox_item_id"] >= 1 for r in processing)
    assert all(r["process_role"] == "worker" for r in processing)
    outcomes = [r for r in records if r.get("inbox_item_id") and r["logger"] == "hooks.host.inbox"]
    assert outcomes and all(r["integration_id"] == iid for r in outcomes)
    # uvicorn's access log, in JSON too, with the Webhook URL's token taken out.
    token = integration["webhook_url"].rsplit("/", 1)[1]
    assert any(f"/webhooks/{iid}/***" in r["message"] for r in records)
    for secret in (token, app["client_secret"]):
        assert secret not in text
