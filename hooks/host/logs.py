"""How the host's processes log: text for a person, or JSON lines for a log pipeline.

``--log-format json`` formats every record, any library's (uvicorn's, httpx's, a plugin's), as
one JSON object per line with python-json-logger, a formatter for the standard ``logging``: the
records stay the standard library's, so the redaction of ``hooks.host.redact`` (done as records
are made) applies to them as to text. What a line is about travels in context variables
(``log_context``): a line logged while an inbox item is processed carries ``integration_id`` and
``inbox_item_id``, whichever logger wrote it; a plugin adds ``event`` to its own line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

from hooks.host.redact import install_log_redaction, redact

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s{process}: %(message)s"
_JSON_FIELDS = ("asctime", "levelname", "name", "message")
_JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}

_context: ContextVar[Mapping[str, object] | None] = ContextVar("log_context", default=None)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every record logged inside the block (in this task) carries ``fields``."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the fields of ``log_context`` onto each record (a field the call gave wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger formats a traceback afresh rather than using the redacted
    ``exc_text``: the traceback is redacted here too."""

    def formatException(self, ei: Any) -> str:
        return redact(logging.Formatter.formatException(self, ei))


def json_formatter(role: str) -> logging.Formatter:
    """One JSON object per record: time, level, logger, message, the context's fields and
    any ``extra`` a call gave, and the process's ``role``."""
    return RedactingJsonFormatter(
        list(_JSON_FIELDS), rename_fields=_JSON_NAMES, static_fields={"process_role": role}
    )


def configure_logging(log_format: LogFormat, *, role: Literal["web", "worker"]) -> None:
    """Log records of level INFO and above to stderr in ``log_format``, redacted; ``role``
    goes into every JSON line (``process_role``), and a worker's text lines say ``[worker]``."""
    install_log_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(json_formatter(role))
    else:
        tag = " [worker]" if role == "worker" else ""
        handler.setFormatter(logging.Formatter(_TEXT.format(process=tag)))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a library's warning is a record too, not a stray line


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    """``--log-format``, the same for the web process and the workers."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text lines (default) or one JSON object per line",
    )
