"""The same records fetched through the clients people use: ``fast_bitrix24`` and ``b24pysdk``.

For every chat the plugin reads the lead, the lead's Open Lines activities and the newest
dialog's history (``dialogs.for_entity``). The peers get the lead ids all at once, which is their
best case (the plugin learns of chats one webhook at a time), and fetch the same three things
with each library's own batching: leads by id, activities per lead, then histories by the
activity's session id. Each library keeps to the portal's limit its own way: fast_bitrix24 with
its client-side bucket, b24pysdk (which has none) by retrying the portal's 503s.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from b24_openlines_plugin.bitrix.records import SESSION_PROVIDER
from tests.bench.burst import Setup

LEAD_OWNER_TYPE = 1
ACTIVITY_SELECT = ["ID", "OWNER_ID", "ASSOCIATED_ENTITY_ID", "PROVIDER_PARAMS", "CREATED"]


@dataclass
class Fetched:
    leads: int
    activities: int
    histories: int


def version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _activity_params(lead_id: int) -> dict[str, Any]:
    return {
        "filter": {
            "OWNER_TYPE_ID": LEAD_OWNER_TYPE,
            "OWNER_ID": lead_id,
            "PROVIDER_ID": SESSION_PROVIDER,
        },
        "order": {"ID": "DESC"},
        "select": ACTIVITY_SELECT,
    }


def _newest_sessions(activities: list[dict[str, Any]]) -> list[int]:
    """The newest dialog's session id per lead (what the plugin reads the history of)."""
    newest: dict[str, dict[str, Any]] = {}
    for activity in activities:
        owner = str(activity["OWNER_ID"])
        if owner not in newest or int(activity["ID"]) > int(newest[owner]["ID"]):
            newest[owner] = activity
    return [int(a["ASSOCIATED_ENTITY_ID"]) for a in newest.values()]


async def fetch_fast_bitrix24(
    portal_url: str, app: Setup, lead_ids: list[int], rate: float | None, burst: int | None
) -> Fetched:
    """``BitrixAsync`` with an OAuth token: ``get_by_ID`` and ``call`` batch 50 per request."""
    from fast_bitrix24 import BitrixAsync  # type: ignore[import-untyped,import-not-found,unused-ignore]

    async def token_func() -> str:
        return app.app_token

    bitrix = BitrixAsync(
        f"{portal_url}/rest/",
        token_func=token_func,
        verbose=False,
        request_pool_size=burst or 1_000_000,
        requests_per_second=rate or 1_000_000.0,
    )
    with warnings.catch_warnings():
        # call() on a *.list method warns that get_all() is usual: per lead is what we need.
        warnings.simplefilter("ignore")
        leads = await bitrix.get_by_ID("crm.lead.get", lead_ids)
        activities = await bitrix.call(
            "crm.activity.list", [_activity_params(lead_id) for lead_id in lead_ids]
        )
        sessions = _newest_sessions(list(activities))
        histories = await bitrix.call(
            "imopenlines.session.history.get", [{"SESSION_ID": s} for s in sessions]
        )
    return Fetched(len(leads), len(activities), len(histories))


@contextlib.contextmanager
def _plain_http() -> Iterator[None]:
    """b24pysdk always builds ``https://{domain}/rest``; the local sandbox speaks plain HTTP.

    Only the URL's scheme changes; requests, batching and retries are the SDK's own.
    """
    from b24pysdk.api.callers.call_method import _MethodCaller  # type: ignore[import-untyped,import-not-found,unused-ignore]

    original = _MethodCaller._base_url
    _MethodCaller._base_url = property(lambda self: f"http://{self._domain}/rest")
    try:
        yield
    finally:
        _MethodCaller._base_url = original


def _results(response: dict[str, Any]) -> dict[str, Any]:
    section = response["result"]
    errors = section.get("result_error")
    if errors:
        raise RuntimeError(f"b24pysdk batch errors: {str(errors)[:300]}")
    results: dict[str, Any] = section["result"]
    return results


def fetch_b24pysdk_sync(portal_url: str, app: Setup, lead_ids: list[int]) -> Fetched:
    """A local application's token: ``call_batches`` of (method, params), 50 per request."""
    from b24pysdk import BitrixAppLocal, BitrixTokenLocal  # type: ignore[import-untyped,import-not-found,unused-ignore]

    local_app = BitrixAppLocal(
        domain=portal_url.removeprefix("http://"),
        client_id=app.client_id,
        client_secret=app.client_secret,
    )
    with _plain_http():
        bitrix = BitrixTokenLocal(auth_token=app.app_token, bitrix_app=local_app)
        leads = _results(
            bitrix.call_batches({f"l{i}": ("crm.lead.get", {"id": i}) for i in lead_ids})
        )
        activity_lists = _results(
            bitrix.call_batches(
                {f"a{i}": ("crm.activity.list", _activity_params(i)) for i in lead_ids}
            )
        )
        activities = [a for found in activity_lists.values() for a in found]
        sessions = _newest_sessions(activities)
        histories = _results(
            bitrix.call_batches(
                {f"h{s}": ("imopenlines.session.history.get", {"SESSION_ID": s}) for s in sessions}
            )
        )
    return Fetched(len(leads), len(activities), len(histories))


async def fetch_b24pysdk(
    portal_url: str, app: Setup, lead_ids: list[int], rate: float | None, burst: int | None
) -> Fetched:
    """b24pysdk is synchronous: it runs in a thread, so the loop keeps serving in-process apps."""
    return await asyncio.to_thread(fetch_b24pysdk_sync, portal_url, app, lead_ids)


PEERS = {
    "fast_bitrix24": fetch_fast_bitrix24,
    "b24pysdk": fetch_b24pysdk,
}
