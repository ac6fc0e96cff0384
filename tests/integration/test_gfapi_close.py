"""Closing a libgfapi volume: the close waits for our client's disconnection, not for the
whole ``glfs_fini`` (whose last 10 s are a timer of glusterfs 10's own, see gfapi.py).

In this process, as root: what is tested is the binding's close against a real glusterd.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from collections.abc import Iterator

import pytest

from recycler_job.gluster import cli
from recycler_job.wipe import gfapi
from recycler_job.wipe.gfapi_handles import client_list_name
from recycler_job.wipe.gfapi_transport import client_gone
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.gluster_fixtures import VolumeFactory

pytestmark = pytest.mark.gluster


@pytest.fixture
def log_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="grt-gfapi-close-") as tmp:
        yield os.path.join(tmp, "gfapi.log")


def _opened(server: GlusterServer, handle: GlusterVolumeHandle, log_file: str) -> gfapi.Volume:
    """A volume with requests behind it (the fini's timer is armed by the first one)."""
    vol = gfapi.Volume(handle.name, server.hosts, log_file, timeout=60)
    gfapi.as_root()
    root, _ = vol.root()
    assert [name for name, _ in vol.listdir(root)] == [b"f"]
    root.close()
    return vol


def test_close_returns_once_the_bricks_list_no_client_of_ours(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, log_file: str
) -> None:
    handle = gluster_volume(bricks=2)
    gluster_server.write_files(handle, {"f": "x"})
    vol = _opened(gluster_server, handle, log_file)
    me = client_list_name()
    assert cli.client_kinds(gluster_server.hosts, handle.name, timeout=30).get(me) == 1
    asked: list[dict[str, int]] = []
    gone = client_gone(gluster_server.hosts, handle.name, me, timeout=30)

    def disconnected(left_s: float) -> bool:
        answer = gone(left_s)
        asked.append(cli.client_kinds(gluster_server.hosts, handle.name, timeout=30))
        return answer

    started = time.monotonic()
    vol.close(disconnected)
    took = time.monotonic() - started
    assert vol.fini_detached and vol.fini_result is None and not vol.fini_abandoned
    # Returned on the bricks' word, long before glfs_fini's own ~10 s.
    assert took < 6, took
    assert asked and me not in asked[-1], asked
    assert me not in cli.client_kinds(gluster_server.hosts, handle.name, timeout=30)
    # Nothing goes through the volume after the close, whatever the fini is doing.
    with pytest.raises(gfapi.GfapiError) as caught:
        vol.root()
    assert caught.value.errno == errno.EBADF


def test_close_without_the_bricks_word_waits_for_the_fini_within_its_bound(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, log_file: str
) -> None:
    """A check that never confirms (glusterd cannot say, or a client of our name is still
    listed) leaves the close waiting for glfs_fini, and gives up at the bound."""
    handle = gluster_volume()
    gluster_server.write_files(handle, {"f": "x"})
    vol = _opened(gluster_server, handle, log_file)
    vol.timeout = 2.0
    asked: list[float] = []

    def never(left_s: float) -> bool:
        asked.append(left_s)
        return False

    started = time.monotonic()
    vol.close(never)
    took = time.monotonic() - started
    assert asked and all(0 < left <= 2.0 for left in asked), asked
    assert 2.0 <= took < 4, took
    assert vol.fini_abandoned and not vol.fini_detached and vol.fini_result is None
