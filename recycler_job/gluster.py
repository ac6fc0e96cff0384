"""GlusterFS plumbing: host lists, the connected-client check, FUSE mounts and unmounts.

Everything that runs `mount`, `umount` or `gluster` lives here and goes through `sh`.

Safety rules this module keeps:

* A mount is only trusted after `verify_mounted`: `mount.glusterfs` can exit 0 although
  nothing is mounted (a subdirectory that does not exist reproduces it), and then the
  mountpoint is a plain local directory.
* Nothing here ever removes a directory recursively: mountpoints are removed with
  `rmdir`, so a directory that still holds files is left where it is and reported.
* Only our own mounts are ever unmounted: the mount id `mount_volume` returned, or a mount
  carrying the record `mount_volume` writes before mounting (`is_own_mount`).
* Failures raise `GlusterError` (or `MountError`, `VolumeInUse`) with a one-line message;
  "could not check" is an error, never a pass.
"""

import contextlib
import errno
import ipaddress
import json
import logging
import os
import re
import shlex
import signal
import socket
import stat
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import sh

from recycler_job import mountinfo, tls
from recycler_job.mountinfo import MountEntry
from recycler_job.sources.glusterfs import GlusterSource

log = logging.getLogger(__name__)

_T = TypeVar("_T")

FSTYPE = "fuse.glusterfs"

# Client process names (`--process-name`) that `gluster volume status VOL client-list`
# reports for gluster's own services. Anything else (`fuse`, `gfapi`, names we do not
# know) counts as a real client.
GLUSTER_DAEMONS = frozenset(
    {"glustershd", "quotad", "rebalance", "snapd", "bitd", "scrub", "tierd"}
)

# The inode number gluster gives the root of a mount (the root GFID ...0001), also for
# subdirectory mounts.
ROOT_INODE = 1
# The mark of a mount made by this tool: a record file `<mount root>/RECORD_DIR/<name>`,
# written before `mount` runs, naming the mount source. Only a `fuse.glusterfs` mount at
# `<mount root>/<name>` whose record names its source is ours to unmount. (The leading dot
# keeps the directory apart from mountpoints: PV names never start with one.)
RECORD_DIR = ".gluster-recycler-mounts"
# How many stacked mounts `unmount` peels off one mountpoint before giving up.
_MAX_STACK = 8

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_CONNECTION_FAILURES = ("Connection failed", "Request timed out", "Transport endpoint")


def _one_line(text: str, limit: int = 400) -> str:
    line = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class GlusterError(Exception):
    """A gluster command, mount or check failed; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message, limit=2000))


class MountError(GlusterError):
    """A mount could not be made, verified or removed."""


class VolumeInUse(GlusterError):
    """The volume has clients other than gluster's own daemons connected."""


# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class _Result:
    exit_code: int | None  # None when the command was killed after `timeout`
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    def message(self) -> str:
        return _one_line(self.stderr) or _one_line(self.stdout) or f"exit code {self.exit_code}"


def _command(name: str) -> "sh.Command":
    # Resolved on every call, from the PATH of that moment.
    try:
        return sh.Command(name)
    except sh.CommandNotFound:
        raise GlusterError(f"`{name}` not found on PATH") from None


def _run(name: str, args: Sequence[str], *, timeout: float) -> _Result:
    """Run `name args...` in its own process group; SIGKILL the group after `timeout` s.

    Never raises for an exit code: the caller decides what it means.
    """
    command = _command(name)
    log.debug("running: %s", shlex.join([name, *args]))
    proc = command(
        *args,
        _bg=True,
        _bg_exc=False,
        _new_group=True,
        _tty_out=False,
        _ok_code=list(range(256)),
    )
    expired = threading.Event()

    def expire() -> None:
        # The whole group: `mount` runs mount.glusterfs, which runs glusterfs.
        if proc.process.exit_code is not None:
            return
        expired.set()
        pgid = proc.pgid
        if pgid and pgid != os.getpgrp():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        # A plain wait(): sh's wait(timeout=...) can return before all output is read.
        proc.wait()
    except sh.ErrorReturnCode:
        pass  # killed by a signal; the exit code says which
    finally:
        timer.cancel()
    stdout = bytes(proc.process.stdout or b"").decode("utf-8", "replace")
    stderr = bytes(proc.process.stderr or b"").decode("utf-8", "replace")
    exit_code: int | None = None if expired.is_set() else proc.process.exit_code
    log.debug(
        "%s %s: %s",
        name,
        "timed out" if exit_code is None else f"exited {exit_code}",
        _one_line(stderr + "\n" + stdout, limit=1000),
    )
    return _Result(exit_code=exit_code, stdout=stdout, stderr=stderr)


# ------------------------------------------------------------------------ mount sources


def _check_host(host: str) -> str:
    candidate = host.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if ":" in candidate:
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            raise GlusterError(f"invalid gluster host {host!r}") from None
        return candidate
    if len(candidate) > 253 or not _HOSTNAME.fullmatch(candidate):
        raise GlusterError(f"invalid gluster host {host!r}")
    return candidate


def check_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """`hosts` validated (no character that could break a mount option), duplicates dropped.

    IPv6 addresses are returned without brackets. Raises GlusterError when a host is
    malformed or the list is empty.
    """
    checked: list[str] = []
    for host in hosts:
        valid = _check_host(host)
        if valid not in checked:
            checked.append(valid)
    if not checked:
        raise GlusterError("no gluster host given")
    return tuple(checked)


