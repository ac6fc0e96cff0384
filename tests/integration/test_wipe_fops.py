"""Brick fops per removed file, counted by `gluster volume profile`, for both wipe backends.

Each file of a listed directory needs one UNLINK at the brick; the LOOKUP the client sends
before it must be answered by our own client's md-cache from the readdirplus attributes
(recycler_job/gluster/client_cache.py).  md-cache's default keeps them 1 s, so the brick here
delays every UNLINK by 20 ms: 500 files take several seconds, and without the longer cache
most unlinks would cost a LOOKUP at the brick as well (about 1.9 fops per file, measured).
These are counts, not timings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recycler_job.gluster import mount
from recycler_job.wipe import fuse as fuse_wipe
from recycler_job.wipe import gfapi, gfapi_handles
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.gluster_fixtures import VolumeFactory

pytestmark = pytest.mark.gluster

FILES = 500
LIMIT = 1.2  # brick fops per removed file
SLOW_UNLINK = {
    "debug.delay-gen": "posix",
    "delay-gen.delay-percentage": "100",
    "delay-gen.delay-duration": "20000",  # microseconds
    "delay-gen.enable": "UNLINK",
}


@pytest.fixture
def slow_volume(gluster_volume: VolumeFactory, tmp_path: Path) -> Iterator[GlusterVolumeHandle]:
    """A volume whose brick delays UNLINK, holding FILES empty files in /one."""
    volume = gluster_volume(options=SLOW_UNLINK)
    vol = gfapi.Volume(volume.name, [volume.hosts[0]], str(tmp_path / "build.log"))
    try:
        gfapi.as_root()
        root, _ = vol.root()
        top, _ = vol.mkdir(root, b"one")
        for i in range(FILES):
            handle, _ = vol.create(top, b"f%04d" % i)
            handle.close()
        top.close()
        root.close()
    finally:
        vol.close()
    yield volume


def fops_per_file(server: GlusterServer, volume: GlusterVolumeHandle, removed: int) -> float:
    counts = server.profile_fops(volume)
    assert removed == FILES
    assert counts.get("UNLINK", 0) >= FILES, counts  # the wipe went through this brick
    return sum(counts.values()) / removed


def test_fuse_wipe_sends_one_brick_fop_per_file(
    gluster_server: GlusterServer, slow_volume: GlusterVolumeHandle, tmp_path: Path
) -> None:
    mountpoint = str(tmp_path / "mounts" / "pv")
    entry = mount.mount_volume(slow_volume.hosts, slow_volume.source(), mountpoint, timeout=60)
    try:
        gluster_server.profile_start(slow_volume)
        stats = fuse_wipe.wipe_tree(os.path.join(mountpoint, "one"), workers=16)
        per_file = fops_per_file(gluster_server, slow_volume, stats.files)
    finally:
        mount.unmount(mountpoint, timeout=60, mount_id=entry.mount_id)
    assert per_file <= LIMIT


def test_gfapi_wipe_sends_one_brick_fop_per_file(
    gluster_server: GlusterServer, slow_volume: GlusterVolumeHandle, tmp_path: Path
) -> None:
    gluster_server.profile_start(slow_volume)
    with gfapi_handles.open_volume(
        slow_volume.name, list(slow_volume.hosts), log_file=str(tmp_path / "gfapi.log")
    ) as vol:
        stats = vol.wipe("one", workers=16)
    per_file = fops_per_file(gluster_server, slow_volume, stats.files)
    assert per_file <= LIMIT
