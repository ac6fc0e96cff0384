"""The server-version matrix: what the recycler asks of a pool, against glusterd 9.2, 10.3, 11.1.

The client is always this machine's (Debian 12: glusterfs 10.3), as in the image; the server
is `matrix_server` (tests/sandbox/gluster_fixtures.py): this machine's glusterd for 10.3, a
chroot's glusterd in its own network namespace for 9.2 and 11.1, reached over TCP. Marked
`gluster_compat` (tests/conftest.py): `pytest -m gluster_compat` runs only the matrix.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recycler_job import tls
from recycler_job.gluster import cli
from recycler_job.gluster.clients import client_report, ensure_not_in_use
from recycler_job.gluster.errors import GlusterError, MountError, VolumeIdentityError, VolumeInUse
from recycler_job.gluster.identity import verify_volume_identity
from recycler_job.gluster.mount import mount_volume, mountpoint_for, unmount
from recycler_job.wipe.fuse import wipe_tree
from recycler_job.wipe.gfapi_handles import volume_ids_match
from tests.integration.test_gfapi import (
    brick_listing,
    local_digest,
    make_chain,
    outside,  # noqa: F401 (fixture)
    run_driver,
    scratch,  # noqa: F401 (fixture)
    spec_for,
    write,
)
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.gluster_fixtures import VolumeFactory
from tests.sandbox.objects import wait_for
from tests.sandbox.pki import Pki

pytestmark = pytest.mark.gluster

TIMEOUT = 30.0
FROZEN_TIMEOUT = 5.0  # what the recycler is given against a frozen brick


@pytest.fixture
def mount_root(tmp_path: Path, matrix_server: GlusterServer) -> Iterator[str]:
    root = tmp_path / "mounts"
    root.mkdir()
    yield str(root)
    leftovers = matrix_server.unmount_below(root)
    assert leftovers == [], f"test left mounts behind: {leftovers}"


def hostile_tree(root: str, away: Path) -> None:
    """Names and modes that trip careless wipes, and symlinks out of the volume."""
    write(f"{root}/.hidden", b"12345")
    write(f"{root}/.config/.inner", b"1")
    write(f"{root}/-rf", b"1")
    write(f"{root}/new\nline", b"1")
    write(os.fsencode(root) + b"/\xff\xfe-latin1-\xe9", b"1")
    write(f"{root}/ro/sub/f", b"1")
    os.chmod(f"{root}/ro/sub", 0o500)
    os.chmod(f"{root}/ro", 0o000)
    write(f"{root}/zero", b"1")
    os.chmod(f"{root}/zero", 0o000)
    os.symlink(str(away), f"{root}/to-outside")
    os.symlink(str(away / "precious"), f"{root}/to-precious")
    os.makedirs(f"{root}/in")
    os.symlink("/", f"{root}/in/slash")
    os.symlink("../..", f"{root}/in/up")
    make_chain(root, 40)


HOSTILE_FILES = 7 + 4 + 40  # regular files, symlinks, the chain's files
HOSTILE_DIRS = 1 + 2 + 1 + 40  # .config, ro/sub, in, the chain


# ------------------------------------------------------------------- client check


def test_client_check_sees_a_fuse_client_and_its_leaving(
    matrix_server: GlusterServer, matrix_volume: VolumeFactory
) -> None:
    volume = matrix_volume()
    ensure_not_in_use(volume.hosts, volume.name, timeout=TIMEOUT)
    with matrix_server.mounted(volume):
        report = client_report(volume.hosts, volume.name, timeout=TIMEOUT)
        assert report.kinds == {"fuse": 1}
        assert [len(b.connections) for b in report.bricks] == [1]
        with pytest.raises(VolumeInUse, match="1 fuse client"):
            ensure_not_in_use(volume.hosts, volume.name, timeout=TIMEOUT)
    wait_for(
        lambda: not client_report(volume.hosts, volume.name, timeout=TIMEOUT).in_use,
        timeout=30,
        what="the volume's clients to go",
    )


def test_client_check_of_a_missing_or_stopped_volume_is_an_error(
    matrix_server: GlusterServer, matrix_volume: VolumeFactory
) -> None:
    volume = matrix_volume()
    with pytest.raises(GlusterError, match="does not exist"):
        client_report(volume.hosts, "grt-no-such-volume", timeout=TIMEOUT)
    matrix_server.stop_volume(volume)
    with pytest.raises(GlusterError, match="not started"):
        client_report(volume.hosts, volume.name, timeout=TIMEOUT)


# ------------------------------------------------------------------ identity proof


@pytest.mark.parametrize("subdir", ["", "pv/data"])
def test_identity_proof_on_the_recyclers_own_mount(
    matrix_volume: VolumeFactory, mount_root: str, subdir: str
) -> None:
    volume = matrix_volume(subdir="pv/data")
    other = matrix_volume()
    source = volume.source(subdir=subdir)
    mountpoint = mountpoint_for(mount_root, "pv-id")
    mount_volume(volume.hosts, source, mountpoint, timeout=TIMEOUT)
    try:
        info = verify_volume_identity(mountpoint, volume.hosts, source, timeout=TIMEOUT)
        assert info.volume_id == cli.volume_info(volume.hosts, volume.name, timeout=30).volume_id
        # the same mount taken for another volume of the same server: refused
        with pytest.raises(VolumeIdentityError, match="not a brick of volume"):
            verify_volume_identity(mountpoint, other.hosts, other.source(), timeout=TIMEOUT)
    finally:
        unmount(mountpoint, timeout=TIMEOUT)


# --------------------------------------------------------------------------- wipes


def test_fuse_wipe_of_a_hostile_tree(
    matrix_server: GlusterServer,
    matrix_volume: VolumeFactory,
    outside: Path,  # noqa: F811
) -> None:
    volume = matrix_volume()
    before = local_digest(outside)
    with matrix_server.mounted(volume) as root:
        hostile_tree(root, outside)
        stats = wipe_tree(root, workers=8)
        assert os.listdir(root) == []
    assert (stats.files, stats.dirs) == (HOSTILE_FILES, HOSTILE_DIRS)
    assert brick_listing(volume) == []
    assert local_digest(outside) == before


def test_gfapi_wipe_of_a_hostile_tree_as_nobody(
    matrix_server: GlusterServer,
    matrix_volume: VolumeFactory,
    scratch: Path,  # noqa: F811
    outside: Path,  # noqa: F811
) -> None:
    volume = matrix_volume()
    before = local_digest(outside)
    with matrix_server.mounted(volume) as root:
        hostile_tree(root, outside)
    rc, result = run_driver(spec_for(volume, scratch, workers=8), timeout=180)
    assert rc == 0, result
    assert (result["stats"]["files"], result["stats"]["dirs"]) == (HOSTILE_FILES, HOSTILE_DIRS)
    assert brick_listing(volume) == []
    assert local_digest(outside) == before
    assert result["closed"] and result["fini"] == 0
    cli_id = cli.volume_info(volume.hosts, volume.name, timeout=TIMEOUT).volume_id
    assert volume_ids_match(result["volume_id"], cli_id)


# ----------------------------------------------------------------------------- TLS


def _tls_volume(server: GlusterServer, factory: VolumeFactory, pki: Pki) -> GlusterVolumeHandle:
    """A volume with TLS on its I/O path; the bricks' files named as the server sees them."""
    options = {
        k: server.server_path(v) if k.startswith("ssl.") else v
        for k, v in pki.server_options().items()
    }
    return factory(options=options)


