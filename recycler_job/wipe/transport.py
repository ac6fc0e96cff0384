"""The wipe transport: how a volume's files are reached. act.py sees only this interface.

Two implementations: FUSE mount + fd wipe (fuse_transport.py) and libgfapi
(gfapi_transport.py). Each opens the volume, proves it is the PV's (its Volume ID as the
gluster CLI reports it from the same hosts), hands back an `Opened`, and undoes its
connection on every path out of the `with` block.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from recycler_job import tls
from recycler_job.gluster import cli
from recycler_job.gluster.parse import VolumeInfo
from recycler_job.report import VolumeResult, timed
from recycler_job.sources import GlusterSource
from recycler_job.wipe.engine import WipeStats, WorkerBudget

StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class Opened:
    """A volume a transport has opened and proven to be the PV's, ready to be wiped."""

    volume_id: str
    own_clients: dict[str, int]  # what this connection adds to `volume status client-list`
    wipe: Callable[[StopCheck], WipeStats]  # stop flag -> stats
    # One request through this connection: a client whose graph changed stays listed with
    # its old graph too until its next request (watch.clients_besides_own).
    request: Callable[[], None]


@dataclass(frozen=True)
class WipeSettings:
    """The settings the transports read, built once from Config (act.py): the wipe sees
    nothing else of the run's configuration."""

    workers: int  # --wipe-workers
    mount_timeout: float  # bounds a mount, glfs_init/glfs_fini and the gluster CLI calls
    mount_root: str  # FUSE: where volumes are mounted
    log_dir: str  # gfapi: where libgfapi writes its log
    reset_owner: tuple[int, int] | None  # FUSE: the emptied root's owner, if reset
    reset_mode: int | None  # FUSE: its mode, if reset


@dataclass(frozen=True)
class Target:
    """One volume to open, and what the run lends the transport for it."""

    settings: WipeSettings
    guard: Callable[[], None]  # raises when the run must not go on (see Actor._guard)
    pv_name: str
    source: GlusterSource
    hosts: tuple[str, ...]
    result: VolumeResult  # gets the step durations (`mount`, `unmount`, ...) and the Volume ID
    budget: WorkerBudget | None = None  # the wipe workers shared by the pass's volumes


class Transport(Protocol):
    """Opens `target`'s volume for a wipe: connect, verify, yield the `Opened` volume, and
    disconnect on every way out of the `with` block."""

    def __call__(self, target: Target) -> AbstractContextManager[Opened]: ...


def volume_info_checked(target: Target) -> VolumeInfo:
    """`gluster volume info` of the target's volume from its hosts, and the TLS rule: a volume
    that needs TLS files the run cannot serve it with is refused (TlsError) before any
    client connects."""
    source, result = target.source, target.result
    info = timed(
        result,
        "volume_info",
        cli.volume_info,
        target.hosts,
        source.volume,
        timeout=target.settings.mount_timeout,
    )
    timed(result, "tls", tls.require_for, source.volume, info.options)
    return info
