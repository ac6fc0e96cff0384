"""The FUSE transport: mount, verify the mount and the volume's identity, wipe through an fd.

Only the mount this run made is ever unmounted, and it is unmounted on every path.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from recycler_job import failpoints, tls
from recycler_job.gluster import identity, mount
from recycler_job.gluster.errors import GlusterError, MountError
from recycler_job.gluster.mountinfo import MountEntry
from recycler_job.gluster.trash import Trash
from recycler_job.report import timed
from recycler_job.wipe import fuse as fuse_wipe
from recycler_job.wipe.engine import WipeStats
from recycler_job.wipe.transport import Opened, StopCheck, Target, volume_info_checked

log = logging.getLogger(__name__)


@contextlib.contextmanager
def open_fuse(target: Target) -> Iterator[Opened]:
    """Mount, verify the mount and the volume's identity, wipe through an fd; unmount."""
    settings = target.settings
    pv_name, source, hosts, result = target.pv_name, target.source, target.hosts, target.result
    mountpoint = mount.mountpoint_for(settings.mount_root, pv_name)
    ours: MountEntry | None = None  # only what this run mounted is ever unmounted
    if tls.current() is not None:  # TLS files given: say which volume they cannot serve
        volume_info_checked(target)
    try:
        failpoints.hit("before-mount")
        ours = timed(
            result,
            "mount",
            mount.mount_volume,
            hosts,
            source,
            mountpoint,
            timeout=settings.mount_timeout,
        )
        failpoints.hit("before-wipe")
        target.guard()
        # The last check before removing anything: still exactly this gluster mount.
        verified = mount.verify_mounted(mountpoint, hosts, source)
        if verified.mount_id != ours.mount_id:
            raise MountError(f"{mountpoint} is no longer the mount this run made")
        # Which volume answered: the bricks serving the mount must be bricks of the volume
        # `gluster volume info` describes on the same hosts (and no trash out of reach).
        info = identity.verify_volume_identity(
            mountpoint, hosts, source, timeout=settings.mount_timeout
        )
        result.volume_id = info.volume_id
        # The trash directories at a whole-volume root are emptied last (gluster/trash.py).
        trash = frozenset() if source.subdir else Trash.of(info).root_names
        failpoints.hit("after-verify")
        # From here on the path is never looked up again: everything goes through this fd,
        # proven to be the root of the verified mount (its device, gluster's root inode).
        with fuse_wipe.open_verified_root(
            mountpoint, device=verified.device, inode=mount.ROOT_INODE
        ) as root:

            def run(stop: StopCheck) -> WipeStats:
                stats = fuse_wipe.wipe_tree(
                    root,
                    workers=settings.workers,
                    stop=stop,
                    trash=trash,
                    budget=target.budget,
                )
                if settings.reset_owner is not None or settings.reset_mode is not None:
                    fuse_wipe.reset_root(root, settings.reset_owner, settings.reset_mode)
                return stats

            yield Opened(
                volume_id=info.volume_id, own_clients={"fuse": 1}, wipe=run, request=root.request
            )
    finally:
        unmount_started = time.monotonic()
        if ours is not None:
            try:
                mount.unmount(mountpoint, timeout=settings.mount_timeout, mount_id=ours.mount_id)
            except GlusterError as exc:
                log.error("pv/%s: unmount of %s failed: %s", pv_name, mountpoint, exc)
        result.durations["unmount"] = round(time.monotonic() - unmount_started, 3)
