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
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24_openlines_plugin.sandbox import (
    ENTERPRISE_RATE,
    STANDARD_RATE,
    RateLimit,
    SandboxConfig,
    create_sandbox_app,
)

LIMITS: dict[str, RateLimit | None] = {
    "standard": STANDARD_RATE,
    "enterprise": ENTERPRISE_RATE,
    "off": None,
}
LOG_PATH = "/bench/rest-log"


class RestLog:
    """ASGI middleware: ``entries`` holds ``[wall time, method, HTTP status]`` per REST request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.entries: list[tuple[float, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == LOG_PATH:
            await _send_json(send, self.entries)
            return
        if not path.startswith("/rest/"):
            await self.app(scope, receive, send)
            return
        started = time.time()
        status = 0

        async def logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, logged)
        finally:
            self.entries.append((started, path.removeprefix("/rest/"), status))


async def _send_json(send: Send, value: Any) -> None:
    import json

    body = json.dumps(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def logged_sandbox(public_url: str, limit: str, redirect_uri: str, **identity: Any) -> RestLog:
    """The sandbox app as the bench runs it: the given public URL, rate limit and redirect
    (``identity``: other ``SandboxConfig`` fields, such as a portal's own ``member_id``)."""
    config = SandboxConfig(
        public_url=public_url, redirect_uri=redirect_uri, rate_limit=LIMITS[limit], **identity
    )
    return RestLog(create_sandbox_app(config))


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
