"""Configuration from flags, environment and an optional YAML file, validated before any work.

Precedence is flags > environment > file > defaults, per option. Everything is checked up front
so a bad value stops the run (exit 2) before the cluster or a volume is touched. This module must
stay light: `--help` may not import the Kubernetes client, `openshift` or `sh`.

An option is one `Config` field declared with `_option(default, ENV, converter, help, ...)`;
the flag, the file key, `--help` and the README table (`tests/unit/test_readme.py --write`)
follow from it.
"""

import argparse
import math
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, NoReturn, TypeVar

import durationpy
import yaml

from recycler_job import names
from recycler_job.errors import RecyclerError
from recycler_job.exit_codes import ExitCode
from recycler_job.logs import mask_url
from recycler_job.selector import parse_selector

DISTRIBUTION = "gluster-recycler"
"""The package's name in pyproject.toml; its installed metadata carries the version."""
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
"""The pod's namespace, mounted with the service account token; the lease lives there by default."""

VALID_PHASES = ("Failed", "Released")
VALID_RECLAIM_POLICIES = ("Recycle", "Retain", "Delete")
VALID_MODES = ("release", "recreate")
VALID_LOG_FORMATS = ("text", "json")
VALID_BACKENDS = ("fuse", "gfapi")
DEFAULT_FAILED_MESSAGES = (
    "No recycler plugin found for the volume!",
    "no volume plugin matched",  # what Kubernetes said before about 1.3
)
DEFAULT_MOUNT_ROOT = "/var/lib/gluster-recycler/mounts"
DEFAULT_LOG_DIR = "/tmp/gluster-recycler"
"""Where gfapi and gluster CLI logs go: /tmp is an emptyDir in a read-only-root pod."""

