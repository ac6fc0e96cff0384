"""Every option of the program, declared once: default, environment variable, converter (which
validates), help. The flag, the file key, `--help` and the README table follow from these
declarations (spec.py); precedence and loading are in load.py, the converters in convert.py.
"""

import re
from dataclasses import asdict, dataclass
from typing import Any

from recycler_job.config import convert
from recycler_job.config.spec import Option, option, options_of
from recycler_job.logs import mask_url

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
_SECRET_NAME_RE = re.compile(r"token|password|passwd|secret|credential|private", re.IGNORECASE)


@dataclass(frozen=True)
class Config:
    """The validated, effective configuration of one run, one field per option.

    Each field declares its option once: default, environment variable, converter (which
    validates) and help. `load_config` is the way to get a validated one.
    """

    config_file: str | None = option(
        None,
        "CONFIG_FILE",
        convert.optional_string,
        "YAML file with any of these options (keys: long option names, '-' or '_')",
        metavar="PATH",
        default_help="none",
        flag="--config",
        in_file=False,
    )
    kubeconfig: str | None = option(
        None,
        "KUBECONFIG",
        convert.optional_string,
        "kubeconfig file to use instead of the in-cluster service account",
        metavar="PATH",
        default_help="in-cluster, else the client's default",
    )
    gluster_hosts: tuple[str, ...] = option(
        (),
        "GLUSTER_HOSTS",
        convert.hosts,
        "gluster servers to mount from, ';' or ',' separated, any number",
        metavar="HOSTS",
        default_help="the hosts of the PV's Endpoints",
    )
    endpoints_namespace: str | None = option(
        None,
        "GLUSTER_ENDPOINTS_NAMESPACE",
        convert.optional_namespace,
        "namespace of the Endpoints named by PVs that set no endpointsNamespace",
        metavar="NAMESPACE",
        default_help="none",
    )
    endpoints_from_claim_namespace: bool = option(
        False,
        "GLUSTER_ENDPOINTS_FROM_CLAIM_NAMESPACE",
        convert.to_bool,
        "trust Endpoints in tenants' namespaces (the former claim's namespace, the "
        "provisioner's glusterfs-dynamic-*), and read a PV's Endpoints in its former claim's "
        "namespace as a last resort. Risky: anyone who can edit Endpoints there can point the "
        "wipe at another gluster pool",
    )
    gluster_hosts_only_pool: bool = option(
        False,
        "GLUSTER_HOSTS_ONLY_POOL",
        convert.to_bool,
        "assert that every selected PV's volume is on the --gluster-hosts pool: a PV whose "
        "Endpoints an admin controls cannot be read is wiped there instead of refused",
    )
    phases: frozenset[str] = option(
        frozenset({"Failed"}),
        "RECYCLE_PHASES",
        convert.choices(VALID_PHASES, "phase"),
        "comma list of PV phases to recycle, from Failed, Released",
        metavar="PHASES",
    )
    failed_messages: tuple[str, ...] = option(
        DEFAULT_FAILED_MESSAGES,
        "FAILED_MESSAGES",
        convert.failed_messages,
        "status.message values accepted for Failed PVs, '|' separated (messages contain "
        "commas; the YAML file takes a list)",
        metavar="MSGS",
    )
    reclaim_policies: frozenset[str] = option(
        frozenset({"Recycle"}),
        "RECLAIM_POLICIES",
        convert.choices(VALID_RECLAIM_POLICIES, "reclaim policy"),
        "comma list of reclaim policies to recycle, from Recycle, Retain, Delete "
        "(Retain PVs are only wiped when listed)",
        metavar="POLICIES",
    )
    selector: str | None = option(
        None,
        "PV_SELECTOR",
        convert.selector,
        "label selector PVs must match, e.g. 'tier=scratch,!keep'",
        metavar="SELECTOR",
        default_help="all PVs",
    )
    min_age: float = option(
        60.0,
        "MIN_AGE",
        convert.duration,
        "seconds a PV must have been in its phase before it is wiped (or a duration: 90s, "
        "5m, 1h30m)",
        metavar="DURATION",
    )
    mode: str = option(
        "release",
        "RECYCLE_MODE",
        convert.one_of(VALID_MODES),
        "release: clear claimRef; recreate: delete and re-create the PV",
        metavar="MODE",
    )
    max_volumes: int | None = option(
        None,
        "MAX_VOLUMES",
        convert.max_volumes,
        "recycle at most this many PVs per run ('unlimited' to override a lower-precedence value)",
        metavar="N",
        default_help="unlimited",
    )
    parallel: int = option(
        1,
        "PARALLEL_VOLUMES",
        convert.int_range(1, 64),
        "volumes recycled at the same time, 1-64",
        metavar="N",
    )
    wipe_workers: int = option(
        16,
        "WIPE_WORKERS",
        convert.int_range(1, 256),
        "entries deleted at once, shared by the volumes recycled at the same time, 1-256",
        metavar="N",
    )
    backend: str = option(
        "fuse",
        "WIPE_BACKEND",
        convert.one_of(VALID_BACKENDS),
        "how volumes are reached: fuse (mount, needs a privileged root pod) or gfapi "
        "(libgfapi over TCP, runs unprivileged)",
        metavar="BACKEND",
    )
    log_dir: str = option(
        DEFAULT_LOG_DIR,
        "GLUSTER_LOG_DIR",
        convert.log_dir,
        "writable directory for the gluster CLI's and libgfapi's own log files",
        metavar="PATH",
    )
    mount_root: str = option(
        DEFAULT_MOUNT_ROOT,
        "MOUNT_ROOT",
        convert.mount_root,
        "absolute directory under which volumes are mounted",
        metavar="PATH",
    )
    mount_timeout: float = option(
        60.0,
        "MOUNT_TIMEOUT",
        convert.positive_duration,
        "seconds to wait for a mount (or a duration: 90s, 5m, 1h30m)",
        metavar="DURATION",
    )
    deadline: float | None = option(
        None,
        "RUN_DEADLINE",
        convert.optional_positive_duration,
        "stop starting volumes this long after start (or a duration: 90s, 5m, 1h30m)",
        metavar="DURATION",
        default_help="none",
    )
    lease_name: str = option(
        "gluster-recycler",
        "LEASE_NAME",
        convert.dns_name("subdomain"),
        "name of the Lease that keeps two runs apart",
        metavar="NAME",
    )
    lease_namespace: str = option(
        "default",
        "LEASE_NAMESPACE",
        convert.dns_name("label"),
        "namespace of the Lease",
        metavar="NAMESPACE",
        default_help="$POD_NAMESPACE, else the service account's namespace, else default",
    )
    lease_duration: int = option(
        60,
        "LEASE_DURATION",
        convert.lease_duration,
        "seconds the Lease is valid without renewal, 15-3600",
        metavar="SECONDS",
    )
    dry_run: bool = option(
        False, "DRY_RUN", convert.to_bool, "decide and report, but touch nothing"
    )
    debug: bool = option(False, "DEBUG", convert.to_bool, "debug logging")
    log_format: str = option(
        "text",
        "LOG_FORMAT",
        convert.one_of(VALID_LOG_FORMATS),
        "log line format: text or json",
        metavar="FORMAT",
    )
    report_file: str | None = option(
        None,
        "REPORT_FILE",
        convert.optional_string,
        "write the JSON report of the run to this file; '-': to stdout (the summary "
        "then goes to stderr)",
        metavar="PATH",
        default_help="none",
    )
    pushgateway: str | None = option(
        None,
        "PUSHGATEWAY_URL",
        convert.pushgateway,
        "push the pass's metrics to this Prometheus Pushgateway",
        metavar="URL",
        default_help="none",
    )
    client_check: bool = option(
        True,
        "NO_CLIENT_CHECK",
        convert.to_bool,
        "refuse to wipe a volume that gluster reports clients connected to "
        "(NO_CLIENT_CHECK=true disables it)",
        negative=True,
    )
    reset_owner: tuple[int, int] | None = option(
        None,
        "RESET_OWNER",
        convert.reset_owner,
        "chown the emptied volume root to UID:GID",
        metavar="UID:GID",
        default_help="leave unchanged",
    )
    reset_mode: int | None = option(
        None,
        "RESET_MODE",
        convert.reset_mode,
        "chmod the emptied volume root to this octal mode, e.g. 0775",
        metavar="OCTAL",
        default_help="leave unchanged",
    )
    tls_dir: str | None = option(
        None,
        "GLUSTER_TLS_DIR",
        convert.tls_dir,
        "directory with the client's TLS files for pools with client.ssl on: tls.crt, "
        "tls.key and tls.ca (the appuio fork's Secret) or ca.crt (a kubernetes.io/tls "
        "Secret), or glusterfs.pem, glusterfs.key, glusterfs.ca",
        metavar="PATH",
        default_help="none",
    )
    tls_management: bool = option(
        False,
        "GLUSTER_TLS_MANAGEMENT",
        convert.to_bool,
        "use TLS to glusterd too (pools with /var/lib/glusterd/secure-access); reads "
        "glusterfs.pem/.key/.ca from /usr/lib/ssl",
    )
    identity: str = option(
        "gluster-recycler",
        None,
        convert.identity,
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


OPTIONS: tuple[Option, ...] = options_of(Config)
"""Every option, in `--help` order."""