def _backup_host(host: str) -> str:
    # mount.glusterfs splits backup-volfile-servers on ':' outside of [...] brackets.
    return f"[{host}]" if ":" in host else host


def mount_source_and_options(
    hosts: Sequence[str], source: GlusterSource, read_only: bool
) -> tuple[str, list[str]]:
    """The `mount` source `host:/volume[/subdir]` and the `-o` options for `source`.

    The first host serves the volume file; every further host, however many, goes into
    `backup-volfile-servers=h2:h3:...`. `ro` is added for a read-only mount.
    """
    valid = check_hosts(hosts)
    mount_source = f"{valid[0]}:{source.mount_path}"
    options: list[str] = []
    if len(valid) > 1:
        options.append("backup-volfile-servers=" + ":".join(_backup_host(h) for h in valid[1:]))
    if read_only:
        options.append("ro")
    return mount_source, options


def expected_sources(hosts: Sequence[str], source: GlusterSource) -> list[str]:
    """What mountinfo may show as the source of a mount of `source`: `host:/volume[/subdir]`.

    mountinfo shows the first host only (the one given to `mount`), also when the volume
    file came from a backup server.
    """
    return [f"{host}:{source.mount_path}" for host in check_hosts(hosts)]


# ----------------------------------------------------------------------- client checks


@dataclass(frozen=True)
class BrickClients:
    """One brick's section of `gluster volume status VOL clients`."""

    brick: str
    online: bool
    connections: tuple[str, ...]  # "address:port", one per client connection


def _client_address(connection: str) -> str:
    address = connection.rsplit(":", 1)[0] if ":" in connection else connection
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


def parse_volume_clients(text: str, volume: str) -> list[BrickClients]:
    """Parse `gluster volume status VOL clients`; raises GlusterError on anything unexpected.

    The output (glusterfs 10)::

        Client connections for volume VOL
        ----------------------------------------------
        Brick : host:/brick/path
        Clients connected : 1
        Hostname            BytesRead    BytesWritten       OpVersion
        --------            ---------    ------------       ---------
        127.0.0.1:49148          2016            1476          100000
        ----------------------------------------------
        Brick : host:/other/brick
        Brick is offline
        ----------------------------------------------
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != f"Client connections for volume {volume}":
        raise GlusterError(
            f"unexpected `volume status {volume} clients` output: {_one_line(text, 200)!r}"
        )
    bricks: list[BrickClients] = []
    brick: str | None = None
    online = True
    expected: int | None = None
    rows: list[str] = []

    def close() -> None:
        if brick is None:
            return
        if online and expected is None:
            raise GlusterError(f"no client count for brick {brick} of volume {volume}")
        if online and expected != len(rows):
            raise GlusterError(
                f"brick {brick} of volume {volume}: {expected} clients announced, "
                f"{len(rows)} listed"
            )
        bricks.append(BrickClients(brick=brick, online=online, connections=tuple(rows)))

    for line in lines[1:]:
        if set(line) <= {"-", " "}:
            continue
        if line.startswith("Brick :"):
            close()
            brick, online, expected, rows = line.split(":", 1)[1].strip(), True, None, []
            continue
        if brick is None:
            raise GlusterError(f"unexpected line in `volume status {volume} clients`: {line!r}")
        if line == "Brick is offline":
            online = False
        elif line.startswith("Clients connected :"):
            try:
                expected = int(line.split(":", 1)[1])
            except ValueError:
                raise GlusterError(f"unexpected client count line: {line!r}") from None
        elif line.split()[:1] == ["Hostname"]:
            continue
        elif re.fullmatch(r"\S+\s+\d+\s+\d+\s+\d+", line):
            rows.append(line.split()[0])
        else:
            raise GlusterError(f"unexpected line in `volume status {volume} clients`: {line!r}")
    close()
    if not bricks:
        raise GlusterError(f"`volume status {volume} clients` listed no brick")
    return bricks


def parse_client_list(text: str, volume: str) -> dict[str, int]:
    """Parse `gluster volume status VOL client-list`: client process name -> count.

    Each client process counts once however many bricks it is connected to::

        Client connections for volume VOL
        Name                                                       count
        -----                                                     ------
        glustershd                                                     1
        fuse                                                           2

        total clients for volume VOL : 3
        -----------------------------------------------------------------

    (The "total" line is not the sum of the rows: gluster 10 leaves `bitd` and `scrub`
    out of it, so it is not used.)
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != f"Client connections for volume {volume}":
        raise GlusterError(
            f"unexpected `volume status {volume} client-list` output: {_one_line(text, 200)!r}"
        )
    counts: dict[str, int] = {}
    seen_total = False
    for line in lines[1:]:
        if set(line) <= {"-", " "} or line.split() == ["Name", "count"]:
            continue
        if line.startswith("total clients for volume"):
            seen_total = True
            continue
        match = re.fullmatch(r"(\S+)\s+(\d+)", line)
        if match is None:
            raise GlusterError(f"unexpected line in `volume status {volume} client-list`: {line!r}")
        counts[match.group(1)] = counts.get(match.group(1), 0) + int(match.group(2))
    if not seen_total:
        raise GlusterError(f"truncated `volume status {volume} client-list` output")
    return counts


_cli_log_file: str | None = None


def set_cli_log_file(path: str | None) -> None:
    """Send the gluster CLI's own log to `path` (None: its default, /var/log/glusterfs/cli.log,
    which only root can write and a read-only root file system refuses)."""
    global _cli_log_file  # noqa: PLW0603 -- one setting for the whole process
    _cli_log_file = path


