"""``/rest/<method>``: parameters, the leaky bucket, auth, scope, dispatch, and ``batch``.

A request is refused with QUERY_LIMIT_EXCEEDED before anything else when the bucket is full
(refused requests do not fill it); then the token is checked, the method found, its scope
checked, its operating budget checked, and only then it runs. A batch passes the bucket
once; its commands are checked one by one and their errors land in ``result_error``.

Soak faults (``chaos``) come right after the bucket and before the body is read, so a
request they fail or hang never runs its method.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from b24_openlines_plugin.sandbox import (
    app_methods,
    crm_methods,
    errors,
    offline_methods,
    openlines_methods,
)
from b24_openlines_plugin.sandbox.calls import Call, Method, Outcome, php_map, time_object
from b24_openlines_plugin.sandbox.chaos import GATEWAY_TIMEOUT_HTML, Hang
from b24_openlines_plugin.sandbox.errors import RestError
from b24_openlines_plugin.sandbox.oauth import Grant
from b24_openlines_plugin.sandbox.params import (
    get_param,
    parse_pairs,
    parse_query,
    scalar_text,
    truthy,
)
from b24_openlines_plugin.sandbox.state import Sandbox

BATCH_LIMIT = 50
METHODS: dict[str, Method] = {
    m.name.lower(): m
    for m in (
        *crm_methods.METHODS,
        *openlines_methods.METHODS,
        *app_methods.METHODS,
        *offline_methods.METHODS,
    )
}
_REFERENCE = re.compile(
    r"\$(result|result_total|result_next|result_error|result_time)((?:\[[^\[\]]*\])+)"
)


def execute(sandbox: Sandbox, grant: Grant, name: str, params: dict[str, Any]) -> Outcome:
    """Run one method for a token: found, in scope, not faulted, within its operating budget."""
    method = METHODS.get(name.lower())
    if method is None:
        raise errors.method_not_found()
    if not method.allowed(grant.scopes):
        raise errors.insufficient_scope()
    fault = sandbox.faults.take(method.name)
    if fault is not None:
        raise fault
    if sandbox.operating.blocked(method.name) or sandbox.chaos.blocked(method.name):
        raise errors.operation_time_limit()
    outcome = method.handler(Call(sandbox, grant, params))
    sandbox.operating.record(method.name, sandbox.config.operating_cost)
    return outcome


def _method_key(name: str) -> str:
    return METHODS[name.lower()].name if name.lower() in METHODS else name


def _operating(sandbox: Sandbox, name: str) -> tuple[float, int]:
    key = _method_key(name)
    return sandbox.operating.used(key), sandbox.operating.reset_at(key)


async def soak_fault(sandbox: Sandbox, name: str) -> Response | None:
    """Expire every token on the N-th request, then maybe hang (504) or fail at random."""
    if sandbox.chaos.tokens_expire_now():
        sandbox.tokens.expire_all()
    fault = sandbox.chaos.rest_fault(_method_key(name), is_batch=name.lower() == "batch")
    if isinstance(fault, Hang):
        await asyncio.sleep(fault.seconds)
        return HTMLResponse(GATEWAY_TIMEOUT_HTML, status_code=504)
    if fault is not None:
        return error_response(fault)
    return None


async def read_params(request: Request) -> dict[str, Any]:
    """Query string, then the body (JSON or form); like PHP's $_REQUEST, the body wins."""
    params = parse_query(request.url.query)
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if not body:
        return params
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            params.update(data)
    else:
        form = await request.form()
        params.update(parse_pairs((k, v) for k, v in form.multi_items() if isinstance(v, str)))
    return params


def error_response(error: RestError) -> JSONResponse:
    return JSONResponse(error.to_json(), status_code=error.status)


async def rest_endpoint(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    name = request.path_params["method"].removesuffix(".json")
    start, began = sandbox.now(), time.perf_counter()
    if sandbox.bucket is not None and not sandbox.bucket.try_acquire():
        return error_response(errors.query_limit())
    injected = await soak_fault(sandbox, name)
    if injected is not None:
        return injected
    params = await read_params(request)
    token = get_param(params, "auth")
    try:
        if not token:
            raise errors.no_auth()
        grant = sandbox.tokens.authenticate(str(token))
        if name.lower() == "batch":
            outcome = run_batch(sandbox, grant, params)
        else:
            outcome = execute(sandbox, grant, name, params)
    except RestError as error:
        return error_response(error)
    body: dict[str, Any] = {"result": outcome.result}
    if outcome.next is not None:
        body["next"] = outcome.next
    if outcome.total is not None:
        body["total"] = outcome.total
    finish = start + (time.perf_counter() - began)
    operating = None if name.lower() == "batch" else _operating(sandbox, name)
    body["time"] = time_object(start, finish, sandbox.config.timezone, operating)
    return JSONResponse(body)


# --- batch ------------------------------------------------------------------------------------


def _resolve(path: str, results: dict[str, dict[str, Any]], kind: str) -> Any:
    keys = re.findall(r"\[([^\[\]]*)\]", path)
    node: Any = results[kind]
    for key in keys:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def substitute(value: Any, results: dict[str, dict[str, Any]]) -> Any:
    """``$result[cmd][FIELD][0]`` in a command's parameters becomes that earlier value; a
    parameter that is only a reference takes the value as it is (a list stays a list)."""
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    if not isinstance(value, str) or "$result" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        found = _resolve(whole.group(2), results, whole.group(1))
        return found if isinstance(found, dict | list) else scalar_text(found)
    return _REFERENCE.sub(lambda m: scalar_text(_resolve(m.group(2), results, m.group(1))), value)


def _commands(params: dict[str, Any]) -> list[tuple[str, str]]:
    cmd = get_param(params, "cmd")
    if isinstance(cmd, dict):
        return [(str(k), str(v)) for k, v in cmd.items()]
    if isinstance(cmd, list):
        return [(str(i), str(v)) for i, v in enumerate(cmd)]
    raise errors.argument_empty("CMD")


def run_batch(sandbox: Sandbox, grant: Grant, params: dict[str, Any]) -> Outcome:
    """Commands run in order; with ``halt`` the first error stops the rest (batch.*.json)."""
    halt = truthy(get_param(params, "halt"))
    tz = sandbox.config.timezone
    out: dict[str, dict[str, Any]] = {
        "result": {},
        "result_error": {},
        "result_total": {},
        "result_next": {},
        "result_time": {},
    }
    for index, (key, command) in enumerate(_commands(params)):
        start, began = sandbox.now(), time.perf_counter()
        method, _, query = command.partition("?")
        try:
            if index >= BATCH_LIMIT:
                raise RestError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
            if method.strip().lower() == "batch":
                raise RestError(
                    "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
                )
            outcome = execute(sandbox, grant, method.strip(), substitute(parse_query(query), out))
        except RestError as error:
            body = error.to_json()
            if error.code == "insufficient_scope":
                body["error_description"] = ""  # as batch.error.halt0.json shows it
            out["result_error"][key] = body
            if halt:
                break
            continue
        out["result"][key] = outcome.result
        if outcome.total is not None:
            out["result_total"][key] = outcome.total
        if outcome.next is not None:
            out["result_next"][key] = outcome.next
        out["result_time"][key] = time_object(start, start + (time.perf_counter() - began), tz)
    return Outcome({name: php_map(values) for name, values in out.items()})