def test_tls_volume_mounts_with_our_files_only(
    matrix_server: GlusterServer, matrix_volume: VolumeFactory, mount_root: str
) -> None:
    pki = Pki.create(matrix_server.workdir / f"pki-{os.urandom(4).hex()}")
    volume = _tls_volume(matrix_server, matrix_volume, pki)
    info = cli.volume_info(volume.hosts, volume.name, timeout=TIMEOUT)
    assert tls.needs_tls(info.options)
    source = volume.source(subdir="")
    good, wrong = pki.client_dir("good"), pki.client_dir("wrong", ca="wrong-ca")
    try:
        tls.configure(tls.load(str(wrong)), log_dir=mount_root)
        with pytest.raises(MountError):
            mount_volume(volume.hosts, source, mountpoint_for(mount_root, "pv-wrong"), timeout=20)
        tls.configure(tls.load(str(good)), log_dir=mount_root)
        mountpoint = mountpoint_for(mount_root, "pv-tls")
        mount_volume(volume.hosts, source, mountpoint, timeout=TIMEOUT)
        try:
            verify_volume_identity(mountpoint, volume.hosts, source, timeout=TIMEOUT)
            write(f"{mountpoint}/a/b", b"over TLS")
            assert wipe_tree(mountpoint, workers=2).files == 1
        finally:
            unmount(mountpoint, timeout=TIMEOUT)
    finally:
        tls.configure(None)
    assert brick_listing(volume) == []


# --------------------------------------------------------------- a frozen brick


def _frozen(server: GlusterServer, volume: GlusterVolumeHandle) -> list[int]:
    pids = server.brick_pids(volume.name)
    assert pids and all(pids), pids
    return pids


def test_a_frozen_brick_fails_the_client_check(
    matrix_server: GlusterServer, matrix_volume: VolumeFactory
) -> None:
    """SIGSTOP on the brick: glusterd cannot ask it for its clients. The check must fail
    within its time limit, never report the volume free."""
    volume = matrix_volume()
    pids = _frozen(matrix_server, volume)
    start = time.monotonic()
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        with pytest.raises(GlusterError) as caught:
            client_report(volume.hosts, volume.name, timeout=FROZEN_TIMEOUT)
        elapsed = time.monotonic() - start
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert not isinstance(caught.value, VolumeInUse)
    assert elapsed < 3 * FROZEN_TIMEOUT + 5, elapsed
    # thawed, the volume answers again (glusterd may hold the volume's lock a little longer)
    wait_for(lambda: _answers(volume), timeout=60, what="the volume to answer")


def _answers(volume: GlusterVolumeHandle) -> bool:
    try:
        client_report(volume.hosts, volume.name, timeout=FROZEN_TIMEOUT)
    except GlusterError:
        return False
    return True


def test_a_frozen_brick_fails_the_identity_proof_in_time(
    matrix_server: GlusterServer, matrix_volume: VolumeFactory, mount_root: str
) -> None:
    """A mount whose brick stops answering: the proof gives up after its time limit instead
    of hanging the pass, and the mount is still removed once the brick is back."""
    volume = matrix_volume()
    source = volume.source(subdir="")
    mountpoint = mountpoint_for(mount_root, "pv-frozen")
    mount_volume(volume.hosts, source, mountpoint, timeout=TIMEOUT)
    pids = _frozen(matrix_server, volume)
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises((MountError, GlusterError)):
            verify_volume_identity(mountpoint, volume.hosts, source, timeout=FROZEN_TIMEOUT)
        assert time.monotonic() - start < 3 * FROZEN_TIMEOUT + 5
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        unmount(mountpoint, timeout=TIMEOUT)
