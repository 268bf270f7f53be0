"""CRM records as the REST API shows them: string ids, "Y"/"N", dates with the portal's offset.

Key order and key sets follow the official examples (crm.lead.get.json, crm.deal.get.json,
crm.contact.get.json, crm.activity.list in the docs); the sandbox has no custom ``UF_*`` fields.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from b24_openlines_plugin.sandbox.portal import (
    OWNER_TYPE_IDS,
    Activity,
    Contact,
    Deal,
    Lead,
    Person,
    Portal,
)

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")
UTM_KEYS = ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM")
ADDRESS_KEYS = (
    "ADDRESS",
    "ADDRESS_2",
    "ADDRESS_CITY",
    "ADDRESS_POSTAL_CODE",
    "ADDRESS_REGION",
    "ADDRESS_PROVINCE",
    "ADDRESS_COUNTRY",
)


def atom(ts: float, tz: tzinfo) -> str:
    """Bitrix24's ``datetime``: ``2026-11-25T14:03:11+03:00`` in the portal's time zone."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def day_start(ts: float, tz: tzinfo, plus_days: int = 0) -> str:
    day = datetime.fromtimestamp(ts, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=plus_days)).isoformat(timespec="seconds")


def yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _id(value: int | None) -> str | None:
    return str(value) if value else None


def _multifields(person: Person) -> dict[str, Any]:
    """Multifields appear only when the record has values of that type, as in the examples."""
    return {
        key: [m.to_json() for m in person.fields_of(key)]
        for key in MULTIFIELDS
        if person.fields_of(key)
    }


def _has(person: Person) -> dict[str, str]:
    return {
        "HAS_PHONE": yn(bool(person.fields_of("PHONE"))),
        "HAS_EMAIL": yn(bool(person.fields_of("EMAIL"))),
        "HAS_IMOL": yn(any(m.value.startswith("imol|") for m in person.fields_of("IM"))),
    }


def lead_record(lead: Lead, tz: tzinfo) -> dict[str, Any]:
    created, modified = atom(lead.created_at, tz), atom(lead.modified_at, tz)
    user = str(lead.assigned_by_id)
    return {
        "ID": str(lead.id),
        "TITLE": lead.title,
        "HONORIFIC": None,
        "NAME": lead.name,
        "SECOND_NAME": None,
        "LAST_NAME": lead.last_name,
        "COMPANY_TITLE": None,
        "COMPANY_ID": None,
        "CONTACT_ID": _id(lead.contact_id),
        "IS_RETURN_CUSTOMER": yn(lead.is_return_customer),
        "BIRTHDATE": "",
        "SOURCE_ID": lead.source_id,
        "SOURCE_DESCRIPTION": None,
        "STATUS_ID": lead.status_id,
        "STATUS_DESCRIPTION": None,
        "POST": None,
        "COMMENTS": None,
        "CURRENCY_ID": "RUB",
        "OPPORTUNITY": "0.00",
        "IS_MANUAL_OPPORTUNITY": "N",
        **_has(lead),
        "ASSIGNED_BY_ID": user,
        "CREATED_BY_ID": user,
        "MODIFY_BY_ID": user,
        "DATE_CREATE": created,
        "DATE_MODIFY": modified,
        "DATE_CLOSED": "",
        "STATUS_SEMANTIC_ID": "P",
        "OPENED": "Y",
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": None,
        "MOVED_BY_ID": user,
        "MOVED_TIME": created,
        **dict.fromkeys(ADDRESS_KEYS),
        "ADDRESS_COUNTRY_CODE": None,
        "ADDRESS_LOC_ADDR_ID": None,
        **dict.fromkeys(UTM_KEYS),
        "LAST_ACTIVITY_BY": user,
        "LAST_ACTIVITY_TIME": modified,
        **_multifields(lead),
    }


def deal_record(deal: Deal, tz: tzinfo) -> dict[str, Any]:
    created, modified = atom(deal.created_at, tz), atom(deal.modified_at, tz)
    user = str(deal.assigned_by_id)
    return {
        "ID": str(deal.id),
        "TITLE": deal.title,
        "TYPE_ID": "SALE",
        "STAGE_ID": deal.stage_id,
        "PROBABILITY": None,
        "CURRENCY_ID": "RUB",
        "OPPORTUNITY": "0.00",
        "IS_MANUAL_OPPORTUNITY": "N",
        "TAX_VALUE": "0.00",
        "LEAD_ID": None,
        "COMPANY_ID": "0",
        "CONTACT_ID": _id(deal.contact_id),
        "QUOTE_ID": None,
        "BEGINDATE": day_start(deal.created_at, tz),
        "CLOSEDATE": day_start(deal.created_at, tz, plus_days=7),
        "ASSIGNED_BY_ID": user,
        "CREATED_BY_ID": user,
        "MODIFY_BY_ID": user,
        "DATE_CREATE": created,
        "DATE_MODIFY": modified,
        "OPENED": "Y",
        "CLOSED": "N",
        "COMMENTS": None,
        "ADDITIONAL_INFO": None,
        "LOCATION_ID": None,
        "CATEGORY_ID": "0",
        "STAGE_SEMANTIC_ID": "P",
        "IS_NEW": yn(deal.stage_id == "NEW"),
        "IS_RECURRING": "N",
        "IS_RETURN_CUSTOMER": yn(deal.is_return_customer),
        "IS_REPEATED_APPROACH": "N",
        "SOURCE_ID": deal.source_id,
        "SOURCE_DESCRIPTION": None,
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": None,
        "MOVED_BY_ID": user,
        "MOVED_TIME": created,
        "LAST_ACTIVITY_TIME": modified,
        **dict.fromkeys(UTM_KEYS),
        "LAST_ACTIVITY_BY": user,
    }