def _run_gluster(hosts: Sequence[str], args: Sequence[str], *, timeout: float) -> str:
    """Run `gluster --mode=script --remote-host=H args...` against each host in turn.

    Moves on to the next host only when one cannot be reached; the first answer, success
    or error, is final. Raises GlusterError when the command fails or no host answers.
    """
    failures: list[str] = []
    what = shlex.join(["gluster", *args])
    for host in check_hosts(hosts):
        result = _run(
            "gluster",
            [
                "--mode=script",
                f"--remote-host={host}",
                f"--timeout={max(1, int(timeout))}",
                *([f"--log-file={_cli_log_file}"] if _cli_log_file else []),
                *tls.cli_args(),
                *args,
            ],
            # the CLI's own --timeout first; ours is the backstop
            timeout=timeout + min(timeout, 5.0),
        )
        if result.timed_out:
            failures.append(f"{host}: no answer within {timeout:g}s")
            continue
        if result.exit_code == 0:
            return result.stdout
        message = result.message()
        if any(marker in message for marker in _CONNECTION_FAILURES):
            failures.append(f"{host}: {message}")
            continue
        raise GlusterError(f"`{what}` on {host} failed: {message}")
    raise GlusterError(f"no gluster host answered `{what}`: {'; '.join(failures)}")


def volume_clients(hosts: Sequence[str], volume: str, *, timeout: float) -> list[BrickClients]:
    """Every brick of `volume` with the client connections gluster lists for it."""
    text = _run_gluster(hosts, ["volume", "status", volume, "clients"], timeout=timeout)
    return parse_volume_clients(text, volume)


def client_kinds(hosts: Sequence[str], volume: str, *, timeout: float) -> dict[str, int]:
    """How many client processes of each kind (`fuse`, `glustershd`, ...) `volume` has."""
    text = _run_gluster(hosts, ["volume", "status", volume, "client-list"], timeout=timeout)
    return parse_client_list(text, volume)


@dataclass(frozen=True)
class ClientReport:
    """What gluster says about the clients of one volume."""

    volume: str
    bricks: tuple[BrickClients, ...]
    kinds: dict[str, int]  # empty when no brick has a connection (not asked then)

    @property
    def addresses(self) -> list[str]:
        """Distinct addresses (without port) of every connection, daemons included."""
        seen: list[str] = []
        for brick in self.bricks:
            for connection in brick.connections:
                address = _client_address(connection)
                if address not in seen:
                    seen.append(address)
        return seen

    @property
    def foreign_kinds(self) -> dict[str, int]:
        """Client kinds that are not gluster's own daemons, with their counts.

        Connections gluster cannot name (more on one brick than named client processes)
        are counted as `unidentified`.
        """
        foreign = {k: n for k, n in self.kinds.items() if k not in GLUSTER_DAEMONS and n > 0}
        widest = max((len(b.connections) for b in self.bricks), default=0)
        named = sum(self.kinds.values())
        if widest > named:
            foreign["unidentified"] = widest - named
        return foreign

    @property
    def in_use(self) -> bool:
        return bool(self.foreign_kinds)

    def describe(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.foreign_kinds.items()))
        return (
            f"volume {self.volume} is in use: {kinds} client(s) connected "
            f"(connections from {', '.join(self.addresses)}; gluster does not say which "
            "address belongs to which client)"
        )


def client_report(hosts: Sequence[str], volume: str, *, timeout: float) -> ClientReport:
    """Ask gluster who is connected to `volume`.

    `volume status VOL clients` lists every connection per brick (address:port) but not
    which process it belongs to: gluster's self-heal, quota, bitrot and rebalance daemons
    look exactly like FUSE clients there. `volume status VOL client-list` names the
    client processes (`fuse`, `gfapi`, `glustershd`, `quotad`, ...) but gives no address.
    Both are asked; a volume is in use when a client process other than a gluster daemon
    is named, or when a brick has more connections than there are named processes.

    Raises GlusterError when glusterd cannot be reached on any host, the volume does not
    exist or is not started, or a brick is offline (its clients cannot be seen, and a
    wipe would miss its files).
    """
    bricks = volume_clients(hosts, volume, timeout=timeout)
    offline = [b.brick for b in bricks if not b.online]
    if offline:
        raise GlusterError(
            f"volume {volume}: brick(s) offline: {', '.join(offline)}; "
            "cannot tell which clients are connected"
        )
    kinds: dict[str, int] = {}
    if any(b.connections for b in bricks):
        kinds = client_kinds(hosts, volume, timeout=timeout)
    report = ClientReport(volume=volume, bricks=tuple(bricks), kinds=kinds)
    log.debug(
        "volume %s: client kinds %s; connections %s",
        volume,
        kinds or "none",
        {b.brick: list(b.connections) for b in bricks},
    )
    return report


def connected_clients(hosts: Sequence[str], volume: str, *, timeout: float) -> list[str]:
    """The distinct addresses of clients connected to `volume`; [] when it is not in use.

    Connections of gluster's own daemons (self-heal, quota, bitrot, rebalance, snapshot)
    do not count: when they are the only ones, the answer is []. When a real client is
    connected, the addresses of all connections are returned, because gluster does not
    say which of them is the client (see `client_report`). Our own mount counts too, so
    call this before mounting.

    Raises GlusterError when the check cannot be made (see `client_report`).
    """
    report = client_report(hosts, volume, timeout=timeout)
    if not report.in_use:
        return []
    log.info("%s", report.describe())
    return report.addresses


