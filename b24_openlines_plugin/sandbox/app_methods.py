"""Application-level methods: events (``event.bind/get/unbind``), ``app.info``, ``scope``, users."""

from __future__ import annotations

from datetime import datetime

from b24_openlines_plugin.sandbox.calls import Call, Method, Outcome
from b24_openlines_plugin.sandbox.config import ENTERPRISE_RATE
from b24_openlines_plugin.sandbox.errors import RestError
from b24_openlines_plugin.sandbox.oauth import ALL_SCOPES
from b24_openlines_plugin.sandbox.params import get_param, truthy
from b24_openlines_plugin.sandbox.portal import User
from b24_openlines_plugin.sandbox.records import atom

ADMIN_ID = 1


def _offline(call: Call) -> bool:
    return str(get_param(call.params, "event_type") or "online").lower() == "offline"


def _connector(call: Call) -> str:
    """The source key of offline events (``auth_connector``, sent with the request's auth)."""
    return str(get_param(call.params, "auth_connector") or "")


def _auth_type(call: Call) -> int:
    try:
        return int(str(get_param(call.params, "auth_type") or 0))
    except ValueError:
        return 0


def event_bind(call: Call) -> Outcome:
    offline, auth_type = _offline(call), _auth_type(call)
    if call.grant.user_id != ADMIN_ID and offline:
        raise RestError(
            "ACCESS_DENIED", "Offline events binding requires administrator access rights", 403
        )
    if call.grant.user_id != ADMIN_ID and auth_type not in (0, call.grant.user_id):
        raise RestError(
            "ACCESS_DENIED",
            "Event binding with AUTH_TYPE requires administrator access rights",
            403,
        )
    call.sandbox.events.bind(
        str(get_param(call.params, "event") or ""),
        str(get_param(call.params, "handler") or ""),
        auth_type,
        offline,
        _connector(call),
    )
    return Outcome(True)


def event_get(call: Call) -> Outcome:
    return Outcome([b.to_json() for b in call.sandbox.events.bindings])


def event_unbind(call: Call) -> Outcome:
    offline = _offline(call)
    if offline and call.grant.user_id != ADMIN_ID:
        raise RestError(
            "ACCESS_DENIED", "Offline events unbinding requires administrator access rights", 403
        )
    handler = get_param(call.params, "handler")
    count = call.sandbox.events.unbind(
        str(get_param(call.params, "event") or ""),
        str(handler) if handler else None,
        _auth_type(call),
        offline,
        _connector(call),
    )
    return Outcome({"count": count})


def app_info(call: Call) -> Outcome:
    """The documented fields plus those the official Python SDK reads (client_id, install, …)."""
    sandbox, grant = call.sandbox, call.grant
    config, app = sandbox.config, sandbox.app
    plan = "ent250" if config.rate_limit == ENTERPRISE_RATE else "project"
    scope = ",".join(grant.scopes)
    return Outcome(
        {
            "ID": 7,
            "CODE": app.client_id,
            "VERSION": app.version,
            "STATUS": "L",
            "INSTALLED": True,
            "PAYMENT_EXPIRED": "N",
            "DAYS": None,
            "LANGUAGE_ID": "ru",
            "LICENSE": f"ru_{plan}",
            "LICENSE_TYPE": plan,
            "LICENSE_FAMILY": "ent" if plan.startswith("ent") else plan,
            "client_id": app.client_id,
            "scope": scope,
            "expires": atom(grant.expires, call.tz),
            "install": {
                "installed": True,
                "version": app.version,
                "status": "L",
                "scope": scope,
                "domain": config.domain,
                "uri": config.public_url,
                "client_endpoint": config.client_endpoint,
                "member_id": config.member_id,
                "member_type": "MEMBER",
            },
            "user_id": grant.user_id,
        }
    )


def scope(call: Call) -> Outcome:
    if truthy(get_param(call.params, "full")):
        return Outcome(list(ALL_SCOPES))
    return Outcome(list(call.grant.scopes))


def _user(call: Call) -> User:
    return call.sandbox.portal.users[call.grant.user_id]


def profile(call: Call) -> Outcome:
    user = _user(call)
    offset = datetime.now(call.tz).utcoffset()
    return Outcome(
        {
            "ID": str(user.id),
            "ADMIN": user.id == ADMIN_ID,
            "NAME": user.first_name,
            "LAST_NAME": user.last_name,
            "PERSONAL_GENDER": user.gender,
            "PERSONAL_PHOTO": "",
            "TIME_ZONE": "",
            "TIME_ZONE_OFFSET": int(offset.total_seconds()) if offset else 0,
        }
    )


def user_current(call: Call) -> Outcome:
    user = _user(call)
    return Outcome(
        {
            "ID": str(user.id),
            "ACTIVE": True,
            "NAME": user.first_name,
            "LAST_NAME": user.last_name,
            "WORK_POSITION": user.work_position,
            "PERSONAL_GENDER": user.gender,
            "UF_DEPARTMENT": [1],
        }
    )


METHODS = [
    Method("event.bind", None, event_bind),
    Method("event.get", None, event_get),
    Method("event.unbind", None, event_unbind),
    Method("app.info", None, app_info),
    Method("scope", None, scope),
    Method("profile", None, profile),
    # user-current.md: the full scope or either of its limited versions; the fields the
    # sandbox answers with are among those both limited versions show.
    Method("user.current", ("user", "user_brief", "user_basic"), user_current),
]
