"""Proves a verified mount is the volume the PV names: its bricks, node uuids and trash."""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recycler_job.gluster import cli, probe
from recycler_job.gluster.errors import GlusterError, TrashInTheWay, VolumeIdentityError, one_line
from recycler_job.gluster.hosts import resolve_addresses
from recycler_job.gluster.parse import UUID, VolumeBrick, VolumeInfo
from recycler_job.gluster.trash import Trash
from recycler_job.sources.glusterfs import GlusterSource

# The xattrs a FUSE mount answers on its root: the bricks serving it (host and path), and
# the glusterd node uuid(s) of those bricks.
PATHINFO_XATTR = "trusted.glusterfs.pathinfo"
NODE_UUID_XATTRS = ("trusted.glusterfs.node-uuid", "trusted.glusterfs.list-node-uuids")
_POSIX_ENTRY = re.compile(r"<POSIX\((?P<brick>[^()<>]+)\):(?P<rest>[^<>]+)>")


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
        raise GlusterError(f"pathinfo names no brick: {one_line(text, 200)!r}")
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


def check_trash(info: VolumeInfo, source: GlusterSource) -> Trash:
    """Refuse a PV in the trash directory, or a subdirectory PV while the trash is on.

    An unlink then moves the file to `<trash>/<subdir>/...` at the volume root (the trash's
    name is `features.trash-dir`), which a subdirectory mount cannot see: the wipe would
    "succeed" and leave the data on the volume. A PV of the whole volume empties the trash
    itself (see wipe.py); the returned `Trash` names it.
    """
    trash = Trash.of(info)
    trash.check_pv_path(info.name, source.subdir)
    if source.subdir and trash.on:
        raise TrashInTheWay(
            f"volume {info.name} has features.trash on ({info.options['features.trash']!r}): "
            f"files wiped in subdirectory {source.subdir!r} would be kept in "
            f"{info.name}/{trash.name}, out of this mount's reach; not wiped "
            f"(turn features.trash off, or empty the trash as an admin)"
        )
    return trash


def verify_volume_identity(
    mountpoint: str, hosts: Sequence[str], source: GlusterSource, *, timeout: float
) -> VolumeInfo:
    """Prove the verified mount on `mountpoint` is `source`'s volume as `hosts` describe it.

    Reads the mount root's pathinfo (the bricks that answered) and node uuids, asks `hosts`
    for `volume info`, and checks them against each other (`check_volume_identity`) and the
    trash rule for subdirectory PVs (`check_trash`). Returns the volume info (its Volume ID
    goes into the report). Raises VolumeIdentityError, TrashInTheWay or GlusterError.
    """
    path = probe.canonical(mountpoint)
    pathinfo = probe.read_xattr(path, PATHINFO_XATTR, timeout)
    if pathinfo is None:
        raise VolumeIdentityError(f"{path} answers no {PATHINFO_XATTR}: cannot tell its bricks")
    uuids: set[str] = set()
    for xattr in NODE_UUID_XATTRS:
        uuids.update(UUID.findall(probe.read_xattr(path, xattr, timeout) or ""))
    info = cli.volume_info(hosts, source.volume, timeout=timeout)
    check_volume_identity(parse_pathinfo(pathinfo), info, source, uuids)
    check_trash(info, source)
    return info
