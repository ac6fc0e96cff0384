"""TLS to gluster pools: the client certificate, key and CA, and how each client is told.

GlusterFS has two TLS paths, switched on separately by the pool's admins:

* I/O (`client.ssl on` / `server.ssl on` on a volume): the connections to the bricks. The
  volume file says whether TLS is used; the client picks the files. glusterfs 10 reads them
  from the `transport.socket.ssl-own-cert`, `ssl-private-key` and `ssl-ca-list` options of
  each `protocol/client` translator, which every client accepts from outside the volume file
  (`glusterfs --xlator-option`, `glfs_set_xlator_option`). So the files are handed over by
  path, wherever the Secret is mounted; nothing is copied into /etc/ssl (read-only in the
  restricted pod, and on Debian builds the default is /usr/lib/ssl, not /etc/ssl anyway).
  `mount.glusterfs` passes on only one `xlator-option`, so a FUSE mount with TLS files runs
  `glusterfs` itself, with the arguments `mount.glusterfs` would give it.
* Management (`/var/lib/glusterd/secure-access` on the servers): glusterd's own port, used
  by the gluster CLI and for the volume file. These connections read the files from the
  compiled-in directory only (`DEFAULT_SSL_DIR`); the CLI and `glusterfs` are switched with
  `--secure-mgmt=yes`, libgfapi only by the file `SECURE_ACCESS_FILE`.

A TLS directory holds the appuio fork's Secret keys (`tls.crt`, `tls.key`, `tls.ca`), a
`kubernetes.io/tls` Secret with its CA (`tls.crt`, `tls.key`, `ca.crt`), or gluster's own
names (`glusterfs.pem`, `glusterfs.key`, `glusterfs.ca`). The files are
given to every connection; a volume without `client.ssl` ignores them. Files that are
missing or unusable fail only the volumes that need TLS, each with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from recycler_job.errors import VolumeError

__all__ = [
    "CERT_MANAGER_NAMES",
    "DEFAULT_SSL_DIR",
    "FORK_NAMES",
    "GLUSTER_NAMES",
    "SECURE_ACCESS_FILE",
    "TlsError",
    "TlsFiles",
    "cli_args",
    "configure",
    "current",
    "explain",
    "from_config",
    "fuse_command",
    "fuse_log_file",
    "load",
    "log_size",
    "needs_tls",
    "require_for",
    "startup_problem",
    "xlator_options",
]

FORK_NAMES = ("tls.crt", "tls.key", "tls.ca")
"""The appuio fork's Secret keys (certificate, key, CA), mounted at /recycler-secrets there."""
CERT_MANAGER_NAMES = ("tls.crt", "tls.key", "ca.crt")
"""A `kubernetes.io/tls` Secret with its CA, as cert-manager writes it."""
GLUSTER_NAMES = ("glusterfs.pem", "glusterfs.key", "glusterfs.ca")
"""gluster's own file names, as in its default directory."""
_LAYOUTS = (FORK_NAMES, CERT_MANAGER_NAMES, GLUSTER_NAMES)
SECURE_ACCESS_FILE = "/var/lib/glusterd/secure-access"
"""Its presence switches libgfapi's (and, by default, every client's) management path to TLS."""
DEFAULT_SSL_DIR = "/usr/lib/ssl"
"""Where Debian's glusterfs build reads the management path's files (RPM builds: /etc/ssl)."""
log = logging.getLogger(__name__)

_SOCKET = "transport.socket."
_ON = frozenset({"on", "yes", "true", "enable", "1"})
_SSL_LOG = re.compile(r"\] E \[[^]]*\] [^ ]+: +(.*(?:SSL|cert|private key|CA list).*)$")


class TlsError(VolumeError):
    """A volume needs TLS and the files cannot serve it; the message is one line."""


@dataclass(frozen=True)
class TlsFiles:
    """The client's TLS files from one directory, and why they cannot be used (if so)."""

    directory: str
    cert: str
    key: str
    ca: str
    problem: str | None = None
    management: bool = False

    @property
    def usable(self) -> bool:
        return self.problem is None


def _readable_problem(path: str) -> str | None:
    name = os.path.basename(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return f"{name} is missing in {os.path.dirname(path)}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if not data.strip():
        return f"{path} is empty"
    return None


def load(directory: str, *, management: bool = False) -> TlsFiles:
    """Find the three files in `directory` and check they work together.

    The first complete layout of `_LAYOUTS` counts (the fork's first); with none complete,
    the first one partly there names what is missing. Never raises for the files: what is
    wrong goes into `problem`, so a volume without TLS can still be recycled while one that
    needs it fails with the reason.
    """

    def present(layout: tuple[str, ...]) -> list[bool]:
        return [os.path.lexists(os.path.join(directory, n)) for n in layout]

    names = next(
        (layout for layout in _LAYOUTS if all(present(layout))),
        next((layout for layout in _LAYOUTS if any(present(layout))), FORK_NAMES),
    )
    cert, key, ca = (os.path.join(directory, n) for n in names)
    problems = [p for p in map(_readable_problem, (cert, key, ca)) if p]
    if not problems:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            # No prompt for a passphrase: glusterfs cannot use an encrypted key either.
            context.load_cert_chain(cert, key, password="")
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"{cert} and {key} do not make a certificate and its key: {exc}")
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"{ca} holds no usable CA certificate: {exc}")
    problem = "; ".join(problems) or None
    return TlsFiles(directory, cert, key, ca, problem=problem, management=management)


