"""The client check: is a volume used by anyone but gluster's own daemons (and us)?"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from recycler_job.gluster import cli
from recycler_job.gluster.errors import GlusterError, VolumeInUse
from recycler_job.gluster.parse import BrickClients

log = logging.getLogger(__name__)

# Client process names (`--process-name`) that `gluster volume status VOL client-list`
# reports for gluster's own services. Anything else (`fuse`, `gfapi`, names we do not
# know) counts as a real client.
GLUSTER_DAEMONS = frozenset(
    {"glustershd", "quotad", "rebalance", "snapd", "bitd", "scrub", "tierd"}
)


def _client_address(connection: str) -> str:
    address = connection.rsplit(":", 1)[0] if ":" in connection else connection
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


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
    bricks = cli.volume_clients(hosts, volume, timeout=timeout)
    offline = [b.brick for b in bricks if not b.online]
    if offline:
        raise GlusterError(
            f"volume {volume}: brick(s) offline: {', '.join(offline)}; "
            "cannot tell which clients are connected"
        )
    kinds: dict[str, int] = {}
    if any(b.connections for b in bricks):
        kinds = cli.client_kinds(hosts, volume, timeout=timeout)
    report = ClientReport(volume=volume, bricks=tuple(bricks), kinds=kinds)
    log.debug(
        "volume %s: client kinds %s; connections %s",
        volume,
        kinds or "none",
        {b.brick: list(b.connections) for b in bricks},
    )
    return report


def ensure_not_in_use(hosts: Sequence[str], volume: str, *, timeout: float) -> None:
    """Raise VolumeInUse when `volume` has clients other than gluster's daemons."""
    report = client_report(hosts, volume, timeout=timeout)
    if report.in_use:
        raise VolumeInUse(report.describe())