def ensure_not_in_use(hosts: Sequence[str], volume: str, *, timeout: float) -> None:
    """Raise VolumeInUse when `volume` has clients other than gluster's daemons."""
    report = client_report(hosts, volume, timeout=timeout)
    if report.in_use:
        raise VolumeInUse(report.describe())


# --------------------------------------------------------------------- volume identity

# The xattrs a FUSE mount answers on its root: the bricks serving it (host and path), and
# the glusterd node uuid(s) of those bricks.
PATHINFO_XATTR = "trusted.glusterfs.pathinfo"
NODE_UUID_XATTRS = ("trusted.glusterfs.node-uuid", "trusted.glusterfs.list-node-uuids")
# `features.trash` values that leave the trash translator off; anything else counts as on.
_TRASH_OFF = frozenset({"off", "no", "false", "disable", "0"})
_POSIX_ENTRY = re.compile(r"<POSIX\((?P<brick>[^()<>]+)\):(?P<rest>[^<>]+)>")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class VolumeIdentityError(MountError):
    """The mount cannot be proven to be the volume the PV names (another pool, say)."""


class TrashInTheWay(GlusterError):
    """The trash translator would keep copies of the wiped files out of the mount's reach."""


def resolve_addresses(hosts: Iterable[str]) -> frozenset[str]:
    """Every IP address `hosts` resolve to (IPv4-mapped IPv6 as IPv4); unresolvable ones add
    nothing."""
    found: set[str] = set()
    for host in hosts:
        name = host.strip()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            log.debug("cannot resolve %s", name)
            continue
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            found.add(str(address))
    return frozenset(found)


def ensure_same_pool(configured: Sequence[str], endpoints: Sequence[str], *, what: str) -> None:
    """Refuse (VolumeIdentityError) when `configured` and `endpoints` share no IP address.

    `--gluster-hosts` names the pool this tool wipes; a PV whose Endpoints (`what`) name
    other servers belongs to another pool that may hold a volume of the same name.
    """
    ours = resolve_addresses(configured)
    theirs = resolve_addresses(endpoints)
    if not ours:
        raise VolumeIdentityError(
            f"cannot resolve any of --gluster-hosts {', '.join(configured)} to compare them "
            f"with {what}"
        )
    if not theirs:
        raise VolumeIdentityError(
            f"cannot resolve any address of {what} ({', '.join(endpoints)}) to compare it "
            "with --gluster-hosts"
        )
    if not ours & theirs:
        raise VolumeIdentityError(
            f"{what} ({', '.join(sorted(theirs))}) shares no address with --gluster-hosts "
            f"({', '.join(sorted(ours))}): the PV belongs to another gluster pool"
        )


@dataclass(frozen=True)
class VolumeBrick:
    """One brick of `gluster volume info --xml`: `host:/path` and its glusterd node uuid."""

    host: str
    path: str
    node_uuid: str

    @property
    def name(self) -> str:
        return f"{self.host}:{self.path}"


@dataclass(frozen=True)
class VolumeInfo:
    """What `gluster volume info VOL --xml` says about one volume."""

    name: str
    volume_id: str
    bricks: tuple[VolumeBrick, ...]
    options: dict[str, str]

    @property
    def trash(self) -> bool:
        """Whether the trash translator is on (explicitly set options only; its default
        is off)."""
        value = self.options.get("features.trash")
        return value is not None and value.strip().lower() not in _TRASH_OFF


def parse_volume_info(text: str, volume: str) -> VolumeInfo:
    """Parse `gluster volume info VOL --xml`; GlusterError on anything unexpected.

    The CLI exits 0 also for a volume that does not exist: `opRet` -1 says so.
    """
    try:
        root = ET.fromstring(text.strip())  # noqa: S314 -- our own gluster CLI call
    except ET.ParseError as exc:
        raise GlusterError(f"unreadable `volume info {volume} --xml` output: {exc}") from None
    if root.findtext("opRet") != "0":
        reason = root.findtext("opErrstr") or f"opRet {root.findtext('opRet')}"
        raise GlusterError(f"`volume info {volume}` failed: {reason}")
    found = [v for v in root.iter("volume") if v.findtext("name") == volume]
    if len(found) != 1:
        raise GlusterError(f"`volume info {volume}` described {len(found)} volumes named so")
    node = found[0]
    volume_id = (node.findtext("id") or "").strip()
    if not _UUID.fullmatch(volume_id):
        raise GlusterError(f"`volume info {volume}` gave no Volume ID")
    bricks: list[VolumeBrick] = []
    for brick in node.iter("brick"):
        name = (brick.findtext("name") or brick.text or "").strip()
        host, sep, path = name.rpartition(":")
        if not sep or not host or not path.startswith("/"):
            raise GlusterError(f"`volume info {volume}`: unexpected brick {name!r}")
        uuid = (brick.findtext("hostUuid") or brick.get("uuid") or "").strip().lower()
        bricks.append(VolumeBrick(host=host, path=path.rstrip("/") or "/", node_uuid=uuid))
    if not bricks:
        raise GlusterError(f"`volume info {volume}` listed no brick")
    options: dict[str, str] = {}
    for option in node.iter("option"):
        key = (option.findtext("name") or "").strip()
        if key:
            options[key] = (option.findtext("value") or "").strip()
    return VolumeInfo(name=volume, volume_id=volume_id, bricks=tuple(bricks), options=options)


