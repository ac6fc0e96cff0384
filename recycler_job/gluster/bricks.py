"""Brick health: every brick of a volume runs, and the same process still runs it later.

A wipe through a mount or libgfapi only sees the bricks that answer. On a distributed volume
with a brick down it removes what the live bricks hold and reports success when nothing it
touched needed the dead one; the files come back with the brick, on a PV already given to the
next tenant. So the volume's bricks are checked before the first unlink and again before the
release, whatever the client check says.
"""

from collections.abc import Mapping, Sequence

from recycler_job.gluster import cli
from recycler_job.gluster.errors import BrickOffline
from recycler_job.gluster.parse import BrickState, VolumeBrick, VolumeInfo

# brick `host:/path` -> pid of the brick process that serves it
BrickRuns = dict[str, int]


def _state_of(brick: VolumeBrick, states: Sequence[BrickState]) -> BrickState | None:
    for state in states:
        if state.path != brick.path:
            continue
        if brick.node_uuid and state.node_uuid:
            if brick.node_uuid == state.node_uuid:
                return state
        elif brick.host == state.host:
            return state
    return None


def running(info: VolumeInfo, states: Sequence[BrickState]) -> BrickRuns:
    """Each brick `volume info` lists with the pid `volume status` gives it.

    BrickOffline when a brick is offline, or not listed at all (`volume status` leaves out
    the bricks of a server whose glusterd is not connected).
    """
    runs: BrickRuns = {}
    offline: list[str] = []
    unlisted: list[str] = []
    for brick in info.bricks:
        state = _state_of(brick, states)
        if state is None:
            unlisted.append(brick.name)
        elif not state.online or state.pid <= 0:
            offline.append(brick.name)
        else:
            runs[brick.name] = state.pid
    if offline or unlisted:
        parts = []
        if offline:
            parts.append(f"brick(s) offline: {', '.join(offline)}")
        if unlisted:
            parts.append(
                f"brick(s) not listed by `volume status` (server not connected): "
                f"{', '.join(unlisted)}"
            )
        raise BrickOffline(
            f"volume {info.name}: {'; '.join(parts)}; a wipe would miss the files they hold "
            "and they would come back with the brick"
        )
    return runs


def bricks_running(hosts: Sequence[str], volume: str, *, timeout: float) -> BrickRuns:
    """Every brick of `volume` and the pid running it; BrickOffline when one is not running,
    GlusterError when gluster cannot tell (two CLI calls: `volume info` and `volume status`)."""
    info = cli.volume_info(hosts, volume, timeout=timeout)
    return running(info, cli.volume_status(hosts, volume, timeout=timeout))


def ensure_same_runs(volume: str, before: Mapping[str, int], now: Mapping[str, int]) -> None:
    """BrickOffline when a brick was added, removed or restarted between two checks: a brick
    that was down for a while (the wipe did not see its files) is back with another pid."""
    changed = sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))
    if changed:
        raise BrickOffline(
            f"volume {volume}: brick(s) restarted, added or removed since the wipe began: "
            f"{', '.join(changed)}; the wipe may have missed what they hold"
        )
