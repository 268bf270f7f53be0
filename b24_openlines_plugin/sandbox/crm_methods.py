"""CRM methods: ``crm.{lead,deal,contact,activity}.get``, their lists, an activity's bindings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any, TypeVar

from b24_openlines_plugin.sandbox.calls import Call, Method, Outcome
from b24_openlines_plugin.sandbox.errors import RestError, crm_error
from b24_openlines_plugin.sandbox.listing import ListQuery, page, read_query
from b24_openlines_plugin.sandbox.params import as_list, get_param
from b24_openlines_plugin.sandbox.portal import Binding
from b24_openlines_plugin.sandbox.records import (
    MULTIFIELDS,
    activity_communications,
    activity_record,
    contact_record,
    deal_record,
    lead_record,
)

BY_ID = [("ID", False)]
T = TypeVar("T")


def _record_id(call: Call) -> int:
    raw = get_param(call.params, "id")
    try:
        value = int(str(raw))
    except ValueError:
        value = 0
    if value <= 0:
        raise crm_error("ID is not defined or invalid")
    return value


def lead_get(call: Call) -> Outcome:
    lead = call.sandbox.portal.leads.get(_record_id(call))
    if lead is None:
        raise crm_error("Not found")
    return Outcome(lead_record(lead, call.tz))


def deal_get(call: Call) -> Outcome:
    deal = call.sandbox.portal.deals.get(_record_id(call))
    if deal is None:
        raise crm_error("Not found")
    return Outcome(deal_record(deal, call.tz))


def contact_get(call: Call) -> Outcome:
    contact = call.sandbox.portal.contacts.get(_record_id(call))
    if contact is None:
        raise crm_error("Not found")
    return Outcome(contact_record(contact, call.tz))


def activity_get(call: Call) -> Outcome:
    """CCrmActivityRestProxy::innerGet: the plain fields, no COMMUNICATIONS (a list's select
    can ask for them; get cannot)."""
    activity = call.sandbox.portal.activities.get(_record_id(call))
    if activity is None:
        raise crm_error("Not found")
    return Outcome(activity_record(activity, call.tz))


def _list(
    call: Call,
    store: Mapping[int, T],
    record: Callable[[T, tzinfo], dict[str, Any]],
    extras: tuple[str, ...] = MULTIFIELDS,
) -> Outcome:
    query = read_query(call.params, BY_ID)
    records = [record(item, call.tz) for item in _candidates(store, query)]
    found = page(records, query, call.tz, extras)
    return Outcome(found.rows, found.total, found.next)


def lead_list(call: Call) -> Outcome:
    return _list(call, call.sandbox.portal.leads, lead_record)


def deal_list(call: Call) -> Outcome:
    return _list(call, call.sandbox.portal.deals, deal_record, ())


def contact_list(call: Call) -> Outcome:
    return _list(call, call.sandbox.portal.contacts, contact_record)


def _by_id(op: str, field: str, value: Any) -> bool:
    """``ID`` = one id (or a list, which CRM filters read as IN), or ``@ID`` = the documented
    IN of an array (``filter[@ID][]``)."""
    return field == "ID" and (op == "@" or (op == "=" and not isinstance(value, dict)))


def _candidates(store: Mapping[int, T], query: ListQuery) -> list[T]:
    """The records a query by id can match, looked up directly (building every record for
    each call made a portal with thousands of chats slower than Bitrix24 itself); the filter
    itself is still applied to them by ``page``."""
    asked = [as_list(v) for op, f, v in query.filter if _by_id(op, f, v)]
    if not asked:
        return list(store.values())
    ids = {_number(i) for v in asked for i in v}
    return [store[i] for i in sorted(ids) if i in store]


def _number(value: Any) -> int:
    """PHP's intval of a parameter: its integer, or 0."""
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def _bindings_filter(query: ListQuery) -> list[tuple[int, int]]:
    """``filter[BINDINGS]``: its (OWNER_TYPE_ID, OWNER_ID or 0 for any) pairs. As
    CCrmActivity::PrepareBindingsFilterSql reads it, an item without a type counts for nothing."""
    raw = next((v for _, f, v in query.filter if f == "BINDINGS"), None)
    items = [item for item in as_list(raw) if isinstance(item, dict)]
    pairs = [
        (_number(get_param(i, "OWNER_TYPE_ID")), _number(get_param(i, "OWNER_ID"))) for i in items
    ]
    return [(type_id, owner_id) for type_id, owner_id in pairs if type_id > 0]


def _bound(binding: Binding, pairs: list[tuple[int, int]]) -> bool:
    return any(
        binding.owner_type_id == type_id and owner_id in (0, binding.owner_id)
        for type_id, owner_id in pairs
    )


def activity_list(call: Call) -> Outcome:
    """``OWNER_TYPE_ID``/``OWNER_ID`` filter on the owner (the first binding) only, as plain
    fields; ``BINDINGS`` on every binding, joined as Bitrix24 joins its bindings table: one row
    per binding matched, so several pairs can list an activity twice (the docs warn of it)."""
    portal = call.sandbox.portal
    query = read_query(call.params, [("START_TIME", False)])
    pairs = _bindings_filter(query)
    records = []
    for activity in _candidates(portal.activities, query):
        rows = sum(_bound(b, pairs) for b in activity.bindings) if pairs else 1
        if rows:
            record = activity_record(activity, call.tz)
            record["COMMUNICATIONS"] = activity_communications(activity, portal)
            records += [record] * rows
    found = page(records, query, call.tz, ("COMMUNICATIONS",), skip={"BINDINGS"})
    return Outcome(found.rows, found.total, found.next)


def activity_binding_list(call: Call) -> Outcome:
    """Every binding of an activity, its owner first, with numeric ids (the docs' example)."""
    raw = get_param(call.params, "activityId")
    if raw in (None, ""):
        raise RestError("100", "Required fields are missing")
    activity = call.sandbox.portal.activities.get(_number(raw))
    if activity is None:
        raise RestError("NOT_FOUND", "Element not found")
    return Outcome(
        [{"entityTypeId": b.owner_type_id, "entityId": b.owner_id} for b in activity.bindings]
    )


METHODS = [
    Method("crm.lead.get", "crm", lead_get),
    Method("crm.deal.get", "crm", deal_get),
    Method("crm.contact.get", "crm", contact_get),
    Method("crm.activity.get", "crm", activity_get),
    Method("crm.lead.list", "crm", lead_list),
    Method("crm.deal.list", "crm", deal_list),
    Method("crm.contact.list", "crm", contact_list),
    Method("crm.activity.list", "crm", activity_list),
    Method("crm.activity.binding.list", "crm", activity_binding_list),
]
