"""Parsers of the `gluster` CLI's output; pure, so captured output tests them (tests/unit/data).

Anything unexpected is a GlusterError: output we cannot read is never taken for "no clients".
"""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from recycler_job.gluster.errors import GlusterError, one_line

# `features.trash` values that leave the trash translator off; anything else counts as on.
_TRASH_OFF = frozenset({"off", "no", "false", "disable", "0"})
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


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
            f"unexpected `volume status {volume} clients` output: {one_line(text, 200)!r}"
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
            f"unexpected `volume status {volume} client-list` output: {one_line(text, 200)!r}"
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
    if not UUID.fullmatch(volume_id):
        raise GlusterError(f"`volume info {volume}` gave no Volume ID")
    bricks: list[VolumeBrick] = []
    for brick in node.iter("brick"):
        name = (brick.findtext("name") or brick.text or "").strip()
        host, sep, path = name.rpartition(":")
        if not sep or not host or not path.startswith("/"):
            raise GlusterError(f"`volume info {volume}`: unexpected brick {name!r}")
        uuid = (brick.findtext("hostUuid") or brick.get("uuid") or "").strip().lower()
        if not UUID.fullmatch(uuid):
            # Every server version tested (9.2, 10.3, 11.1) names it; without it the node
            # uuids a mount reports could not be told from another pool's.
            raise GlusterError(f"`volume info {volume}`: brick {name!r} has no node uuid")
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
class BrickState:
    """One brick of `gluster volume status VOL --xml`: where it is and whether its process runs.

    `pid` tells one run of the brick process from the next: a brick that died and came
    back while a volume was wiped has another pid.
    """

    host: str
    path: str
    node_uuid: str
    online: bool
    pid: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.path}"


def parse_volume_status(text: str, volume: str) -> list[BrickState]:
    """Parse `gluster volume status VOL --xml`: its bricks (daemons such as the self-heal
    daemon, listed with a non-path `path`, are left out); GlusterError on anything unexpected.

    The CLI exits 0 also for a volume that does not exist or is not started: `opRet` -1
    says so. The bricks of a server whose glusterd is not connected are not listed at all.
    """
    try:
        root = ET.fromstring(text.strip())  # noqa: S314 -- our own gluster CLI call
    except ET.ParseError as exc:
        raise GlusterError(f"unreadable `volume status {volume} --xml` output: {exc}") from None
    if root.findtext("opRet") != "0":
        reason = root.findtext("opErrstr") or f"opRet {root.findtext('opRet')}"
        raise GlusterError(f"`volume status {volume}` failed: {reason}")
    found = [v for v in root.iter("volume") if v.findtext("volName") == volume]
    if len(found) != 1:
        raise GlusterError(f"`volume status {volume}` described {len(found)} volumes named so")
    bricks: list[BrickState] = []
    for node in found[0].iter("node"):
        path = (node.findtext("path") or "").strip()
        if not path.startswith("/"):
            continue  # a daemon (Self-heal Daemon, NFS Server, ...), not a brick
        host = (node.findtext("hostname") or "").strip()
        status = (node.findtext("status") or "").strip()
        pid_text = (node.findtext("pid") or "").strip()
        if not host or status not in ("0", "1") or not re.fullmatch(r"-?\d+", pid_text):
            raise GlusterError(f"`volume status {volume}`: unexpected brick entry for {path!r}")
        bricks.append(
            BrickState(
                host=host,
                path=path.rstrip("/") or "/",
                node_uuid=(node.findtext("peerid") or "").strip().lower(),
                online=status == "1",
                pid=int(pid_text),
            )
        )
    return bricks
