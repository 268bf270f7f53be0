"""The sandbox portal with a request log around it, so the bench can count REST round trips.

The sandbox keeps no count of the REST requests it answers, and the bench must not change it.
Wrapping its ASGI app costs no extra network hop (a counting reverse proxy would): every
``/rest/…`` request is logged with its wall time and status (503 is Bitrix24's
QUERY_LIMIT_EXCEEDED), and ``GET /bench/rest-log`` returns the log. ``python -m
tests.bench.sandbox_server`` runs it the way ``python -m b24_openlines_plugin.sandbox`` runs
the bare sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24_openlines_plugin.sandbox import (
    ENTERPRISE_RATE,
    STANDARD_RATE,
    RateLimit,
    SandboxConfig,
    create_sandbox_app,
)
from tests.examples import FIXTURES

LIMITS: dict[str, RateLimit | None] = {
    "standard": STANDARD_RATE,
    "enterprise": ENTERPRISE_RATE,
    "off": None,
}
LOG_PATH = "/bench/rest-log"
COMMANDS_PATH = "/bench/rest-commands"


def official_answer_seconds() -> float:
    """How long Bitrix24 takes to answer a REST request, by its own account: the median of the
    ``time.duration`` (the portal's time, network left out) of the official answers in
    ``tests/fixtures/bitrix24``. The sandbox answers in a millisecond; a real portal does not."""
    durations = []
    for path in FIXTURES.glob("*.json"):
        answer = json.loads(path.read_text(encoding="utf-8"))
        timing = answer.get("time") if isinstance(answer, dict) else None
        if isinstance(timing, dict) and isinstance(timing.get("duration"), int | float):
            durations.append(float(timing["duration"]))
    return statistics.median(durations)


class RestLog:
    """ASGI middleware: ``entries`` holds ``[wall time, method, HTTP status]`` per REST request,
    ``commands`` the commands each one carried (a batch's ``cmd``; any other method is one).
    With ``answer_after`` each REST request waits that long before the sandbox answers it, as
    a real portal's take (``official_answer_seconds``)."""

    def __init__(self, app: ASGIApp, answer_after: float = 0.0) -> None:
        self.app = app
        self.answer_after = answer_after
        self.entries: list[tuple[float, str, int]] = []
        self.commands: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in (LOG_PATH, COMMANDS_PATH):
            await _send_json(send, self.entries if path == LOG_PATH else self.commands)
            return
        if not path.startswith("/rest/"):
            await self.app(scope, receive, send)
            return
        started = time.time()
        status = 0
        body = await _body(receive)
        sent = False

        async def replayed() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if self.answer_after > 0:
                await asyncio.sleep(self.answer_after)
            await self.app(scope, replayed, logged)
        finally:
            self.entries.append((started, path.removeprefix("/rest/"), status))
            self.commands.append(_commands(body))


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _commands(body: bytes) -> int:
    """The commands a request carried: a batch's ``cmd`` entries (JSON or form), else one."""
    try:
        cmd = json.loads(body).get("cmd")
    except (ValueError, AttributeError):
        cmd = None
    if isinstance(cmd, dict):
        return len(cmd)
    form = {key for key, _ in parse_qsl(body.decode(errors="replace")) if key.startswith("cmd[")}
    return len(form) or 1


async def _send_json(send: Send, value: Any) -> None:
    body = json.dumps(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def logged_sandbox(
    public_url: str, limit: str, redirect_uri: str, answer_after: float = 0.0, **identity: Any
) -> RestLog:
    """The sandbox app as the bench runs it: the given public URL, rate limit, redirect and
    time to answer a REST request (``identity``: other ``SandboxConfig`` fields, such as a
    portal's own ``member_id``)."""
    config = SandboxConfig(
        public_url=public_url, redirect_uri=redirect_uri, rate_limit=LIMITS[limit], **identity
    )
    return RestLog(create_sandbox_app(config), answer_after)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.sandbox_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate-limit", choices=sorted(LIMITS), default="standard")
    parser.add_argument("--redirect-uri", default="")
    args = parser.parse_args(argv)
    app = logged_sandbox(f"http://127.0.0.1:{args.port}", args.rate_limit, args.redirect_uri)
    # No access log: the sandbox would spend its CPU writing a line per request.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