@dataclass(frozen=True)
class PathinfoBrick:
    """One `<POSIX(brick):host:served path>` entry of `trusted.glusterfs.pathinfo`."""

    host: str  # the brick server's own hostname (or its node uuid with node-uuid-pathinfo)
    brick: str
    served: str  # the directory on the brick that the mounted directory is


def parse_pathinfo(text: str) -> list[PathinfoBrick]:
    """Every POSIX entry of a pathinfo value; GlusterError when there is none.

    Replicate and distribute nest the entries of their bricks (`(<REPLICATE:...> <POSIX...>
    <POSIX...>)`); only the POSIX entries name bricks. The host is what precedes
    `:<brick path>` (an IPv6 address contains colons too).
    """
    entries: list[PathinfoBrick] = []
    for match in _POSIX_ENTRY.finditer(text.rstrip("\x00")):
        brick, rest = match.group("brick"), match.group("rest")
        cut = rest.find(":" + brick)
        if cut <= 0:
            raise GlusterError(f"unexpected pathinfo entry {match.group(0)!r}")
        entries.append(PathinfoBrick(host=rest[:cut], brick=brick, served=rest[cut + 1 :]))
    if not entries:
        raise GlusterError(f"pathinfo names no brick: {_one_line(text, 200)!r}")
    return entries


def _same_host(name: str, brick: VolumeBrick) -> bool:
    if name.lower() in (brick.host.lower(), brick.node_uuid):
        return True
    return bool(resolve_addresses([name]) & resolve_addresses([brick.host]))


def check_volume_identity(
    entries: Sequence[PathinfoBrick],
    info: VolumeInfo,
    source: GlusterSource,
    node_uuids: Iterable[str] = (),
) -> None:
    """Raise VolumeIdentityError unless every brick serving the mount is one of `info`'s.

    A pathinfo brick matches a brick of the volume when its path is that brick's path and
    its host is the brick's host: the same name, the brick's node uuid
    (`storage.node-uuid-pathinfo on`), or a name resolving to a common address (bricks
    report their server's own hostname, volume info the name the brick was created with).
    The served directory must be the brick path plus the PV's subdirectory. Node uuids the
    mount reports must all belong to the volume's bricks.
    """
    if info.name != source.volume:
        raise VolumeIdentityError(f"volume info is for {info.name}, not {source.volume}")
    expected_suffix = "/" + source.subdir if source.subdir else ""
    for entry in entries:
        brick_path = entry.brick.rstrip("/") or "/"
        candidates = [b for b in info.bricks if b.path == brick_path]
        if not any(_same_host(entry.host, b) for b in candidates):
            raise VolumeIdentityError(
                f"the mount is served by brick {entry.host}:{entry.brick}, which is not a "
                f"brick of volume {info.name} ({info.volume_id}: "
                f"{', '.join(b.name for b in info.bricks)}): another pool or volume answered"
            )
        served = entry.served.rstrip("/")
        if served != brick_path.rstrip("/") + expected_suffix:
            raise VolumeIdentityError(
                f"brick {entry.host}:{entry.brick} serves {entry.served!r} for this mount, "
                f"expected {brick_path.rstrip('/') + expected_suffix!r}"
            )
    known = {b.node_uuid for b in info.bricks}
    strangers = sorted({u.lower() for u in node_uuids} - known)
    if strangers:
        raise VolumeIdentityError(
            f"the mount is served by gluster node(s) {', '.join(strangers)}, none of which "
            f"holds a brick of volume {info.name} ({info.volume_id})"
        )


def check_trash(info: VolumeInfo, source: GlusterSource) -> None:
    """Refuse a subdirectory PV on a volume whose trash translator is on (TrashInTheWay).

    An unlink then moves the file to `.trashcan/<subdir>/...` at the volume root, which a
    subdirectory mount cannot see: the wipe would "succeed" and leave the data on the volume.
    A PV of the whole volume empties `.trashcan` itself (see wipe.py).
    """
    if source.subdir and info.trash:
        raise TrashInTheWay(
            f"volume {info.name} has features.trash on ({info.options['features.trash']!r}): "
            f"files wiped in subdirectory {source.subdir!r} would be kept in "
            f"{info.name}/.trashcan, out of this mount's reach; not wiped "
            f"(turn features.trash off, or empty the trash as an admin)"
        )


def volume_info(hosts: Sequence[str], volume: str, *, timeout: float) -> VolumeInfo:
    """`gluster volume info VOL --xml` from `hosts`, parsed."""
    text = _run_gluster(hosts, ["volume", "info", volume, "--xml"], timeout=timeout)
    return parse_volume_info(text, volume)


