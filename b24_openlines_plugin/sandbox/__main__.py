"""``python -m b24_openlines_plugin.sandbox --host 127.0.0.1 --port 8100``: run the sandbox."""

from __future__ import annotations

import argparse

import uvicorn

from b24_openlines_plugin.sandbox.app import create_sandbox_app
from b24_openlines_plugin.sandbox.config import ENTERPRISE_RATE, STANDARD_RATE, SandboxConfig
from b24_openlines_plugin.sandbox.pages import LANDING

RATES = {"standard": STANDARD_RATE, "enterprise": ENTERPRISE_RATE, "off": None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m b24_openlines_plugin.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--public-url", help="the address others reach it at (default http://HOST:PORT)"
    )
    parser.add_argument("--redirect-uri", default="", help="the local application's handler path")
    parser.add_argument("--rate-limit", choices=sorted(RATES), default="standard")
    parser.add_argument(
        "--no-event-tokens",
        action="store_true",
        help="event.bind deliveries without OAuth tokens (as for system actions)",
    )
    args = parser.parse_args(argv)
    config = SandboxConfig(
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        redirect_uri=args.redirect_uri,
        rate_limit=RATES[args.rate_limit],
        event_auth_tokens=not args.no_event_tokens,
    )
    app = create_sandbox_app(config)
    base = config.public_url
    rows = [
        ("REST (client_endpoint)", config.client_endpoint),
        ("OAuth authorize", f"{base}/oauth/authorize/"),
        ("OAuth token", f"{base}/oauth/token/"),
        ("client_id", config.client_id),
        ("client_secret", "shown on the local application page"),
        ("Open Lines: start chats", f"{base}/sandbox/"),
        ("Local application", f"{base}/sandbox/app"),
        ("Outgoing webhooks", f"{base}/sandbox/webhooks"),
        ("Event deliveries", f"{base}/sandbox/deliveries"),
        ("Demo site (from an ad)", f"{base}{LANDING}"),
        ("Demo site <head> code", f"{base}/sandbox/site/settings"),
        ("JSON test API", f"{base}/sandbox/api/portal"),
    ]
    print(f"Sandbox Bitrix24 portal {config.domain}  (member_id {config.member_id})")
    for label, value in rows:
        print(f"  {label:<25} {value}")
    print(flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
