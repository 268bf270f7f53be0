"""``event.offline.get/clear/error/list`` and ``feature.get``: the application reads its queue.

Checks and errors follow the rest module (``Bitrix\\Rest\\Api\\Event``) and the docs'
error tables: administrators only (403 ACCESS_DENIED "Access denied!"); ``clear=0`` needs the
plan's ``rest_offline_extended`` feature (403 WRONG_LICENSE otherwise); the source key is the
request's ``auth_connector``.
"""

from __future__ import annotations

from typing import Any

from b24_openlines_plugin.sandbox.app_methods import ADMIN_ID
from b24_openlines_plugin.sandbox.calls import Call, Method, Outcome
from b24_openlines_plugin.sandbox.errors import RestError, argument_empty
from b24_openlines_plugin.sandbox.offline import (
    GET_FIELDS,
    LIST_FIELDS,
    PAGE_SIZE,
    Selection,
    argument_error,
    sanitize_filter,
    sanitize_order,
)
from b24_openlines_plugin.sandbox.params import get_param

LIST_LIMIT = 50
NOT_ENABLED = "This feature is not enabled for the current license"
FEATURES = ("rest_offline_extended", "rest_auth_connector")


def php_int(value: Any, default: int) -> int:
    """PHP's intval(): "0", false and junk are 0; a missing value is the default."""
    if value is None:
        return default
    if isinstance(value, bool):
        return int(value)
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return 0


def _admin_only(call: Call) -> None:
    if call.grant.user_id != ADMIN_ID:
        raise RestError("ACCESS_DENIED", "Access denied!", 403)


def _connector(call: Call) -> str:
    return str(get_param(call.params, "auth_connector") or "")


def _process_id(call: Call) -> str | None:
    raw = get_param(call.params, "process_id")
    return None if raw is None else str(raw).strip()


def _required_process_id(call: Call) -> str:
    process_id = _process_id(call)
    if process_id is None:
        raise argument_empty("PROCESS_ID")
    return process_id


def offline_get(call: Call) -> Outcome:
    _admin_only(call)
    clear = php_int(get_param(call.params, "clear"), 1) != 0
    if not clear and not call.sandbox.config.offline_events:
        raise RestError("WRONG_LICENSE", f"{NOT_ENABLED}: extended offline events handling", 403)
    limit = php_int(get_param(call.params, "limit"), LIST_LIMIT)
    if limit <= 0:
        raise argument_error("Value must be positive integer")
    selection = Selection(
        conditions=sanitize_filter(get_param(call.params, "filter"), GET_FIELDS),
        order=sanitize_order(get_param(call.params, "order"), GET_FIELDS, "TIMESTAMP_X"),
        limit=limit,
        clear=clear,
        process_id=_process_id(call),
        errors=php_int(get_param(call.params, "error"), 0) == 1,
        connector_id=_connector(call),
    )
    return Outcome(call.sandbox.offline.get(selection))


def _id_list(value: Any) -> list[int]:
    if not isinstance(value, list | dict):
        raise argument_error("Value must be array of integers")
    ids = [php_int(v, 0) for v in (value.values() if isinstance(value, dict) else value)]
    if any(i <= 0 for i in ids):
        raise argument_error("Value must be array of integers")
    return ids


def _message_ids(value: Any, exact_length: bool) -> list[str]:
    if not isinstance(value, list | dict):
        raise argument_error("Value must be array of MESSAGE_ID values")
    found = [str(v).strip() for v in (value.values() if isinstance(value, dict) else value)]
    if exact_length and any(len(m) != 32 for m in found):
        raise argument_error("Value must be array of MESSAGE_ID values")
    return found


def offline_clear(call: Call) -> Outcome:
    """``message_id`` wins over ``id``; with neither (or an empty list), the whole batch goes."""
    _admin_only(call)
    process_id = _required_process_id(call)
    message_ids, ids = get_param(call.params, "message_id"), get_param(call.params, "id")
    queue = call.sandbox.offline
    if message_ids is not None:
        found = _message_ids(message_ids, exact_length=True)
        queue.clear(process_id, _connector(call), message_ids=found or None)
    else:
        listed = None if ids is None else _id_list(ids)
        queue.clear(process_id, _connector(call), ids=listed or None)
    return Outcome(True)


def offline_error(call: Call) -> Outcome:
    _admin_only(call)
    process_id = _required_process_id(call)
    found = _message_ids(get_param(call.params, "message_id"), exact_length=False)
    if found:
        call.sandbox.offline.mark_error(process_id, _connector(call), found)
    return Outcome(True)


def offline_list(call: Call) -> Outcome:
    """Read-only; pages of 50 with ``next`` and ``total`` like other list methods."""
    _admin_only(call)
    conditions = sanitize_filter(get_param(call.params, "filter"), LIST_FIELDS)
    order = sanitize_order(get_param(call.params, "order"), LIST_FIELDS, "ID")
    start = max(php_int(get_param(call.params, "start"), 0), 0)
    rows, total = call.sandbox.offline.page(conditions, order, start, _connector(call))
    following = start + PAGE_SIZE
    return Outcome(rows, total, following if following < total else None)


def feature_get(call: Call) -> Outcome:
    """``{"value": "Y"|"N"}``; offline confirmation follows the ``offline_events`` setting."""
    code = str(get_param(call.params, "CODE") or "")
    if not code:
        raise RestError("CODE_EMPTY", "CODE can't be empty")
    enabled = call.sandbox.config.offline_events if code == "rest_offline_extended" else True
    return Outcome({"value": "Y" if enabled and code in FEATURES else "N"})


METHODS = [
    Method("event.offline.get", None, offline_get),
    Method("event.offline.clear", None, offline_clear),
    Method("event.offline.error", None, offline_error),
    Method("event.offline.list", None, offline_list),
    Method("feature.get", None, feature_get),
]