def _read_xattr(path: str, name: str, timeout: float) -> str | None:
    """The xattr `name` of `path` as text; None when it is absent (ENODATA) or unsupported."""

    def read(target: str) -> bytes | None:
        try:
            return os.getxattr(target, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                return None
            raise

    value = _bounded(read, path, timeout)
    return None if value is None else value.decode("utf-8", "replace").rstrip("\x00")


def verify_volume_identity(
    mountpoint: str, hosts: Sequence[str], source: GlusterSource, *, timeout: float
) -> VolumeInfo:
    """Prove the verified mount on `mountpoint` is `source`'s volume as `hosts` describe it.

    Reads the mount root's pathinfo (the bricks that answered) and node uuids, asks `hosts`
    for `volume info`, and checks them against each other (`check_volume_identity`) and the
    trash rule for subdirectory PVs (`check_trash`). Returns the volume info (its Volume ID
    goes into the report). Raises VolumeIdentityError, TrashInTheWay or GlusterError.
    """
    path = _canonical(mountpoint)
    pathinfo = _read_xattr(path, PATHINFO_XATTR, timeout)
    if pathinfo is None:
        raise VolumeIdentityError(f"{path} answers no {PATHINFO_XATTR}: cannot tell its bricks")
    uuids: set[str] = set()
    for xattr in NODE_UUID_XATTRS:
        uuids.update(_UUID.findall(_read_xattr(path, xattr, timeout) or ""))
    info = volume_info(hosts, source.volume, timeout=timeout)
    check_volume_identity(parse_pathinfo(pathinfo), info, source, uuids)
    check_trash(info, source)
    return info


# ------------------------------------------------------------------------------ mounts


def mountpoint_for(mount_root: str, pv_name: str) -> str:
    """The mountpoint used for PV `pv_name`: `<mount_root>/<pv_name>`.

    PV names are DNS subdomains; anything else (a `/`, `..`, ...) is refused with
    MountError, so the path can never leave `mount_root`.
    """
    if len(pv_name) > 253 or not _DNS_SUBDOMAIN.fullmatch(pv_name):
        raise MountError(f"refusing PV name {pv_name!r} as a mountpoint name")
    root = os.path.abspath(mount_root)
    path = os.path.join(root, pv_name)
    if os.path.dirname(path) != root:
        raise MountError(f"mountpoint for {pv_name!r} would leave {root}")
    return path


def _canonical(path: str) -> str:
    """`path` made absolute with symlinks in its parent resolved, as mountinfo shows it.

    The last component is not looked at, so a hung mount cannot block this.
    """
    absolute = os.path.abspath(path)
    parent, name = os.path.split(absolute)
    return os.path.join(os.path.realpath(parent), name) if name else absolute


def _find(mountpoint: str) -> MountEntry | None:
    try:
        return mountinfo.find_mount(mountpoint)
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc


def _bounded(call: Callable[[str], _T], path: str, timeout: float) -> _T:
    """`call(path)`, giving up after `timeout` s (a hung FUSE mount blocks it forever).

    The call runs in a daemon thread, which cannot keep the process from exiting.
    Raises MountError on timeout or OSError.
    """
    outcome: list[_T | OSError] = []

    def target() -> None:
        try:
            outcome.append(call(path))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=target, name="gluster-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise MountError(f"{path} did not answer within {timeout:g}s")
    result = outcome[0]
    if isinstance(result, OSError):
        raise MountError(f"{path}: {result.strerror or result}")
    return result


def _lstat(path: str, timeout: float) -> os.stat_result:
    return _bounded(os.lstat, path, timeout)


def _statvfs(path: str, timeout: float) -> os.statvfs_result:
    # statfs always reaches the FUSE client process (stat may be answered from the
    # kernel's attribute cache), so it shows whether the mount is alive.
    return _bounded(os.statvfs, path, timeout)


def verify_mounted(
    mountpoint: str,
    hosts: Sequence[str],
    source: GlusterSource,
    *,
    read_only: bool | None = None,
    timeout: float = 30.0,
) -> MountEntry:
    """Check that `mountpoint` is right now the gluster mount of `source`; MountError if not.

    The mount on top at `mountpoint` (mountinfo) must be `fuse.glusterfs`, its source
    exactly `<one of hosts>:/<volume[/subdir]>`, its root `/`; with `read_only` given, it
    must be mounted `ro` (True) or `rw` (False). `lstat(mountpoint)` must answer within
    `timeout`, on the mount's own device, which differs from the parent directory's,
    with gluster's root inode; `statvfs(mountpoint)` must answer (the client is alive).
    """
    path = _canonical(mountpoint)
    entry = _find(path)
    if entry is None:
        raise MountError(f"nothing is mounted on {path}")
    if entry.fstype != FSTYPE:
        raise MountError(f"{path} is a {entry.fstype} mount of {entry.source}, not {FSTYPE}")
    expected = expected_sources(hosts, source)
    if entry.source not in expected:
        raise MountError(f"{path} is a mount of {entry.source}, expected {' or '.join(expected)}")
    if entry.root != "/":
        raise MountError(f"{path} mounts {entry.root} of {entry.source}, not its root")
    if read_only is not None and entry.read_only != read_only:
        mode = "read-only" if entry.read_only else "read-write"
        raise MountError(f"{path} is mounted {mode}, expected the opposite")
    st = _lstat(path, timeout)
    parent = _lstat(os.path.dirname(path), timeout)
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(f"{path} is not a directory")
    if st.st_dev == parent.st_dev:
        raise MountError(f"{path} is on the same device as its parent: not mounted")
    if st.st_dev != entry.device:
        raise MountError(
            f"{path} is on device {os.major(st.st_dev)}:{os.minor(st.st_dev)}, "
            f"mountinfo says {entry.major}:{entry.minor}"
        )
    if st.st_ino != ROOT_INODE:
        raise MountError(f"{path} has inode {st.st_ino}, not the gluster root inode")
    _statvfs(path, timeout)
    return entry


def _record_path(mountpoint: str) -> str:
    parent, name = os.path.split(mountpoint)
    return os.path.join(parent, RECORD_DIR, name)


def _write_record(mountpoint: str, mount_source: str) -> None:
    """Mark `mountpoint` as ours before mounting: a killed run's mount stays recognisable."""
    record = _record_path(mountpoint)
    body = json.dumps({"source": mount_source, "pid": os.getpid()}).encode()
    for attempt in range(3):  # a parallel volume's cleanup may rmdir the empty directory
        try:
            os.makedirs(os.path.dirname(record), mode=0o700, exist_ok=True)
            temporary = f"{record}.{os.getpid()}.{threading.get_ident()}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            os.replace(temporary, record)
            return
        except FileNotFoundError:
            if attempt == 2:
                raise
        except OSError as exc:
            raise MountError(f"cannot write mount record {record}: {exc.strerror or exc}") from exc


def _recorded_source(mountpoint: str) -> str | None:
    """The source our record for `mountpoint` names; None when there is no valid record."""
    try:
        fd = os.open(_record_path(mountpoint), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = json.loads(os.read(fd, 65536))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, str) else None


def _remove_record(mountpoint: str) -> None:
    record = _record_path(mountpoint)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(record))  # only when no other record is left