def from_config(directory: str | None, management: bool) -> TlsFiles | None:
    """The files a run uses: `directory`'s, else (management path only) the ones in
    `DEFAULT_SSL_DIR`; None when TLS is not configured. A problem is logged once here."""
    if directory is None and not management:
        return None
    files = load(directory or DEFAULT_SSL_DIR, management=management)
    if files.problem is None:
        log.info("TLS files: %s, %s, %s", files.cert, files.key, files.ca)
    else:
        log.warning("TLS files unusable, volumes with client.ssl on will fail: %s", files.problem)
    return files


_current: TlsFiles | None = None
_log_dir = "/tmp"


def configure(files: TlsFiles | None, *, log_dir: str = "/tmp") -> None:
    """Use `files` for every gluster connection of this process (None: no TLS files);
    FUSE clients started with them log to `log_dir`."""
    global _current, _log_dir  # one setting for the whole process, like the CLI log
    _current, _log_dir = files, log_dir


def current() -> TlsFiles | None:
    return _current


def needs_tls(options: Mapping[str, str]) -> bool:
    """Whether a volume's `gluster volume info` options turn TLS on for its clients."""
    return options.get("client.ssl", "").strip().lower() in _ON


def require_for(volume: str, options: Mapping[str, str]) -> None:
    """TlsError when `volume` uses TLS on its I/O path and our files cannot serve it."""
    if not needs_tls(options):
        return
    files = _current
    if files is None:
        raise TlsError(
            f"volume {volume} has client.ssl on, but no TLS files are configured "
            "(--tls-dir/GLUSTER_TLS_DIR)"
        )
    if files.problem is not None:
        raise TlsError(f"volume {volume} has client.ssl on, but {files.problem}")


def xlator_options(volume: str) -> list[tuple[str, str, str]]:
    """(translator pattern, key, value) for every client translator of `volume`."""
    files = _current
    if files is None:
        return []
    pattern = f"{volume}-client-*"
    return [
        (pattern, _SOCKET + "ssl-own-cert", files.cert),
        (pattern, _SOCKET + "ssl-private-key", files.key),
        (pattern, _SOCKET + "ssl-ca-list", files.ca),
    ]


def cli_args() -> list[str]:
    """Arguments for the gluster CLI: the management path as configured (none without TLS)."""
    files = _current
    if files is None:
        return []
    return [f"--secure-mgmt={'yes' if files.management else 'no'}"]


def fuse_log_file(mountpoint: str) -> str:
    """The log of the `glusterfs` that `fuse_command` starts for `mountpoint`."""
    return os.path.join(_log_dir, f"fuse-{os.path.basename(mountpoint.rstrip('/'))}.log")


def fuse_command(
    hosts: Sequence[str],
    volume: str,
    subdir: str | None,
    mountpoint: str,
    *,
    read_only: bool,
) -> list[str] | None:
    """The `glusterfs` arguments `mount.glusterfs` would use, plus the TLS files; None
    without TLS files (then `mount -t glusterfs` is used as always).

    The log starts empty, so `explain` reads only this mount's errors.
    """
    files = _current
    if files is None:
        return None
    log_file = fuse_log_file(mountpoint)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(log_file)
    args = ["--process-name", "fuse"]
    args += [f"--volfile-server={host}" for host in hosts]
    args += [f"--volfile-id=/{volume}", f"--log-file={log_file}"]
    args.append(f"--secure-mgmt={'yes' if files.management else 'no'}")
    if read_only:
        args.append("--read-only")
    args += [f"--xlator-option={p}.{k}={v}" for p, k, v in xlator_options(volume)]
    if subdir:
        args.append(f"--subdir-mount=/{subdir.strip('/')}")
    args.append(mountpoint)
    return args


def log_size(log_file: str) -> int:
    """Where a client's new log lines will start (`explain`'s `start`)."""
    try:
        return os.stat(log_file).st_size
    except OSError:
        return 0


def explain(log_file: str, *, start: int = 0, limit: int = 3) -> str | None:
    """The TLS errors a failed client logged after byte `start` (OpenSSL's reasons), one
    line; None if there are none."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(start)
            data = handle.read(1 << 20)
    except OSError:
        return None
    lines = data.decode("utf-8", "replace").splitlines()
    found: list[str] = []
    for line in lines:
        match = _SSL_LOG.search(line.rstrip())
        if match:
            text = " ".join(match.group(1).split())
            if text not in found:
                found.append(text)
    if not found:
        return None
    return "client log: " + "; ".join(found[-limit:])


def startup_problem(
    management: bool,
    backend: str,
    *,
    ssl_dir: str = DEFAULT_SSL_DIR,
    secure_access: str = SECURE_ACCESS_FILE,
) -> str | None:
    """Why the management path cannot be used as asked (exit 2), or None.

    The management path reads its files from `DEFAULT_SSL_DIR` only, and libgfapi turns it
    on only when `SECURE_ACCESS_FILE` exists. That file is never created here: on a gluster
    server it would switch glusterd itself at its next start. The pod mounts it.
    """
    if not management:
        return None
    missing = [name for name in GLUSTER_NAMES if not os.path.exists(os.path.join(ssl_dir, name))]
    if missing:
        return (
            f"--tls-management: the management path reads its files from {ssl_dir} "
            f"only, and {', '.join(missing)} are missing there (mount the Secret's keys there)"
        )
    if backend == "gfapi" and not os.path.exists(secure_access):
        return (
            f"--tls-management: libgfapi uses TLS to glusterd only when {secure_access} "
            "exists, and it does not (mount it, as manifests/components/tls-management does)"
        )
    return None