_EXIT_CODE_HELP = {
    ExitCode.OK: (
        "pass completed (a volume in use is left for a later run: outcome busy), nothing to "
        "do, dry run, or another run holds the lease"
    ),
    ExitCode.VOLUME_FAILED: (
        "at least one volume could not be recycled, the lease was lost, or an unexpected "
        "error stopped the pass"
    ),
    ExitCode.BAD_CONFIG: "configuration rejected before anything was touched",
    ExitCode.CLUSTER_UNAVAILABLE: "API unreachable, unauthorized or forbidden",
    ExitCode.INTERRUPTED: (
        "SIGTERM/SIGINT: stopped starting volumes, cleaned up, released the lease"
    ),
}
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_SECRET_NAME_RE = re.compile(r"token|password|passwd|secret|credential|private", re.IGNORECASE)
_SECONDS_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
# Go's time.ParseDuration syntax (what kubectl and Kubernetes flags take), units ns to h: one
# or more number+unit terms, e.g. 90s, 5m, 1h30m, 1h0m0.5s. No d/w/y: Go has none either.
# Blanks are allowed between a number and its unit only (` 10 m ` was always accepted).
_GO_DURATION_RE = re.compile(r"^(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:ns|us|µs|μs|ms|s|m|h))+$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_OWNER_RE = re.compile(r"^([0-9]+):([0-9]+)$")
_MODE_RE = re.compile(r"^(?:0[oO])?([0-7]{1,5})$")
_MAX_ID = 4294967294  # 2**32 - 2: (uid_t)-1 means "unchanged" to chown


class ConfigError(RecyclerError):
    """Configuration rejected; the message is one line naming the option and the bad value."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class _Invalid(RecyclerError):
    """A converter's complaint; the loader adds where the value came from."""

    def __init__(self, reason: str, *, show_value: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.show_value = show_value


Converter = Callable[[object], Any]
_T = TypeVar("_T")
_OPTION = "option"  # the key of a Config field's metadata that holds its Option


@dataclass(frozen=True)
class Option:
    """One setting: its flag, environment variable, file key, converter, default and help.

    Declared once, on its Config field (`_option`); argparse, the environment, the file,
    `--help` and the README table are all derived from it.
    """

    env: str | None
    convert: Converter
    help: str
    metavar: str | None = None
    default_help: str | None = None  # None: derived from the default
    flag: str = ""  # "": --<name with '-'>
    in_file: bool = True
    hidden: bool = False
    negative: bool = False  # `env` and the file key no-KEY give the opposite (NO_CLIENT_CHECK)
    dest: str = ""  # filled in from the field
    default: object = None  # likewise

    @property
    def boolean(self) -> bool:
        """A switch: --x/--no-x on the command line, true/false elsewhere."""
        return isinstance(self.default, bool)

    @property
    def file_key(self) -> str:
        return self.flag[2:]

    @property
    def usage(self) -> tuple[str, ...]:
        """How the option is spelled on the command line, as `--help` and the README show it."""
        if self.boolean:
            return (self.flag, "--no-" + self.file_key)
        return (f"{self.flag} {self.metavar}" if self.metavar else self.flag,)

    @property
    def default_text(self) -> str:
        if self.default_help is not None:
            return self.default_help
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, frozenset):
            return ",".join(sorted(value))
        if isinstance(value, tuple):
            return "|".join(str(item) for item in value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    @property
    def help_text(self) -> str:
        """The `--help` line: what it does, then its variable and default."""
        env = f"env {self.env}; " if self.env else ""
        return f"{self.help} [{env}default: {self.default_text}]"


def _option(
    default: _T,
    env: str | None,
    convert: Converter,
    help: str,
    *,
    metavar: str | None = None,
    default_help: str | None = None,
    **more: Any,
) -> _T:
    """A Config field with its default and its Option: the one declaration of a setting."""
    spec = Option(env, convert, help, metavar, default_help, **more)
    return field(default=default, metadata={_OPTION: spec})


# --- converters: raw value (str from flags/env, any YAML type from the file) -> typed value ---


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _string(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid("expected a string")
    return raw.strip()


def _optional_string(raw: object) -> str | None:
    return _string(raw) or None


def _pushgateway(raw: object) -> str | None:
    """An http(s) URL or nothing: a typo must fail at start, not silently at the first push."""
    url = _string(raw).strip()
    if url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise _Invalid("expected an http:// or https:// URL, e.g. http://pushgateway:9091")
    return url.rstrip("/") or None


def _to_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise _Invalid("expected true/false, 1/0 or yes/no")


def _to_int(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_RE.match(raw.strip()):
        return int(raw.strip())
    raise _Invalid("expected an integer")


def _int_range(low: int, high: int) -> Converter:
    def convert(raw: object) -> int:
        value = _to_int(raw)
        if not low <= value <= high:
            raise _Invalid(f"must be between {low} and {high}")
        return value

    return convert


def _duration(raw: object) -> float:
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
            raise _Invalid("duration out of range") from None
    else:
        raise _Invalid(
            "expected seconds or a duration with units ns, us, ms, s, m, h "
            "(e.g. 90, 90s, 5m, 1h30m)"
        )
    if not math.isfinite(value) or value < 0:
        raise _Invalid("must be a finite, non-negative duration")
    return value


def _positive_duration(raw: object) -> float:
    value = _duration(raw)
    if value <= 0:
        raise _Invalid("must be greater than zero")
    return value


def _optional_positive_duration(raw: object) -> float | None:
    if isinstance(raw, str) and raw.strip().lower() in ("", "none"):
        return None
    return _positive_duration(raw)


def _lease_duration(raw: object) -> int:
    value = _duration(raw)
    if value != int(value):
        raise _Invalid("must be a whole number of seconds")
    if not 15 <= value <= 3600:
        raise _Invalid("must be between 15 and 3600 seconds")
    return int(value)


def _items(raw: object, separators: str) -> list[str]:
    """A list value: a string split on `separators`, or a YAML list of strings."""
    if isinstance(raw, str):
        parts = re.split(f"[{re.escape(separators)}]", raw)
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        parts = [part for item in raw for part in re.split(f"[{re.escape(separators)}]", item)]
    else:
        raise _Invalid("expected a string or a list of strings")
    return [part.strip() for part in parts if part.strip()]


def _hosts(raw: object) -> tuple[str, ...]:
    """Every host, in order, duplicates dropped; the old tool's `a;b;c` -> `a,b;c` bug is why."""
    hosts: list[str] = []
    for host in _items(raw, ";,"):
        try:
            names.check_host(host)
        except ValueError:
            raise _Invalid(f"{host!r} is not a host name or IP address") from None
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _choices(valid: Sequence[str], what: str) -> Converter:
    """A comma list of names from `valid` (case-insensitive in, canonical spelling out)."""
    canonical = {name.lower(): name for name in valid}

    def convert(raw: object) -> frozenset[str]:
        chosen: set[str] = set()
        for item in _items(raw, ","):
            if item.lower() not in canonical:
                raise _Invalid(f"unknown {what} {item!r}; choose from {', '.join(valid)}")
            chosen.add(canonical[item.lower()])
        if not chosen:
            raise _Invalid(f"at least one {what} is required")
        return frozenset(chosen)

    return convert


def _one_of(valid: Sequence[str]) -> Converter:
    def convert(raw: object) -> str:
        value = _string(raw).lower()
        if value not in valid:
            raise _Invalid(f"choose one of {', '.join(valid)}")
        return value

    return convert


def _failed_messages(raw: object) -> tuple[str, ...]:
    """`|`-separated in flags/env because messages contain commas; a YAML list is taken verbatim."""
    if isinstance(raw, list):
        if not all(isinstance(item, str) for item in raw):
            raise _Invalid("expected a list of strings")
        items = [item.strip() for item in raw]
    elif isinstance(raw, str):
        items = [item.strip() for item in raw.split("|")]
    else:
        raise _Invalid("expected '|'-separated messages or a list of strings")
    return tuple(dict.fromkeys(item for item in items if item))


def _selector(raw: object) -> str | None:
    text = _string(raw)
    if not text:
        return None
    try:
        parse_selector(text)
    except ValueError as exc:
        raise _Invalid(str(exc), show_value=False) from None
    return text


def _max_volumes(raw: object) -> int | None:
    if isinstance(raw, str) and raw.strip().lower() in ("unlimited", "none"):
        return None
    value = _to_int(raw)
    if value < 1:
        raise _Invalid("must be a positive integer (or 'unlimited')")
    return value


# Directories whose mounts belong to the system or to kubelet: a mount root there would make
# the stale-mount cleanup and the mountpoints share a directory with other people's mounts.
_SHARED_MOUNT_DIRS = ("/mnt",)
_KUBELET_DIR = "/var/lib/kubelet"


def _mount_root(raw: object) -> str:
    path = _string(raw)
    if not os.path.isabs(path):
        raise _Invalid("must be an absolute path")
    path = os.path.normpath(path)
    for candidate in (path, os.path.realpath(path)):
        if candidate in ("/", "//"):
            raise _Invalid("must not be the filesystem root")
        if candidate in _SHARED_MOUNT_DIRS:
            raise _Invalid(f"must not be {candidate}: other mounts live there")
        if candidate == _KUBELET_DIR or candidate.startswith(_KUBELET_DIR + "/"):
            raise _Invalid(f"must not be inside {_KUBELET_DIR}: kubelet's mounts live there")
    return path


def _log_dir(raw: object) -> str:
    path = _string(raw)
    if not os.path.isabs(path):
        raise _Invalid("must be an absolute path")
    return os.path.normpath(path)


def _tls_dir(raw: object) -> str | None:
    """A directory that exists: a typo must stop the run, not fail every TLS volume."""
    path = _string(raw)
    if not path:
        return None
    if not os.path.isabs(path):
        raise _Invalid("must be an absolute path")
    if not os.path.isdir(path):
        raise _Invalid("is not a directory (mount the TLS Secret there)")
    return os.path.normpath(path)


def _dns_name(kind: str) -> Converter:
    if kind == "label":
        check, limit = names.is_dns1123_label, names.DNS1123_LABEL_MAX
    else:
        check, limit = names.is_dns1123_subdomain, names.DNS1123_SUBDOMAIN_MAX

    def convert(raw: object) -> str:
        value = _string(raw)
        if not check(value):
            raise _Invalid(
                f"must be a DNS-1123 {kind}: lowercase alphanumerics, '-'"
                + (" and '.'" if kind == "subdomain" else "")
                + f", at most {limit} characters"
            )
        return value

    return convert


def _optional_namespace(raw: object) -> str | None:
    return _dns_name("label")(raw) if _string(raw) else None


def _reset_owner(raw: object) -> tuple[int, int] | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise _Invalid("quote UID:GID as a string in YAML (unquoted, 1000:50 is a base-60 number)")
    if isinstance(raw, list):
        if len(raw) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise _Invalid("expected UID:GID or a list [UID, GID]")
        uid, gid = raw
    else:
        text = _string(raw)
        if text.lower() in ("", "none"):
            return None
        match = _OWNER_RE.match(text)
        if not match:
            raise _Invalid("expected UID:GID with numeric ids, e.g. 1000:1000")
        uid, gid = int(match.group(1)), int(match.group(2))
    if not (0 <= uid <= _MAX_ID and 0 <= gid <= _MAX_ID):
        raise _Invalid(f"ids must be between 0 and {_MAX_ID}")
    return (uid, gid)


def _reset_mode(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise _Invalid("quote the mode as a string in YAML, e.g. '0775' (YAML reads 0775 as octal)")
    text = _string(raw)
    if text.lower() in ("", "none"):
        return None
    match = _MODE_RE.match(text)
    if not match or int(match.group(1), 8) > 0o7777:
        raise _Invalid("expected an octal mode such as 0775 or 775 (at most 7777)")
    return int(match.group(1), 8)


def _identity(raw: object) -> str:
    value = _string(raw)
    if not value:
        raise _Invalid("must not be empty")
    return value


@dataclass(frozen=True)
class Config:
    """The validated, effective configuration of one run, one field per option.

    Each field declares its option once: default, environment variable, converter (which
    validates) and help. `load_config` is the way to get a validated one.
    """

    config_file: str | None = _option(
        None,
        "CONFIG_FILE",
        _optional_string,
        "YAML file with any of these options (keys: long option names, '-' or '_')",
        metavar="PATH",
        default_help="none",
        flag="--config",
        in_file=False,
    )
    kubeconfig: str | None = _option(
        None,
        "KUBECONFIG",
        _optional_string,
        "kubeconfig file to use instead of the in-cluster service account",
        metavar="PATH",
        default_help="in-cluster, else the client's default",
    )
    gluster_hosts: tuple[str, ...] = _option(
        (),
        "GLUSTER_HOSTS",
        _hosts,
        "gluster servers to mount from, ';' or ',' separated, any number",
        metavar="HOSTS",
        default_help="the hosts of the PV's Endpoints",
    )
    endpoints_namespace: str | None = _option(
        None,
        "GLUSTER_ENDPOINTS_NAMESPACE",
        _optional_namespace,
        "namespace of the Endpoints named by PVs that set no endpointsNamespace",
        metavar="NAMESPACE",
        default_help="none",
    )
    endpoints_from_claim_namespace: bool = _option(
        False,
        "GLUSTER_ENDPOINTS_FROM_CLAIM_NAMESPACE",
        _to_bool,
        "trust Endpoints in tenants' namespaces (the former claim's namespace, the "
        "provisioner's glusterfs-dynamic-*), and read a PV's Endpoints in its former claim's "
        "namespace as a last resort. Risky: anyone who can edit Endpoints there can point the "
        "wipe at another gluster pool",
    )
    gluster_hosts_only_pool: bool = _option(
        False,
        "GLUSTER_HOSTS_ONLY_POOL",
        _to_bool,
        "assert that every selected PV's volume is on the --gluster-hosts pool: a PV whose "
        "Endpoints an admin controls cannot be read is wiped there instead of refused",
    )
    phases: frozenset[str] = _option(
        frozenset({"Failed"}),
        "RECYCLE_PHASES",
        _choices(VALID_PHASES, "phase"),
        "comma list of PV phases to recycle, from Failed, Released",
        metavar="PHASES",
    )
    failed_messages: tuple[str, ...] = _option(
        DEFAULT_FAILED_MESSAGES,
        "FAILED_MESSAGES",
        _failed_messages,
        "status.message values accepted for Failed PVs, '|' separated (messages contain "
        "commas; the YAML file takes a list)",
        metavar="MSGS",
    )
    reclaim_policies: frozenset[str] = _option(
        frozenset({"Recycle"}),
        "RECLAIM_POLICIES",
        _choices(VALID_RECLAIM_POLICIES, "reclaim policy"),
        "comma list of reclaim policies to recycle, from Recycle, Retain, Delete "
        "(Retain PVs are only wiped when listed)",
        metavar="POLICIES",
    )
    selector: str | None = _option(
        None,
        "PV_SELECTOR",
        _selector,
        "label selector PVs must match, e.g. 'tier=scratch,!keep'",
        metavar="SELECTOR",
        default_help="all PVs",
    )
    min_age: float = _option(
        60.0,
        "MIN_AGE",
        _duration,
        "seconds a PV must have been in its phase before it is wiped (or a duration: 90s, "
        "5m, 1h30m)",
        metavar="DURATION",
    )
    mode: str = _option(
        "release",
        "RECYCLE_MODE",
        _one_of(VALID_MODES),
        "release: clear claimRef; recreate: delete and re-create the PV",
        metavar="MODE",
    )
    max_volumes: int | None = _option(
        None,
        "MAX_VOLUMES",
        _max_volumes,
        "recycle at most this many PVs per run ('unlimited' to override a lower-precedence value)",
        metavar="N",
        default_help="unlimited",
    )
    parallel: int = _option(
        1,
        "PARALLEL_VOLUMES",
        _int_range(1, 64),
        "volumes recycled at the same time, 1-64",
        metavar="N",
    )
    wipe_workers: int = _option(
        16,
        "WIPE_WORKERS",
        _int_range(1, 256),
        "entries deleted at once, shared by the volumes recycled at the same time, 1-256",
        metavar="N",
    )
    backend: str = _option(
        "fuse",
        "WIPE_BACKEND",
        _one_of(VALID_BACKENDS),
        "how volumes are reached: fuse (mount, needs a privileged root pod) or gfapi "
        "(libgfapi over TCP, runs unprivileged)",
        metavar="BACKEND",
    )
    log_dir: str = _option(
        DEFAULT_LOG_DIR,
        "GLUSTER_LOG_DIR",
        _log_dir,
        "writable directory for the gluster CLI's and libgfapi's own log files",
        metavar="PATH",
    )
    mount_root: str = _option(
        DEFAULT_MOUNT_ROOT,
        "MOUNT_ROOT",
        _mount_root,
        "absolute directory under which volumes are mounted",
        metavar="PATH",
    )
    mount_timeout: float = _option(
        60.0,
        "MOUNT_TIMEOUT",
        _positive_duration,
        "seconds to wait for a mount (or a duration: 90s, 5m, 1h30m)",
        metavar="DURATION",
    )
    deadline: float | None = _option(
        None,
        "RUN_DEADLINE",
        _optional_positive_duration,
        "stop starting volumes this long after start (or a duration: 90s, 5m, 1h30m)",
        metavar="DURATION",
        default_help="none",
    )
    lease_name: str = _option(
        "gluster-recycler",
        "LEASE_NAME",
        _dns_name("subdomain"),
        "name of the Lease that keeps two runs apart",
        metavar="NAME",
    )
    lease_namespace: str = _option(
        "default",
        "LEASE_NAMESPACE",
        _dns_name("label"),
        "namespace of the Lease",
        metavar="NAMESPACE",
        default_help="$POD_NAMESPACE, else the service account's namespace, else default",
    )
    lease_duration: int = _option(
        60,
        "LEASE_DURATION",
        _lease_duration,
        "seconds the Lease is valid without renewal, 15-3600",
        metavar="SECONDS",
    )
    dry_run: bool = _option(False, "DRY_RUN", _to_bool, "decide and report, but touch nothing")
    debug: bool = _option(False, "DEBUG", _to_bool, "debug logging")
    log_format: str = _option(
        "text",
        "LOG_FORMAT",
        _one_of(VALID_LOG_FORMATS),
        "log line format: text or json",
        metavar="FORMAT",
    )
    report_file: str | None = _option(
        None,
        "REPORT_FILE",
        _optional_string,
        "write the JSON report of the run to this file; '-': to stdout (the summary "
        "then goes to stderr)",
        metavar="PATH",
        default_help="none",
    )
    pushgateway: str | None = _option(
        None,
        "PUSHGATEWAY_URL",
        _pushgateway,
        "push the pass's metrics to this Prometheus Pushgateway",
        metavar="URL",
        default_help="none",
    )
    client_check: bool = _option(
        True,
        "NO_CLIENT_CHECK",
        _to_bool,
        "refuse to wipe a volume that gluster reports clients connected to "
        "(NO_CLIENT_CHECK=true disables it)",
        negative=True,
    )
    reset_owner: tuple[int, int] | None = _option(
        None,
        "RESET_OWNER",
        _reset_owner,
        "chown the emptied volume root to UID:GID",
        metavar="UID:GID",
        default_help="leave unchanged",
    )
    reset_mode: int | None = _option(
        None,
        "RESET_MODE",
        _reset_mode,
        "chmod the emptied volume root to this octal mode, e.g. 0775",
        metavar="OCTAL",
        default_help="leave unchanged",
    )
    tls_dir: str | None = _option(
        None,
        "GLUSTER_TLS_DIR",
        _tls_dir,
        "directory with the client's TLS files for pools with client.ssl on: tls.crt, "
        "tls.key and tls.ca (the appuio fork's Secret) or ca.crt (a kubernetes.io/tls "
        "Secret), or glusterfs.pem, glusterfs.key, glusterfs.ca",
        metavar="PATH",
        default_help="none",
    )
    tls_management: bool = _option(
        False,
        "GLUSTER_TLS_MANAGEMENT",
        _to_bool,
        "use TLS to glusterd too (pools with /var/lib/glusterd/secure-access); reads "
        "glusterfs.pem/.key/.ca from /usr/lib/ssl",
    )
    identity: str = _option(
        "gluster-recycler",
        None,
        _identity,
        "lease holder identity (for tests)",
        metavar="ID",
        in_file=False,
        hidden=True,
    )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (sets sorted, tuples as lists) for logs and the report."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, frozenset):
                out[key] = sorted(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = value
        return out

    def redacted(self) -> dict[str, Any]:
        """`as_dict` with anything secret-looking masked: safe for the debug log.

        The user:password of an URL (PUSHGATEWAY_URL may carry basic auth) is masked; other
        fields hold no secret today (the kubeconfig is a path, never its contents), but an
        earlier recycler's debug mode leaked the service-account token, so mask by name anyway.
        """
        return {key: _redact_value(key, value) for key, value in self.as_dict().items()}


def _redact_value(key: str, value: Any) -> Any:
    if value is not None and _SECRET_NAME_RE.search(key):
        return "<redacted>"
    return mask_url(value) if isinstance(value, str) else value


OPTIONS: tuple[Option, ...] = tuple(
    replace(
        f.metadata[_OPTION],
        dest=f.name,
        default=f.default,
        flag=f.metadata[_OPTION].flag or "--" + f.name.replace("_", "-"),
    )
    for f in fields(Config)
)
"""Every option, in `--help` order."""
_BY_DEST = {opt.dest: opt for opt in OPTIONS}
_FILE_KEYS = {opt.file_key: opt for opt in OPTIONS if opt.in_file}
# The flag spelling of a negative option (no-client-check) is a file key too, with its meaning.
_NEGATIVE_FILE_KEYS = {"no-" + opt.file_key: opt for opt in OPTIONS if opt.negative}


def _epilog() -> str:
    codes = "\n".join(f"  {int(code)}  {_EXIT_CODE_HELP[code]}" for code in ExitCode)
    return (
        "Precedence: flags > environment > config file > defaults. Boolean variables take\n"
        "true/false, 1/0, yes/no; empty variables count as unset. In the config file, list\n"
        "options take a YAML list; quote reset-owner and reset-mode.\n\n"
        f"exit codes:\n{codes}"
    )


class _Parser(argparse.ArgumentParser):
    """Turns argparse's usage-and-exit(2) into a one-line ConfigError; `--help` still exits 0."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"command line: {message}")


def version() -> str:
    """The installed distribution's version: pyproject.toml is its one source."""
    from importlib import metadata  # noqa: PLC0415 (only --version needs it)

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; every default is None so `load_config` sees what was given."""
    parser = _Parser(
        prog="gluster-recycler",
        description="Wipe released GlusterFS PersistentVolumes and return them to the pool "
        "(one pass, then exit).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    for opt in OPTIONS:
        help_text = argparse.SUPPRESS if opt.hidden else opt.help_text
        if opt.boolean:
            parser.add_argument(
                opt.flag,
                dest=opt.dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                opt.flag, dest=opt.dest, default=None, metavar=opt.metavar, help=help_text
            )
    parser.add_argument(
        "--version",
        action="version",
        version=f"gluster-recycler {version()}",
        help="print the version and exit",
    )
    return parser


def _read_file(path: str) -> dict[str, object]:
    """The file's options keyed by Config field; unknown or duplicate keys are errors."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {path!r}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"config file {path!r}: invalid YAML: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r}: expected a mapping of option: value")
    found: dict[str, object] = {}
    for key, raw in data.items():
        value = raw
        norm = key.replace("_", "-") if isinstance(key, str) else None
        if norm in _NEGATIVE_FILE_KEYS:
            dest = _NEGATIVE_FILE_KEYS[norm].dest
            if raw is not None:
                try:
                    value = not _to_bool(raw)
                except _Invalid as exc:
                    raise ConfigError(
                        f"config file {path!r}, key {key!r}: {exc.reason} (got {_show(raw)})"
                    ) from None
        elif norm in _FILE_KEYS:
            dest = _FILE_KEYS[norm].dest
        else:
            raise ConfigError(f"config file {path!r}: unknown key {key!r}")
        if dest in found:
            raise ConfigError(f"config file {path!r}: key {key!r} is given twice")
        found[dest] = value
    return {dest: value for dest, value in found.items() if value is not None}


def _env(environ: Mapping[str, str], name: str | None) -> str | None:
    if name is None:
        return None
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def _convert(opt: Option, raw: object, where: str) -> Any:
    try:
        return opt.convert(raw)
    except _Invalid as exc:
        got = f" (got {_show(raw)})" if exc.show_value else ""
        raise ConfigError(f"{where}: {exc.reason}{got}") from None


_UNSET = object()


def _value(
    opt: Option,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    file_values: Mapping[str, object],
    config_file: str | None,
) -> Any:
    """The option's value by precedence (flag > environment > file), or _UNSET."""
    if (flag_value := getattr(args, opt.dest)) is not None:
        return _convert(opt, flag_value, f"option {opt.flag}")
    if (env_value := _env(environ, opt.env)) is not None:
        value = _convert(opt, env_value, f"environment variable {opt.env} ({opt.flag})")
        return not value if opt.negative else value
    if opt.dest in file_values:
        where = f"config file {config_file!r}, key {opt.file_key!r} ({opt.flag})"
        return _convert(opt, file_values[opt.dest], where)
    return _UNSET


def _default_namespace(environ: Mapping[str, str], namespace_file: str) -> tuple[str, str]:
    """(namespace, where it came from): POD_NAMESPACE, else the in-cluster file, else default."""
    if (value := _env(environ, "POD_NAMESPACE")) is not None:
        return value, "environment variable POD_NAMESPACE (default of --lease-namespace)"
    if os.path.exists(namespace_file):
        try:
            with open(namespace_file, encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"namespace file {namespace_file!r} (default of --lease-namespace): "
                f"cannot read: {exc.strerror or exc}"
            ) from None
        return value, f"namespace file {namespace_file!r} (default of --lease-namespace)"
    return "default", "built-in default of --lease-namespace"


def load_config(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    namespace_file: str = NAMESPACE_FILE,
) -> Config:
    """Parse `argv` (without the program name) and `environ` into a validated Config.

    Raises ConfigError on any bad input; `--help` prints and raises SystemExit(0).
    """
    args = build_parser().parse_args(list(argv))
    # The file is found first (flag > environment; `--config ""` means no file), then read.
    found = _value(_BY_DEST["config_file"], args, environ, {}, None)
    config_file: str | None = None if found is _UNSET else found
    file_values = _read_file(config_file) if config_file else {}
    values: dict[str, Any] = {"config_file": config_file}
    for opt in OPTIONS:
        if opt.dest not in values:
            value = _value(opt, args, environ, file_values, config_file)
            if value is not _UNSET:
                values[opt.dest] = value

    if "lease_namespace" not in values:
        raw, where = _default_namespace(environ, namespace_file)
        values["lease_namespace"] = _convert(_BY_DEST["lease_namespace"], raw, where)
    if "identity" not in values:
        host = _env(environ, "HOSTNAME") or socket.gethostname() or "gluster-recycler"
        values["identity"] = f"{host.strip()}-{os.getpid()}"

    config = Config(**values)
    if config.backend == "gfapi" and (
        config.reset_owner is not None or config.reset_mode is not None
    ):
        raise ConfigError(
            "--reset-owner/--reset-mode: not supported with --backend gfapi "
            "(use --backend fuse, or set the owner and mode of the volume root by hand)"
        )
    if "Failed" in config.phases and not config.failed_messages:
        raise ConfigError(
            "--failed-messages/FAILED_MESSAGES: no message given, but --phases includes Failed "
            "(no Failed PV could ever be recycled)"
        )
    return config


__all__ = [
    "DEFAULT_FAILED_MESSAGES",
    "NAMESPACE_FILE",
    "OPTIONS",
    "Config",
    "ConfigError",
    "Option",
    "build_parser",
    "load_config",
    "version",
]
