"""``python -m hooks.host --db PATH --host 127.0.0.1 --port N [--public-url URL]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import cast

import uvicorn

from hooks.host.app import create_app
from hooks.host.catalog import CatalogFileError, load_catalog_file
from hooks.host.state import HostConfig
from hooks.models import Language


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hooks.host", description="The reference analytics host."
    )
    parser.add_argument("--db", required=True, help="SQLite file (or sqlite:///path)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--public-url", help="the address browsers and Bitrix24 reach this host at")
    parser.add_argument(
        "--schedule-seconds",
        type=float,
        default=60.0,
        help="how often each integration's periodic work runs (0: never)",
    )
    parser.add_argument("--catalog", type=Path, help="load the account catalog from this JSON file")
    parser.add_argument(
        "--lang",
        choices=["ru", "en"],
        default=os.environ.get("ANALYTICS_HOST_LANG", "ru"),
        help="language of the pages (default ru, or $ANALYTICS_HOST_LANG)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.catalog is not None:
        try:
            load_catalog_file(args.catalog)  # fail before serving, with the file's own error
        except CatalogFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    config = HostConfig(
        db=args.db,
        public_url=public_url,
        language=cast(Language, args.lang),
        catalog_path=args.catalog,
        schedule_seconds=args.schedule_seconds,
    )
    print(
        f"Analytics host: {public_url}/  (Raw data → Appeals and goals: {public_url}/raw/appeals)",
        flush=True,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
