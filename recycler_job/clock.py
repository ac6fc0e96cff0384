"""Kubernetes timestamps and the clock, in one place so tests can pin `now`."""

import datetime as dt
import re
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
_RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def format_time(when: dt.datetime) -> str:
    """Kubernetes Time: RFC 3339, seconds, UTC."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: dt.datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, UTC."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> dt.datetime | None:
    """A Kubernetes Time or MicroTime (RFC 3339) as an aware datetime; None when absent or bad.

    Stricter than `datetime.fromisoformat`, which also takes dates, naive times and compact
    forms; fractions past microseconds (Kubernetes may write nanoseconds) are truncated.
    """
    if not isinstance(value, str):
        return None
    match = _RFC3339_RE.match(value.strip())
    if not match:
        return None
    date, time, fraction, zone = match.groups()
    text = f"{date}T{time}"
    if fraction:
        text += "." + fraction[:6]
    text += "+00:00" if zone in ("Z", "z") else zone
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