def is_own_mount(entry: MountEntry, mount_root: str) -> bool:
    """True when `entry` carries this tool's mark: a `fuse.glusterfs` mount directly in
    `mount_root`, named like a PV, whose record (written before mounting) names its source.
    """
    root = os.path.realpath(mount_root)
    parent, name = os.path.split(entry.mount_point)
    if parent != root or entry.fstype != FSTYPE or not _DNS_SUBDOMAIN.fullmatch(name):
        return False
    return _recorded_source(entry.mount_point) == entry.source


def foreign_mounts(mount_root: str) -> list[MountEntry]:
    """Every mount below `mount_root` that this tool did not make (see `is_own_mount`).

    A mount root that holds them is refused: it is not a directory of our own, and
    unmounting or wiping there could hit someone else's data. Raises MountError when
    mountinfo cannot be read.
    """
    root = os.path.realpath(mount_root)
    try:
        below = mountinfo.mounts_below(root)
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc
    return [entry for entry in below if not is_own_mount(entry, root)]


def _remove_dir(path: str) -> bool:
    """rmdir `path` when it is an empty directory; never recursive. True when removed."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            log.warning("left %s in place: the directory is not empty", path)
        else:
            log.warning("left %s in place: %s", path, exc.strerror or exc)
        return False
    return True


def _kill_fuse_daemons(mountpoint: str) -> None:
    """SIGKILL the glusterfs client processes serving exactly `mountpoint`.

    Used after a mount timed out: the daemonised glusterfs is out of the killed `mount`'s
    process group and could otherwise finish mounting after we gave up.
    """
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [os.fsdecode(a) for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "glusterfs" and argv[-1] == mountpoint:
            log.warning("killing glusterfs process %d left by a timed-out mount", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _detach(path: str, timeout: float) -> None:
    """Lazily unmount everything stacked on `path`; MountError when that fails."""
    for _ in range(_MAX_STACK):
        entry = _find(path)
        if entry is None:
            return
        result = _run("umount", ["-l", path], timeout=timeout)
        after = _find(path)
        if after is not None and after.mount_id == entry.mount_id:
            raise MountError(f"lazy unmount of {path} failed: {result.message()}")
    if _find(path) is not None:
        raise MountError(f"{path} is still mounted after {_MAX_STACK} unmounts")


def _discard(path: str, timeout: float) -> None:
    """After a failed mount: detach whatever got mounted and rmdir the empty mountpoint.

    Only called once `path` was found unmounted before our `mount` ran.
    """
    try:
        _detach(path, timeout)
    except MountError as exc:
        log.error("cleanup after a failed mount: %s", exc)
        return
    _remove_dir(path)
    _remove_record(path)


def mount_volume(
    hosts: Sequence[str],
    source: GlusterSource,
    mountpoint: str,
    *,
    timeout: float,
    read_only: bool = False,
    check_clients: bool = False,
) -> MountEntry:
    """Mount `source` on `mountpoint` (created if missing) and verify it; MountError if not.

    With `check_clients`, first raise VolumeInUse when other clients are connected (the
    check must come before our own mount, which would count). A mountpoint that already
    has something mounted on it is refused and left alone. `mount` is killed after
    `timeout` s. Before `mount` runs, a record naming the source is written to
    `<parent>/RECORD_DIR/<name>`: the mark by which `unmount` and `cleanup_stale_mounts`
    know the mount is ours. On every failure nothing of ours stays mounted and the
    mountpoint is removed when empty; files that were in it are never touched.
    """
    valid = check_hosts(hosts)
    path = _canonical(mountpoint)
    if check_clients:
        ensure_not_in_use(valid, source.volume, timeout=timeout)
    if _find(path) is not None:
        raise MountError(f"{path} is already a mountpoint; not mounting over it")
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError as exc:
        raise MountError(f"cannot create mountpoint {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(f"mountpoint {path} exists and is not a directory")

    mount_source, options = mount_source_and_options(valid, source, read_only)
    try:
        _write_record(path, mount_source)
    except BaseException:
        _remove_dir(path)
        raise
    args = ["-t", "glusterfs"]
    if options:
        args += ["-o", ",".join(options)]
    args += [mount_source, path]
    # With TLS files, `glusterfs` itself: mount.glusterfs passes on one xlator-option only.
    tls_args = tls.fuse_command(valid, source.volume, source.subdir, path, read_only=read_only)
    program, args = ("glusterfs", tls_args) if tls_args is not None else ("mount", args)
    try:
        result = _run(program, args, timeout=timeout)
    except BaseException:
        _discard(path, timeout)
        raise
    why = tls.explain(tls.fuse_log_file(path)) if tls_args is not None else None
    hint = f"; {why}" if why else ""
    if result.timed_out:
        _kill_fuse_daemons(path)
        _discard(path, timeout)
        raise MountError(f"mount of {mount_source} on {path} timed out after {timeout:g}s{hint}")
    if result.exit_code != 0:
        _discard(path, timeout)
        raise MountError(
            f"mount of {mount_source} on {path} failed (exit {result.exit_code}): "
            f"{result.message()}{hint}"
        )
    try:
        return verify_mounted(path, valid, source, read_only=read_only, timeout=timeout)
    except BaseException as exc:
        _discard(path, timeout)
        if isinstance(exc, MountError):
            if tls_args is not None:
                why = tls.explain(tls.fuse_log_file(path))
                hint = f"; {why}" if why else ""
            raise MountError(f"mount of {mount_source} exited 0 but: {exc}{hint}") from exc
        raise


def unmount(mountpoint: str, *, timeout: float, mount_id: int | None = None) -> None:
    """Unmount our mount at `mountpoint`, then rmdir it when empty and drop its record.

    Only a mount of ours is ever unmounted: the one with `mount_id` (from the `MountEntry`
    `mount_volume` returned) when given, else one carrying our mark (`is_own_mount`).
    Anything else found there (a foreign mount, or one stacked on top of ours) is left in
    place: MountError when ours is still below it, a warning when ours is gone.
    `umount` first; when that fails (busy) or hangs, `umount -l` (lazy detach). Not being
    mounted is not an error. Raises MountError when our mount stays in place.
    """
    path = _canonical(mountpoint)

    def ours(entry: MountEntry) -> bool:
        if mount_id is not None:
            return entry.mount_id == mount_id
        return is_own_mount(entry, os.path.dirname(path))

    for _ in range(_MAX_STACK):
        entry = _find(path)
        if entry is None:
            break
        if not ours(entry):
            if mount_id is not None and _mounted_at(path, mount_id):
                raise MountError(
                    f"{path}: a {entry.fstype} mount of {entry.source} was not made by this run "
                    "and is on top of ours; both left in place"
                )
            log.warning(
                "left %s mounted: %s of %s was not made by this run",
                path,
                entry.fstype,
                entry.source,
            )
            return
        result = _run("umount", [path], timeout=timeout)
        after = _find(path)
        if after is None or after.mount_id != entry.mount_id:
            continue
        why = "timed out" if result.timed_out else result.message()
        log.warning("umount %s: %s; detaching it lazily", path, why)
        lazy = _run("umount", ["-l", path], timeout=timeout)
        after = _find(path)
        if after is not None and after.mount_id == entry.mount_id:
            raise MountError(f"cannot unmount {path}: {why}; lazy unmount: {lazy.message()}")
    else:
        if _find(path) is not None:
            raise MountError(f"{path} is still mounted after {_MAX_STACK} unmounts")
    _remove_dir(path)
    _remove_record(path)


def _mounted_at(path: str, mount_id: int) -> bool:
    """True when mount `mount_id` is still on `path` (perhaps below another mount)."""
    try:
        return any(e.mount_id == mount_id and e.mount_point == path for e in mountinfo.read())
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc


def cleanup_stale_mounts(mount_root: str, *, timeout: float = 60.0) -> list[str]:
    """Undo what a killed run left below `mount_root`; returns the paths cleaned up.

    Every mount below `mount_root` that carries our mark (`is_own_mount`) is lazily
    unmounted and its record dropped; every other mount there (another tool's, an
    admin's, even a `fuse.glusterfs` one) is reported and left alone. Then every empty
    directory directly in `mount_root` is removed with rmdir. A directory that still holds
    files is left in place and reported (logged as a warning), never removed recursively.
    Records whose mountpoint is no longer mounted are dropped. Returned: each unmounted
    mountpoint and each removed directory, once.
    """
    root = os.path.realpath(mount_root)
    if root == "/":
        raise GlusterError("refusing to clean up mounts below /")
    if not os.path.isdir(root):
        return []
    cleaned: list[str] = []
    try:
        stale = mountinfo.mounts_below(root)
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc
    for entry in stale:
        if not is_own_mount(entry, root):
            log.warning(
                "left %s (%s from %s) mounted: not made by gluster-recycler",
                entry.mount_point,
                entry.fstype,
                entry.source,
            )
            continue
        result = _run("umount", ["-l", entry.mount_point], timeout=timeout)
        after = _find(entry.mount_point)
        if after is not None and after.mount_id == entry.mount_id:
            log.error(
                "cannot unmount %s left by an earlier run: %s",
                entry.mount_point,
                result.message(),
            )
            continue
        log.warning("unmounted %s (%s) left by an earlier run", entry.mount_point, entry.source)
        if entry.mount_point not in cleaned:
            cleaned.append(entry.mount_point)
    with os.scandir(root) as children:
        names = sorted(child.name for child in children if child.name != RECORD_DIR)
    records = os.path.join(root, RECORD_DIR)
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(records)):
            if _find(os.path.join(root, name)) is None:
                _remove_record(os.path.join(root, name))
    for name in names:
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            log.warning("left %s in place: not a directory", path)
            continue
        if _find(path) is not None:
            log.warning("left %s in place: still mounted", path)
            continue
        if _remove_dir(path) and path not in cleaned:
            cleaned.append(path)
    return cleaned
