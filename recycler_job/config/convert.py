"""The converters of options.py: a raw value (a str from a flag or the environment, any YAML
type from the file) -> the typed value, or `Invalid` with a reason the loader puts in context."""

import math
import os
import re
from collections.abc import Sequence

import durationpy

from recycler_job import names
from recycler_job.config.spec import Converter, Invalid
from recycler_job.selector import parse_selector

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_SECONDS_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
# Go's time.ParseDuration syntax (what kubectl and Kubernetes flags take), units ns to h: one
# or more number+unit terms, e.g. 90s, 5m, 1h30m, 1h0m0.5s. No d/w/y: Go has none either.
# Blanks are allowed between a number and its unit only (` 10 m ` was always accepted).
_GO_DURATION_RE = re.compile(r"^(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:ns|us|µs|μs|ms|s|m|h))+$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_OWNER_RE = re.compile(r"^([0-9]+):([0-9]+)$")
_MODE_RE = re.compile(r"^(?:0[oO])?([0-7]{1,5})$")
_MAX_ID = 4294967294  # 2**32 - 2: (uid_t)-1 means "unchanged" to chown


def string(raw: object) -> str:
    if not isinstance(raw, str):
        raise Invalid("expected a string")
    return raw.strip()


def optional_string(raw: object) -> str | None:
    return string(raw) or None


def pushgateway(raw: object) -> str | None:
    """An http(s) URL or nothing: a typo must fail at start, not silently at the first push."""
    url = string(raw).strip()
    if url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise Invalid("expected an http:// or https:// URL, e.g. http://pushgateway:9091")
    return url.rstrip("/") or None


def to_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise Invalid("expected true/false, 1/0 or yes/no")


def to_int(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_RE.match(raw.strip()):
        return int(raw.strip())
    raise Invalid("expected an integer")


def int_range(low: int, high: int) -> Converter:
    def convert(raw: object) -> int:
        value = to_int(raw)
        if not low <= value <= high:
            raise Invalid(f"must be between {low} and {high}")
        return value

    return convert


def duration(raw: object) -> float:
    """Seconds: a plain number, or a Go-style duration such as 90s, 5m or 1h30m."""
    text = raw.strip() if isinstance(raw, str) else ""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif _SECONDS_RE.match(text):
        value = float(text)
    elif _GO_DURATION_RE.match(text):
        # The syntax is checked above, so durationpy only adds up the terms.
        try:
            value = durationpy.from_str(re.sub(r"\s+", "", text)).total_seconds()
        except durationpy.DurationError:
            raise Invalid("duration out of range") from None
    else:
        raise Invalid(
            "expected seconds or a duration with units ns, us, ms, s, m, h "
            "(e.g. 90, 90s, 5m, 1h30m)"
        )
    if not math.isfinite(value) or value < 0:
        raise Invalid("must be a finite, non-negative duration")
    return value


def positive_duration(raw: object) -> float:
    value = duration(raw)
    if value <= 0:
        raise Invalid("must be greater than zero")
    return value


def optional_positive_duration(raw: object) -> float | None:
    if isinstance(raw, str) and raw.strip().lower() in ("", "none"):
        return None
    return positive_duration(raw)


def lease_duration(raw: object) -> int:
    value = duration(raw)
    if value != int(value):
        raise Invalid("must be a whole number of seconds")
    if not 15 <= value <= 3600:
        raise Invalid("must be between 15 and 3600 seconds")
    return int(value)


def _items(raw: object, separators: str) -> list[str]:
    """A list value: a string split on `separators`, or a YAML list of strings."""
    if isinstance(raw, str):
        parts = re.split(f"[{re.escape(separators)}]", raw)
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        parts = [part for item in raw for part in re.split(f"[{re.escape(separators)}]", item)]
    else:
        raise Invalid("expected a string or a list of strings")
    return [part.strip() for part in parts if part.strip()]


def hosts(raw: object) -> tuple[str, ...]:
    """Every host, in order, duplicates dropped; the old tool's `a;b;c` -> `a,b;c` bug is why."""
    hosts: list[str] = []
    for host in _items(raw, ";,"):
        try:
            names.check_host(host)
        except ValueError:
            raise Invalid(f"{host!r} is not a host name or IP address") from None
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def choices(valid: Sequence[str], what: str) -> Converter:
    """A comma list of names from `valid` (case-insensitive in, canonical spelling out)."""
    canonical = {name.lower(): name for name in valid}

    def convert(raw: object) -> frozenset[str]:
        chosen: set[str] = set()
        for item in _items(raw, ","):
            if item.lower() not in canonical:
                raise Invalid(f"unknown {what} {item!r}; choose from {', '.join(valid)}")
            chosen.add(canonical[item.lower()])
        if not chosen:
            raise Invalid(f"at least one {what} is required")
        return frozenset(chosen)

    return convert


def one_of(valid: Sequence[str]) -> Converter:
    def convert(raw: object) -> str:
        value = string(raw).lower()
        if value not in valid:
            raise Invalid(f"choose one of {', '.join(valid)}")
        return value

    return convert


def failed_messages(raw: object) -> tuple[str, ...]:
    """`|`-separated in flags/env because messages contain commas; a YAML list is taken verbatim."""
    if isinstance(raw, list):
        if not all(isinstance(item, str) for item in raw):
            raise Invalid("expected a list of strings")
        items = [item.strip() for item in raw]
    elif isinstance(raw, str):
        items = [item.strip() for item in raw.split("|")]
    else:
        raise Invalid("expected '|'-separated messages or a list of strings")
    return tuple(dict.fromkeys(item for item in items if item))


def selector(raw: object) -> str | None:
    text = string(raw)
    if not text:
        return None
    try:
        parse_selector(text)
    except ValueError as exc:
        raise Invalid(str(exc), show_value=False) from None
    return text


def max_volumes(raw: object) -> int | None:
    if isinstance(raw, str) and raw.strip().lower() in ("unlimited", "none"):
        return None
    value = to_int(raw)
    if value < 1:
        raise Invalid("must be a positive integer (or 'unlimited')")
    return value


# Directories whose mounts belong to the system or to kubelet: a mount root there would make
# the stale-mount cleanup and the mountpoints share a directory with other people's mounts.
_SHARED_MOUNT_DIRS = ("/mnt",)
_KUBELET_DIR = "/var/lib/kubelet"


def mount_root(raw: object) -> str:
    path = string(raw)
    if not os.path.isabs(path):
        raise Invalid("must be an absolute path")
    path = os.path.normpath(path)
    for candidate in (path, os.path.realpath(path)):
        if candidate in ("/", "//"):
            raise Invalid("must not be the filesystem root")
        if candidate in _SHARED_MOUNT_DIRS:
            raise Invalid(f"must not be {candidate}: other mounts live there")
        if candidate == _KUBELET_DIR or candidate.startswith(_KUBELET_DIR + "/"):
            raise Invalid(f"must not be inside {_KUBELET_DIR}: kubelet's mounts live there")
    return path


def log_dir(raw: object) -> str:
    path = string(raw)
    if not os.path.isabs(path):
        raise Invalid("must be an absolute path")
    return os.path.normpath(path)


def tls_dir(raw: object) -> str | None:
    """A directory that exists: a typo must stop the run, not fail every TLS volume."""
    path = string(raw)
    if not path:
        return None
    if not os.path.isabs(path):
        raise Invalid("must be an absolute path")
    if not os.path.isdir(path):
        raise Invalid("is not a directory (mount the TLS Secret there)")
    return os.path.normpath(path)


def dns_name(kind: str) -> Converter:
    if kind == "label":
        check, limit = names.is_dns1123_label, names.DNS1123_LABEL_MAX
    else:
        check, limit = names.is_dns1123_subdomain, names.DNS1123_SUBDOMAIN_MAX

    def convert(raw: object) -> str:
        value = string(raw)
        if not check(value):
            raise Invalid(
                f"must be a DNS-1123 {kind}: lowercase alphanumerics, '-'"
                + (" and '.'" if kind == "subdomain" else "")
                + f", at most {limit} characters"
            )
        return value

    return convert


def optional_namespace(raw: object) -> str | None:
    return dns_name("label")(raw) if string(raw) else None


def reset_owner(raw: object) -> tuple[int, int] | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise Invalid("quote UID:GID as a string in YAML (unquoted, 1000:50 is a base-60 number)")
    if isinstance(raw, list):
        if len(raw) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise Invalid("expected UID:GID or a list [UID, GID]")
        uid, gid = raw
    else:
        text = string(raw)
        if text.lower() in ("", "none"):
            return None
        match = _OWNER_RE.match(text)
        if not match:
            raise Invalid("expected UID:GID with numeric ids, e.g. 1000:1000")
        uid, gid = int(match.group(1)), int(match.group(2))
    if not (0 <= uid <= _MAX_ID and 0 <= gid <= _MAX_ID):
        raise Invalid(f"ids must be between 0 and {_MAX_ID}")
    return (uid, gid)


def reset_mode(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise Invalid("quote the mode as a string in YAML, e.g. '0775' (YAML reads 0775 as octal)")
    text = string(raw)
    if text.lower() in ("", "none"):
        return None
    match = _MODE_RE.match(text)
    if not match or int(match.group(1), 8) > 0o7777:
        raise Invalid("expected an octal mode such as 0775 or 775 (at most 7777)")
    return int(match.group(1), 8)


def identity(raw: object) -> str:
    value = string(raw)
    if not value:
        raise Invalid("must not be empty")
    return value
