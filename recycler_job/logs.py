"""Logging set-up: text or JSON lines (the log on stderr, the summary on stdout), and a filter
that keeps credentials out.

--debug logs every API call and mount command; a redaction filter masks anything shaped like a
bearer token, a PEM key or the user:password part of an URL anyway, because an earlier tool's
debug mode printed the service-account token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

# Structured fields a record may carry (`extra={...}`); the JSON format prints them as keys.
FIELDS = ("pv", "outcome", "step", "exit_code", "counts")
OUTPUT_LOGGER = "recycler_job.summary"

# The user:password of an URL (authority up to its last "@"), e.g. a PUSHGATEWAY_URL's.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#\"'<>]+(?=@)")
_SECRET_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)((?:token|password|client-key-data)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
    _URL_USERINFO,
)


def mask_url(url: str) -> str:
    """`url` without its user:password part (`http://<redacted>@host`), for printing."""
    return _URL_USERINFO.sub(lambda m: m.group(1) + "<redacted>", url)


def redact(text: str) -> str:
    """Mask credentials in `text`."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "<redacted>", text)
    return text


class RedactingFilter(logging.Filter):
    """Renders each record's message once, redacted, so no handler can print a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors: RFC 3339 UTC time in milliseconds,
    `level`, `logger`, `msg`, and the structured fields the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value not in (None, ""):
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, sort_keys=True)


def _handler(stream: TextIO, log_format: str) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    return handler


def output_logger(log_format: str, stream: TextIO | None = None) -> logging.Logger:
    """The logger for what a pass prints on stdout (summary, failures): bare lines in text
    format, JSON objects like the log's in json format. `stream` replaces stdout."""
    out = logging.getLogger(OUTPUT_LOGGER)
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    out.handlers[:] = [handler]
    out.propagate = False
    out.setLevel(logging.INFO)
    return out


def error_line(message: str, log_format: str) -> str:
    """A start-up error (before logging is set up) in the chosen format."""
    if log_format != "json":
        return f"gluster-recycler: error: {redact(message)}"
    record = logging.LogRecord("recycler_job", logging.ERROR, "", 0, redact(message), None, None)
    return JsonFormatter().format(record)


def setup_logging(*, debug: bool, log_format: str) -> None:
    """Configure the root logger for this process."""
    handler = _handler(sys.stderr, log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # Third-party debug output can include request headers; ours is enough.
    for noisy in ("kubernetes", "urllib3", "openshift", "sh"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
