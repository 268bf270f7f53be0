"""The host's Prometheus metrics: what this process did, and what the database holds.

Two kinds, because the host is several processes on possibly several machines:

- **This process's work** (``HostMetrics``): webhooks received and refused, drain durations,
  REST requests and commands, time waited on a portal's rate limit, failed token refreshes, the
  last successful catch-up. Counted where it happens, in a registry of the running host's own;
  each process serves its own (the web process on ``GET /metrics``, a worker on
  ``--metrics-port``), and Prometheus adds them up across its targets.
- **What holds cluster-wide** (``DatabaseFigures``): inbox items by state, appeals written,
  jobs waiting, workers alive. Read from the database when ``/metrics`` is scraped, so every
  web process tells the same truth whichever process did the work.

Every series is labelled by integration id at most (plus a REST method, an outcome or a state
from a small fixed set): never by a token, a URL or text a client typed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from hooks.host.jobs import QueueStatus
from hooks.host.repository import InboxStatus

PREFIX = "analytics_host_"
INTEGRATION = "integration_id"
INBOX_STATES: tuple[InboxStatus, ...] = ("pending", "done", "ignored", "failed")
CONTENT_TYPE = CONTENT_TYPE_LATEST
# A refusal's reason is an error code: a short word, or one label for anything else.
_REASON = re.compile(r"[a-z0-9_:.]{1,64}")
# A drain of one item is milliseconds; one waiting on a portal's limit, tens of seconds.
_DRAIN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _integration(integration_id: int | None) -> str:
    return "" if integration_id is None else str(integration_id)


class HostMetrics:
    """This process's counters; also the ``hooks.services.Metrics`` lent to plugins. A registry
    per running host, so two hosts in one process (the tests) never mix their figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        by_integration = [INTEGRATION]
        rest = [INTEGRATION, "method", "outcome"]
        self._received = self._counter(
            "webhooks_received", "Webhooks stored (to process, or ignored)", by_integration
        )
        self._refused = self._counter(
            "webhooks_refused",
            "Webhooks refused before storing, by reason",
            [INTEGRATION, "reason"],
        )
        self._drain = Histogram(
            f"{PREFIX}drain_duration_seconds",
            "How long a drain of an integration's inbox took",
            by_integration,
            buckets=_DRAIN_BUCKETS,
            registry=self.registry,
        )
        self._requests = self._counter(
            "rest_requests", "HTTP requests to a portal's REST API", rest
        )
        self._commands = self._counter("rest_commands", "Commands sent inside REST requests", rest)
        self._waited = self._counter(
            "rate_limit_wait_seconds", "Seconds waited on a portal's rate limit", by_integration
        )
        self._refresh_failures = self._counter(
            "token_refresh_failures", "Failed renewals of a portal's access token", by_integration
        )
        self._catchup = Gauge(
            f"{PREFIX}catchup_last_success_timestamp_seconds",
            "When the integration's periodic catch-up last succeeded in this process (lag: now"
            " minus the largest of every process's)",
            by_integration,
            registry=self.registry,
        )

    def _counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        return Counter(f"{PREFIX}{name}", documentation, labels, registry=self.registry)

    # the host's own
    def webhook_received(self, integration_id: int) -> None:
        self._received.labels(_integration(integration_id)).inc()

    def webhook_refused(self, integration_id: int | None, reason: str) -> None:
        """``integration_id``: the one the URL names if it exists (a made-up id is no label)."""
        label = reason if _REASON.fullmatch(reason) else "other"
        self._refused.labels(_integration(integration_id), label).inc()

    def drain_finished(self, integration_id: int, seconds: float) -> None:
        self._drain.labels(_integration(integration_id)).observe(seconds)

    def catchup_succeeded(self, integration_id: int) -> None:
        self._catchup.labels(_integration(integration_id)).set(time.time())

    # ``hooks.services.Metrics``
    def rest_request(self, integration_id: int, *, method: str, outcome: str) -> None:
        self._requests.labels(_integration(integration_id), method, outcome).inc()

    def rest_command(self, integration_id: int, *, method: str, outcome: str) -> None:
        self._commands.labels(_integration(integration_id), method, outcome).inc()

    def rate_limit_wait(self, integration_id: int, seconds: float) -> None:
        self._waited.labels(_integration(integration_id)).inc(seconds)

    def token_refresh_failed(self, integration_id: int) -> None:
        self._refresh_failures.labels(_integration(integration_id)).inc()

    def serve(self, port: int, address: str) -> None:
        """Serve this process's metrics on ``http://address:port/metrics`` (a worker, which
        has no web server of its own), from a thread."""
        start_http_server(port, addr=address, registry=self.registry)


@dataclass(frozen=True)
class DatabaseFigures:
    """What the database says at scrape time, for every process of the host at once."""

    integrations: list[int]
    inbox: Mapping[tuple[int, InboxStatus], int]  # (integration, state) → items
    appeals: Mapping[int, int]  # integration → appeals
    queue: QueueStatus

    def collect(self) -> Iterable[Metric]:
        yield _database_up(True)
        inbox = GaugeMetricFamily(
            f"{PREFIX}inbox_items", "Webhook inbox items by state", labels=[INTEGRATION, "state"]
        )
        appeals = CounterMetricFamily(
            f"{PREFIX}appeals_written",
            "Appeals in Raw data → Appeals and goals",
            labels=[INTEGRATION],
        )
        for integration_id in sorted(
            {*self.integrations, *self.appeals, *(i for i, _ in self.inbox)}
        ):
            label = _integration(integration_id)
            for state in INBOX_STATES:
                inbox.add_metric([label, state], self.inbox.get((integration_id, state), 0))
            appeals.add_metric([label], self.appeals.get(integration_id, 0))
        jobs = GaugeMetricFamily(f"{PREFIX}jobs", "Jobs in the queue, by state", labels=["state"])
        queue = self.queue
        for job_state, count in (
            ("due", queue.due),
            ("scheduled", queue.scheduled),
            ("running", queue.running),
        ):
            jobs.add_metric([job_state], count)
        workers = GaugeMetricFamily(
            f"{PREFIX}workers_alive",
            "Workers that proved alive within the stall window",
            value=queue.workers,
        )
        yield from (inbox, appeals, jobs, workers)
        if queue.last_worker_seen is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}worker_last_seen_timestamp_seconds",
                "When a worker last proved alive",
                value=queue.last_worker_seen,
            )


def _database_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        f"{PREFIX}database_up", "Whether the database answered this scrape", value=int(up)
    )


class _DatabaseDown:
    def collect(self) -> Iterable[Metric]:
        yield _database_up(False)


@dataclass(frozen=True)
class _Together:
    parts: tuple[Collector, ...]

    def collect(self) -> Iterable[Metric]:
        for part in self.parts:
            yield from part.collect()


def exposition(process: HostMetrics, figures: DatabaseFigures | None) -> bytes:
    """The text format Prometheus scrapes: this process's metrics, then the database's
    (``None``: the database did not answer, which ``database_up`` says)."""
    database: Collector = figures if figures is not None else _DatabaseDown()
    return generate_latest(_Together((process.registry, database)))
