"""The libgfapi transport: connect without a mount, prove the Volume ID, wipe by handle.

The gluster CLI is asked first: a volume deleted and re-created under the same name in
between shows up as a mismatch. Of the trash rules (gluster/trash.py) only the refusal of a
PV in the trash applies: gfapi sees `<trash>/<subdir>` and empties it (see
docs/decisions.md). libgfapi is loaded only when this transport is used; `glfs_init` and
`glfs_fini` are bounded by `--mount-timeout`, and `glfs_init` is given up on at SIGTERM.

`glfs_fini` disconnects from the bricks at once but then waits up to 10 s for a timer of
its own (see gfapi.py); the close returns as soon as `gluster volume status VOL
client-list` no longer lists a client of our name, and the fini finishes in the
background. A close that proves neither (the fini did not return within the bound and the
bricks still list us) fails the volume: it is not released while we may still be connected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence

from recycler_job import failpoints
from recycler_job.gluster.clients import client_report
from recycler_job.gluster.errors import GlusterError, VolumeIdentityError
from recycler_job.gluster.trash import Trash
from recycler_job.report import timed
from recycler_job.wipe.engine import WipeError, WipeStats
from recycler_job.wipe.transport import Opened, StopCheck, Target, volume_info_checked

log = logging.getLogger(__name__)


def client_gone(
    hosts: Sequence[str], volume: str, name: str, *, timeout: float
) -> Callable[[float], bool]:
    """The check :meth:`gfapi.Volume.close` asks while ``glfs_fini`` runs: no brick of
    ``volume`` lists a client named ``name`` (``gluster volume status VOL clients`` and
    ``client-list``, each bounded by ``timeout`` and by what is left of the fini's bound).
    A volume whose clients cannot be listed (glusterd unreachable, a brick offline) is not
    taken for one we left."""

    def gone(left_s: float) -> bool:
        try:
            report = client_report(hosts, volume, timeout=min(left_s, timeout))
        except GlusterError as exc:
            log.debug("clients of volume %s at close: %s", volume, exc)
            return False
        return report.kinds.get(name, 0) == 0

    return gone


@contextlib.contextmanager
def open_gfapi(target: Target) -> Iterator[Opened]:
    """Connect over libgfapi; the Volume ID it reads must be the one `gluster volume info`
    reports from the same hosts; wipe by handle; glfs_fini on every path."""
    from recycler_job.wipe import gfapi_handles  # noqa: PLC0415 (loads libgfapi only when used)

    settings = target.settings
    pv_name, source, hosts, result = target.pv_name, target.source, target.hosts, target.result
    info = volume_info_checked(target)
    trash = Trash.of(info)
    trash.check_pv_path(source.volume, source.subdir)
    failpoints.hit("before-mount")
    target.guard()
    log_file = os.path.join(settings.log_dir, f"gfapi-{pv_name}.log")
    volume: gfapi_handles.GfapiVolume = timed(
        result,
        "mount",
        gfapi_handles.open_volume,
        source.volume,
        hosts,
        log_file=log_file,
        timeout=settings.mount_timeout,
        interrupt=target.guard,  # SIGTERM (or a lost Lease) gives up a hanging glfs_init
    )
    own_name = gfapi_handles.client_list_name()
    disconnected = client_gone(hosts, source.volume, own_name, timeout=settings.mount_timeout)
    closing_started: float | None = None
    try:
        try:
            try:
                seen = volume.volume_id()
                if not gfapi_handles.volume_ids_match(seen, info.volume_id):
                    raise VolumeIdentityError(
                        f"volume {source.volume}: libgfapi reached Volume ID {seen}, but "
                        f"`gluster volume info` on the same hosts says {info.volume_id}: "
                        "another volume answered"
                    )
                result.volume_id = info.volume_id
                failpoints.hit("after-verify")
                workers = settings.workers

                def run(stop: StopCheck) -> WipeStats:
                    return volume.wipe(
                        source.subdir,
                        workers=workers,
                        stop=stop,
                        trash=trash.root_names,
                        budget=target.budget,
                    )

                own = {own_name: 1}
                yield Opened(
                    volume_id=info.volume_id, own_clients=own, wipe=run, request=volume.request
                )
            finally:
                closing_started = time.monotonic()
                failpoints.hit("before-fini")
        finally:
            volume.close(disconnected)
    finally:
        if closing_started is not None:
            result.durations["unmount"] = round(time.monotonic() - closing_started, 3)
        if volume.volume.fini_abandoned:
            log.error(
                "pv/%s: glfs_fini of volume %s did not return within %g s; given up",
                pv_name,
                source.volume,
                settings.mount_timeout,
            )
        elif volume.volume.fini_detached:
            log.info(
                "pv/%s: the bricks of volume %s list no client of ours; glfs_fini of it "
                "goes on in the background",
                pv_name,
                source.volume,
            )
        elif volume.volume.closed:
            log.info(
                "pv/%s: glfs_fini of volume %s returned %s",
                pv_name,
                source.volume,
                volume.volume.fini_result,
            )
        else:  # a worker is still inside a gfapi call: freeing it now would crash
            log.error("pv/%s: glfs_fini of volume %s skipped", pv_name, source.volume)
    if volume.volume.fini_result is None and not volume.volume.fini_detached:
        raise WipeError(
            f"volume {source.volume}: glfs_fini did not return within {settings.mount_timeout:g} s "
            f"and the bricks still list a client of ours ({own_name}): not released while we "
            "may still be connected"
        )