def contact_record(contact: Contact, tz: tzinfo) -> dict[str, Any]:
    created, modified = atom(contact.created_at, tz), atom(contact.modified_at, tz)
    user = str(contact.assigned_by_id)
    return {
        "ID": str(contact.id),
        "POST": None,
        "COMMENTS": None,
        "HONORIFIC": None,
        "NAME": contact.name,
        "SECOND_NAME": None,
        "LAST_NAME": contact.last_name,
        "PHOTO": None,
        "LEAD_ID": None,
        "TYPE_ID": contact.type_id,
        "SOURCE_ID": contact.source_id,
        "SOURCE_DESCRIPTION": None,
        "COMPANY_ID": None,
        "BIRTHDATE": "",
        "EXPORT": "Y",
        **_has(contact),
        "DATE_CREATE": created,
        "DATE_MODIFY": modified,
        "ASSIGNED_BY_ID": user,
        "CREATED_BY_ID": user,
        "MODIFY_BY_ID": user,
        "OPENED": "Y",
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": None,
        "ORIGIN_VERSION": None,
        "FACE_ID": None,
        "LAST_ACTIVITY_TIME": modified,
        **dict.fromkeys(ADDRESS_KEYS),
        "ADDRESS_LOC_ADDR_ID": None,
        **dict.fromkeys(UTM_KEYS),
        "LAST_ACTIVITY_BY": user,
        **_multifields(contact),
    }


def activity_record(activity: Activity, tz: tzinfo) -> dict[str, Any]:
    """An IMOPENLINES_SESSION activity; COMMUNICATIONS is added only when selected (see listing)."""
    operator = str(activity.responsible_id)
    start = atom(activity.start_time, tz)
    return {
        "ID": str(activity.id),
        "OWNER_ID": str(activity.owner.owner_id),
        "OWNER_TYPE_ID": str(activity.owner.owner_type_id),
        "TYPE_ID": "6",
        "PROVIDER_ID": activity.provider_id,
        "PROVIDER_TYPE_ID": str(activity.line_id),
        "PROVIDER_GROUP_ID": None,
        "ASSOCIATED_ENTITY_ID": str(activity.session_id),
        "SUBJECT": activity.subject,
        "CREATED": atom(activity.created_at, tz),
        "LAST_UPDATED": atom(activity.updated_at, tz),
        "START_TIME": start,
        "END_TIME": atom(activity.end_time, tz),
        "DEADLINE": start,
        "COMPLETED": yn(activity.completed),
        "STATUS": "2" if activity.completed else "1",
        "RESPONSIBLE_ID": operator,
        "PRIORITY": "2",
        "NOTIFY_TYPE": "0",
        "NOTIFY_VALUE": "0",
        "DESCRIPTION": "",
        "DESCRIPTION_TYPE": "1",
        "DIRECTION": "1",
        "LOCATION": "",
        "SETTINGS": [],
        "ORIGINATOR_ID": None,
        "ORIGIN_ID": f"IMOL_{activity.session_id}",
        "AUTHOR_ID": operator,
        "EDITOR_ID": operator,
        "PROVIDER_PARAMS": {"USER_CODE": activity.user_code},
        "PROVIDER_DATA": None,
        "RESULT_MARK": "0",
        "RESULT_VALUE": None,
        "RESULT_SUM": None,
        "RESULT_CURRENCY_ID": None,
        "RESULT_STATUS": "2" if activity.answered else "1",
        "RESULT_STREAM": "0",
        "RESULT_SOURCE_ID": activity.connector,
        "AUTOCOMPLETE_RULE": "0",
    }


def activity_communications(activity: Activity, portal: Portal) -> list[dict[str, Any]]:
    """One IM communication per lead/contact the session is bound to (crm/activity.php)."""
    rows: list[dict[str, Any]] = []
    for index, binding in enumerate(activity.bindings):
        settings: dict[str, Any]
        if binding.owner_type_id == OWNER_TYPE_IDS["LEAD"] and binding.owner_id in portal.leads:
            lead = portal.leads[binding.owner_id]
            settings = {
                "NAME": lead.name,
                "SECOND_NAME": "",
                "LAST_NAME": lead.last_name or "",
                "LEAD_TITLE": lead.title,
            }
        elif (
            binding.owner_type_id == OWNER_TYPE_IDS["CONTACT"]
            and binding.owner_id in portal.contacts
        ):
            contact = portal.contacts[binding.owner_id]
            settings = {
                "HONORIFIC": "",
                "NAME": contact.name,
                "SECOND_NAME": "",
                "LAST_NAME": contact.last_name or "",
                "COMPANY_TITLE": "",
                "COMPANY_ID": 0,
            }
        else:
            continue
        rows.append(
            {
                "ID": str(activity.id * 10 + index),
                "TYPE": "IM",
                "VALUE": f"imol|{activity.user_code}",
                "ENTITY_ID": str(binding.owner_id),
                "ENTITY_TYPE_ID": str(binding.owner_type_id),
                "ENTITY_SETTINGS": settings,
            }
        )
    return rows
