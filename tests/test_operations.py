"""Issue 13, item 1: what an operator's probes and Prometheus see — ``/healthz``, ``/readyz``
and ``/metrics`` — over HTTP, on the host and the sandbox portal."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from b24_openlines_plugin.bitrix.client import Credentials, RestClient
from b24_openlines_plugin.bitrix.limits import LeakyBucket
from hooks.host.app import create_app
from hooks.host.logs import ContextFilter, json_formatter, log_context
from hooks.host.metrics import HostMetrics, exposition
from hooks.host.redact import install_log_redaction
from hooks.host.state import HostConfig
from tests.conftest import HOST_KEY, PUBLIC_URL, RunningHost
from tests.postgres_server import PostgresServer
from tests.stack import HOST_URL, PORTAL_URL, running_stack
from tests.test_rest_client import MemoryRateLimits

pytestmark = pytest.mark.anyio

CHAT = {
    "connector": "livechat",
    "visitor": {"name": "Metered Visitor", "phone": "+79001112233"},
    "messages": [{"author": "visitor", "text": "Сколько стоит?"}],
}


class Scrape:
    """One ``/metrics`` answer, read with Prometheus's own text parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: object) -> float | None:
        return self.samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))

    def total(self, name: str, **labels: object) -> float:
        """The sum over every series of ``name`` that has ``labels`` (whatever its others)."""
        wanted = {(k, str(v)) for k, v in labels.items()}
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


async def scrape(client: httpx.AsyncClient, url: str = "/metrics") -> Scrape:
    answer = await client.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return Scrape(answer.text)


async def ready(client: httpx.AsyncClient, url: str = "/readyz") -> httpx.Response:
    """``/readyz`` once it says ready (a starting worker proves alive within a moment)."""
    deadline = time.monotonic() + 10
    while True:
        answer = await client.get(url)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.05)


async def test_healthz_says_the_process_is_alive(running_host: RunningHost) -> None:
    answer = await running_host.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "alive"}


