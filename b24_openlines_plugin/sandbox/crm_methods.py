"""CRM methods: ``crm.{lead,deal,contact,activity}.get`` and their lists."""

from __future__ import annotations

from typing import Any

from b24_openlines_plugin.sandbox.calls import Call, Method, Outcome
from b24_openlines_plugin.sandbox.errors import crm_error
from b24_openlines_plugin.sandbox.listing import page, read_query
from b24_openlines_plugin.sandbox.params import get_param
from b24_openlines_plugin.sandbox.records import (
    MULTIFIELDS,
    activity_communications,
    activity_record,
    contact_record,
    deal_record,
    lead_record,
)

BY_ID = [("ID", False)]


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


def _list(call: Call, records: list[dict[str, Any]], extras: tuple[str, ...]) -> Outcome:
    found = page(records, read_query(call.params, BY_ID), call.tz, extras)
    return Outcome(found.rows, found.total, found.next)


def lead_list(call: Call) -> Outcome:
    leads = call.sandbox.portal.leads.values()
    return _list(call, [lead_record(lead, call.tz) for lead in leads], MULTIFIELDS)


def deal_list(call: Call) -> Outcome:
    deals = call.sandbox.portal.deals.values()
    return _list(call, [deal_record(deal, call.tz) for deal in deals], ())


def contact_list(call: Call) -> Outcome:
    contacts = call.sandbox.portal.contacts.values()
    return _list(call, [contact_record(c, call.tz) for c in contacts], MULTIFIELDS)


def activity_list(call: Call) -> Outcome:
    """OWNER_TYPE_ID/OWNER_ID match any binding (lead, deal, contact), not only the owner."""
    portal = call.sandbox.portal
    query = read_query(call.params, [("START_TIME", False)])
    owner = {f: v for op, f, v in query.filter if op == "=" and f in ("OWNER_TYPE_ID", "OWNER_ID")}
    # Looked up directly when asked by id: building every record for each call made a portal
    # with thousands of dialogs slower than Bitrix24 itself.
    asked = [v for op, f, v in query.filter if op == "=" and f == "ID" and not isinstance(v, dict)]
    ids = {str(i) for v in asked for i in (v if isinstance(v, list) else [v])}
    candidates = (
        [portal.activities[int(i)] for i in ids if i.isdigit() and int(i) in portal.activities]
        if asked
        else list(portal.activities.values())
    )
    records = []
    for activity in candidates:
        if owner and not any(
            str(owner.get("OWNER_TYPE_ID", b.owner_type_id)) == str(b.owner_type_id)
            and str(owner.get("OWNER_ID", b.owner_id)) == str(b.owner_id)
            for b in activity.bindings
        ):
            continue
        record = activity_record(activity, call.tz)
        record["COMMUNICATIONS"] = activity_communications(activity, portal)
        records.append(record)
    found = page(records, query, call.tz, ("COMMUNICATIONS",), skip=set(owner))
    return Outcome(found.rows, found.total, found.next)


METHODS = [
    Method("crm.lead.get", "crm", lead_get),
    Method("crm.deal.get", "crm", deal_get),
    Method("crm.contact.get", "crm", contact_get),
    Method("crm.activity.get", "crm", activity_get),
    Method("crm.lead.list", "crm", lead_list),
    Method("crm.deal.list", "crm", deal_list),
    Method("crm.contact.list", "crm", contact_list),
    Method("crm.activity.list", "crm", activity_list),
]