async def test_readyz_is_ready_with_a_worker_and_the_database(running_host: RunningHost) -> None:
    answer = await ready(running_host.client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ready"] is True and body["reasons"] == []
    assert body["database"] == "ok" and body["workers"] == 1
    assert body["last_worker_seen"] is not None
    assert set(body["queue"]) == {"due", "scheduled", "running"}


async def test_readyz_says_why_without_a_worker(host_config: HostConfig) -> None:
    app = create_app(dataclasses.replace(host_config, worker="none"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            body = answer.json()
            assert body["ready"] is False and body["database"] == "ok"
            assert body["workers"] == 0
            assert any("no worker" in reason for reason in body["reasons"]), body
            assert (await client.get("/healthz")).status_code == 200  # alive all the same
            assert (await scrape(client)).value("analytics_host_workers_alive") == 0


async def test_a_stopped_worker_is_no_longer_counted(host_config: HostConfig) -> None:
    """An inline worker proves alive while it runs; once it stopped, a web process on the same
    database sees none (a clean stop removes its proof; a killed one's goes stale)."""
    app = create_app(host_config)  # inline worker
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            assert (await ready(client)).status_code == 200
    lone = create_app(dataclasses.replace(host_config, worker="none"))
    async with lone.router.lifespan_context(lone):
        transport = httpx.ASGITransport(app=lone)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            answer = await client.get("/readyz")
            assert answer.status_code == 503, answer.text
            assert answer.json()["workers"] == 0


async def test_readyz_and_metrics_when_postgres_is_down() -> None:
    # A server of its own, in a directory it keeps across a stop (its owner can enter it).
    directory = tempfile.mkdtemp(prefix="pg-")
    server = PostgresServer(directory).start()
    try:
        config = HostConfig(db=server.create_database("ops"), host_key=HOST_KEY, worker="inline")
        app = create_app(config)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                answer = await ready(client)
                assert answer.status_code == 200, answer.text
                assert (await scrape(client)).value("analytics_host_database_up") == 1
                server.stop(mode="immediate")
                try:
                    answer = await client.get("/readyz")
                    assert answer.status_code == 503, answer.text
                    assert answer.json() == {
                        "ready": False,
                        "reasons": ["the database does not answer"],
                        "database": "unreachable",
                    }
                    assert (await client.get("/healthz")).status_code == 200
                    assert (await scrape(client)).value("analytics_host_database_up") == 0
                finally:
                    server.start()
                assert (await ready(client)).status_code == 200
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)


async def test_metrics_after_a_chat_went_through_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", schedule_seconds=0) as stack:
        integration = await stack.configure()
        iid = integration["id"]
        connected = await stack.connect(iid)
        assert connected.headers["location"].endswith("?connected=1"), connected.text
        await stack.chat(**CHAT)
        assert len(await stack.appeals()) == 1
        await stack.catch_up(iid)
        webhook_url: str = integration["webhook_url"]
        wrong_token = webhook_url.rsplit("/", 1)[0] + "/not-the-token"
        form = {"content-type": "application/x-www-form-urlencoded"}
        assert (
            await stack.browser.post(wrong_token, content=b"event=X", headers=form)
        ).status_code == 404
        assert (
            await stack.browser.post(webhook_url, content=b"nonsense", headers=form)
        ).status_code == 400

        metrics = await scrape(stack.browser, f"{HOST_URL}/metrics")

        assert metrics.value("analytics_host_webhooks_received_total", integration_id=iid) >= 1
        refused = "analytics_host_webhooks_refused_total"
        assert metrics.value(refused, integration_id=iid, reason="unknown_webhook") == 1
        assert metrics.value(refused, integration_id=iid, reason="malformed_event") == 1
        assert metrics.value("analytics_host_appeals_written_total", integration_id=iid) == 1
        # The inbox by state, as the database holds it.
        items = [i for i in await stack.host.repo.list_inbox(limit=1000) if i.integration_id == iid]
        held = Counter(item.status for item in items)
        assert held["done"] >= 1
        for state in ("pending", "done", "ignored", "failed"):
            assert (
                metrics.value("analytics_host_inbox_items", integration_id=iid, state=state)
                == held[state]
            )
        # REST: batches to the portal, and the commands in them by method.
        requests = "analytics_host_rest_requests_total"
        assert metrics.value(requests, integration_id=iid, method="batch", outcome="ok") >= 1
        commands = "analytics_host_rest_commands_total"
        lists = metrics.value(commands, integration_id=iid, method="crm.lead.list", outcome="ok")
        assert lists >= 1
        assert metrics.total("analytics_host_drain_duration_seconds_count", integration_id=iid) >= 1
        assert metrics.value("analytics_host_workers_alive") == 1
        caught_up = "analytics_host_catchup_last_success_timestamp_seconds"
        assert time.time() - 60 < (metrics.value(caught_up, integration_id=iid) or 0) <= time.time()
        # Never a secret, in a label or anywhere else.
        stored = await stack.host.repo.get_integration(iid)
        assert stored is not None
        secrets = [webhook_url.rsplit("/", 1)[1], *_secret_values(stored.secrets)]
        assert len(secrets) >= 3  # the URL token, the client secret, the tokens
        assert not [s for s in secrets if s in metrics.text]


def _secret_values(secrets: Mapping[str, Any]) -> list[str]:
    return [s.get_secret_value() for s in secrets.values() if len(s.get_secret_value()) >= 8]


async def test_rest_limits_and_refresh_failures_are_counted() -> None:
    """The portal refuses a batch as over its limit (the client waits and sends it again), then
    says the token expired and its renewal fails: each is a figure of its integration."""
    answers = [
        {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"},
        {"result": {"result": {"g0_call": {"ID": "1"}}}},
        {"error": "expired_token", "error_description": "The access token provided has expired"},
    ]

    def portal(request: httpx.Request) -> httpx.Response:
        body = answers.pop(0)
        return httpx.Response(401 if "error" in body else 200, json=body)

    async def refuse(stale: str) -> str:
        raise RuntimeError("the OAuth server refused")

    metrics = HostMetrics()
    async with httpx.AsyncClient(transport=httpx.MockTransport(portal)) as http:
        bucket = LeakyBucket(MemoryRateLimits(), "bitrix24:b24.example.ru", rate=20.0, burst=5)
        client = RestClient(
            http,
            "https://b24.example.ru/rest/",
            Credentials("secret-access-token", refuse),
            bucket,
            metrics=metrics,
            integration_id=7,
        )
        assert await client.call("crm.lead.get", {"id": 1}) == {"ID": "1"}
        with pytest.raises(RuntimeError):
            await client.call("crm.lead.get", {"id": 2})
    scraped = Scrape(exposition(metrics, None).decode())
    requests = "analytics_host_rest_requests_total"
    assert (
        scraped.value(requests, integration_id=7, method="batch", outcome="QUERY_LIMIT_EXCEEDED")
        == 1
    )
    assert scraped.value(requests, integration_id=7, method="batch", outcome="ok") == 1
    assert scraped.value(requests, integration_id=7, method="batch", outcome="expired_token") == 1
    assert (
        scraped.value(
            "analytics_host_rest_commands_total",
            integration_id=7,
            method="crm.lead.get",
            outcome="ok",
        )
        == 1
    )
    waited = scraped.value("analytics_host_rate_limit_wait_seconds_total", integration_id=7)
    assert waited is not None and waited > 0  # the limit was believed: the retry waited
    assert scraped.value("analytics_host_token_refresh_failures_total", integration_id=7) == 1
    assert scraped.value("analytics_host_database_up") == 0
    assert "secret-access-token" not in scraped.text


def test_a_json_lines_traceback_is_redacted_too() -> None:
    """python-json-logger formats a traceback itself: the redaction must reach it as well."""
    install_log_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(json_formatter("web"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.operations.json")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("POST /oauth/token/?client_secret=hunter2-secret failed")
        except RuntimeError:
            with log_context(integration_id=5):
                logger.exception("refresh of %s failed", "https://x/?refresh_token=abc123456")
    finally:
        logger.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert line["integration_id"] == 5 and line["process_role"] == "web"
    assert "hunter2-secret" not in out.getvalue() and "abc123456" not in out.getvalue()
    assert "client_secret=***" in line["exc_info"]
