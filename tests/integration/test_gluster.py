"""The gluster modules against a real glusterd and real FUSE mounts (root, /dev/fuse, glusterfs).

Volumes come from the `gluster_volume` factory (tests/sandbox/gluster_fixtures.py) and
are named `grt-...`; each test mounts below its own mount root.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recycler_job.gluster import mountinfo
from recycler_job.gluster.clients import client_report, ensure_not_in_use
from recycler_job.gluster.errors import GlusterError, MountError, VolumeInUse
from recycler_job.gluster.mount import (
    cleanup_stale_mounts,
    mount_volume,
    mountpoint_for,
    unmount,
    verify_mounted,
)
from recycler_job.sources.glusterfs import GlusterSource
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle, connected_clients
from tests.sandbox.gluster_fixtures import VolumeFactory
from tests.sandbox.objects import wait_for

pytestmark = pytest.mark.gluster

TIMEOUT = 60.0
UNRESOLVABLE = "grt-unreachable.invalid"


@pytest.fixture
def mount_root(tmp_path: Path, gluster_server: GlusterServer) -> Iterator[str]:
    """A fresh mount root; whatever a failing test leaves mounted there is unmounted."""
    root = tmp_path / "mounts"
    root.mkdir()
    yield str(root)
    leftovers = gluster_server.unmount_below(root)
    assert leftovers == [], f"test left mounts behind: {leftovers}"


def other_source(name: str) -> GlusterSource:
    return GlusterSource(
        endpoints="glusterfs-cluster", path=name, endpoints_namespace=None, read_only=False
    )


def with_marker(path: str) -> Path:
    """Create directory `path` holding one file; returns the file."""
    os.makedirs(path)
    marker = Path(path) / "do-not-delete.txt"
    marker.write_text("precious")
    return marker


def glusterfs_process(mountpoint: str) -> tuple[int, list[str]] | None:
    """The pid and command line of the glusterfs client serving `mountpoint`, if any."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        argv = [a.decode() for a in raw.split(b"\0") if a]
        if argv and os.path.basename(argv[0]) == "glusterfs" and argv[-1] == mountpoint:
            return int(name), argv
    return None


def glusterfs_argv(mountpoint: str) -> list[str]:
    found = glusterfs_process(mountpoint)
    assert found is not None, f"no glusterfs process for {mountpoint}"
    return found[1]


def exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def mount(volume: GlusterVolumeHandle, mountpoint: str, **kwargs) -> mountinfo.MountEntry:
    return mount_volume(volume.hosts, volume.source(), mountpoint, timeout=TIMEOUT, **kwargs)


# -------------------------------------------------------------------- mount + verify


def test_mount_verify_and_unmount_a_volume(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    gluster_server.write_files(volume, {"a.txt": "A", "d/b.txt": "B"})
    mountpoint = mountpoint_for(mount_root, "pv-root")

    entry = mount(volume, mountpoint)

    assert entry.fstype == "fuse.glusterfs"
    assert entry.mount_point == mountpoint
    assert entry.source == f"{volume.hosts[0]}:/{volume.name}"
    assert sorted(os.listdir(mountpoint)) == ["a.txt", "d"]
    assert Path(mountpoint, "d", "b.txt").read_text() == "B"
    assert os.stat(mountpoint).st_dev != os.stat(mount_root).st_dev
    again = verify_mounted(mountpoint, volume.hosts, volume.source())
    assert again.mount_id == entry.mount_id

    unmount(mountpoint, timeout=TIMEOUT)
    assert mountinfo.find_mount(mountpoint) is None
    assert not os.path.exists(mountpoint)


def test_mount_a_subdirectory(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume(subdir="pv/data")
    gluster_server.write_files(volume, {"pv/data/in.txt": "in", "outside.txt": "out"})
    mountpoint = mountpoint_for(mount_root, "pv-sub")

    entry = mount(volume, mountpoint)

    # mountinfo shows the subdirectory in the source; the mount's root field stays "/"
    assert entry.source == f"{volume.hosts[0]}:/{volume.name}/pv/data"
    assert entry.root == "/"
    assert os.listdir(mountpoint) == ["in.txt"]
    with pytest.raises(MountError, match="expected"):
        verify_mounted(mountpoint, volume.hosts, volume.source(subdir=""))
    unmount(mountpoint, timeout=TIMEOUT)


def test_a_file_written_through_the_mount_lands_on_the_brick(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    gluster_server.write_files(volume, {"by-harness.txt": b"harness"})
    mountpoint = mountpoint_for(mount_root, "pv-brick")
    mount(volume, mountpoint)
    Path(mountpoint, "by-mount.txt").write_text("mounted")
    unmount(mountpoint, timeout=TIMEOUT)

    (brick,) = gluster_server.brick_paths(volume)
    assert Path(brick, "by-harness.txt").read_bytes() == b"harness"
    assert Path(brick, "by-mount.txt").read_text() == "mounted"


def test_verify_tells_read_only_from_read_write(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    mountpoint = gluster_server.fuse_mount(
        volume, mountpoint_for(mount_root, "pv-ro"), read_only=True
    )
    with pytest.raises(OSError) as caught:
        Path(mountpoint, "x").write_text("x")
    assert caught.value.errno == errno.EROFS
    entry = verify_mounted(mountpoint, volume.hosts, volume.source(), read_only=True)
    assert entry.read_only
    with pytest.raises(MountError, match="read-only"):
        verify_mounted(mountpoint, volume.hosts, volume.source(), read_only=False)
    gluster_server.fuse_unmount(mountpoint)


def test_verify_refuses_another_volume_or_other_hosts(
    gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    other = gluster_volume()
    mountpoint = mountpoint_for(mount_root, "pv-verify")
    mount(volume, mountpoint)
    with pytest.raises(MountError, match="expected"):
        verify_mounted(mountpoint, other.hosts, other.source())
    with pytest.raises(MountError, match="expected"):
        verify_mounted(mountpoint, ["10.9.9.9"], volume.source())
    unmount(mountpoint, timeout=TIMEOUT)


def test_verify_on_an_unmounted_directory(mount_root: str, gluster_volume: VolumeFactory) -> None:
    volume = gluster_volume()
    mountpoint = mountpoint_for(mount_root, "pv-plain")
    marker = with_marker(mountpoint)
    with pytest.raises(MountError, match="nothing is mounted"):
        verify_mounted(mountpoint, volume.hosts, volume.source())
    assert marker.read_text() == "precious"


def test_three_hosts_reach_mount_glusterfs(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    hosts = [volume.hosts[0], "127.0.0.1", gluster_server.host]
    assert len(set(hosts)) == 3
    mountpoint = mountpoint_for(mount_root, "pv-hosts")

    entry = mount_volume(hosts, volume.source(), mountpoint, timeout=TIMEOUT)

    argv = glusterfs_argv(mountpoint)
    servers = [a.split("=", 1)[1] for a in argv if a.startswith("--volfile-server=")]
    assert servers == hosts  # the first, then both backups, in order
    assert entry.source == f"{hosts[0]}:/{volume.name}"  # mountinfo: the first host only
    unmount(mountpoint, timeout=TIMEOUT)


def test_unreachable_first_host_falls_back_to_a_backup(
    gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    hosts = [UNRESOLVABLE, *volume.hosts]
    mountpoint = mountpoint_for(mount_root, "pv-backup")

    entry = mount_volume(hosts, volume.source(), mountpoint, timeout=TIMEOUT)

    # the volume file came from the backup, yet mountinfo names the first host
    assert entry.source == f"{UNRESOLVABLE}:/{volume.name}"
    verify_mounted(mountpoint, hosts, volume.source())
    unmount(mountpoint, timeout=TIMEOUT)


# ------------------------------------------------------------------- failed mounts


@pytest.mark.parametrize(
    ("hosts", "path"),
    [
        (None, "grt-no-such-volume"),
        ([UNRESOLVABLE], None),
        (["192.0.2.250"], None),  # TEST-NET: nothing answers there
        (None, "{volume}/no/such/subdir"),  # mount.glusterfs sometimes exits 0 for this
    ],
    ids=["unknown-volume", "unresolvable-host", "unreachable-host", "missing-subdir"],
)
def test_a_failed_mount_raises_and_leaves_the_directory_alone(
    gluster_volume: VolumeFactory,
    mount_root: str,
    hosts: list[str] | None,
    path: str | None,
) -> None:
    volume = gluster_volume()
    source = other_source(path.format(volume=volume.name) if path else volume.name)
    mountpoint = mountpoint_for(mount_root, "pv-fail")
    marker = with_marker(mountpoint)

    with pytest.raises(MountError):
        mount_volume(hosts or volume.hosts, source, mountpoint, timeout=TIMEOUT)

    assert mountinfo.find_mount(mountpoint) is None
    assert marker.read_text() == "precious"
    assert os.listdir(mountpoint) == [marker.name]


def test_a_failed_mount_removes_the_mountpoint_it_created(
    gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    mountpoint = mountpoint_for(mount_root, "pv-fail-new")
    with pytest.raises(MountError):
        mount_volume(volume.hosts, other_source("grt-no-such-volume"), mountpoint, timeout=TIMEOUT)
    assert not os.path.exists(mountpoint)


def test_mount_exiting_zero_without_mounting_is_caught(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gluster_volume: VolumeFactory,
    mount_root: str,
) -> None:
    volume = gluster_volume()
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    fake = fake_bin / "mount"
    fake.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/bash
            echo "$*" > {tmp_path / "fake-mount-args"}
            exit 0
            """
        )
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    mountpoint = mountpoint_for(mount_root, "pv-fake")
    marker = with_marker(mountpoint)

    with pytest.raises(MountError, match="exited 0 but: nothing is mounted"):
        mount(volume, mountpoint)

    assert (tmp_path / "fake-mount-args").read_text().split()[-1] == mountpoint
    assert mountinfo.find_mount(mountpoint) is None
    assert marker.read_text() == "precious"


# -------------------------------------------------------------------- client check


def test_a_second_client_makes_the_volume_in_use(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    mountpoint = mountpoint_for(mount_root, "pv-busy")
    assert connected_clients(volume.hosts, volume.name, timeout=TIMEOUT) == []

    with gluster_server.mounted(volume):
        clients = connected_clients(volume.hosts, volume.name, timeout=TIMEOUT)
        assert clients != []
        with pytest.raises(VolumeInUse, match="1 fuse client"):
            ensure_not_in_use(volume.hosts, volume.name, timeout=TIMEOUT)

    wait_for(
        lambda: not connected_clients(volume.hosts, volume.name, timeout=TIMEOUT),
        timeout=30,
        what="the volume's clients to go",
    )
    ensure_not_in_use(volume.hosts, volume.name, timeout=TIMEOUT)
    mount(volume, mountpoint)
    # our own mount counts as a client too: that is why the check runs before mounting
    assert connected_clients(volume.hosts, volume.name, timeout=TIMEOUT) != []
    unmount(mountpoint, timeout=TIMEOUT)


def test_the_self_heal_daemon_is_not_a_client(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume(replica=2)
    gluster_server.wait_connections(volume.name, 1)  # glustershd on both bricks

    report = client_report(volume.hosts, volume.name, timeout=TIMEOUT)
    assert all(brick.connections for brick in report.bricks)
    assert report.kinds == {"glustershd": 1}
    assert connected_clients(volume.hosts, volume.name, timeout=TIMEOUT) == []

    with gluster_server.mounted(volume), pytest.raises(VolumeInUse, match="1 fuse client"):
        ensure_not_in_use(volume.hosts, volume.name, timeout=TIMEOUT)


def test_an_unknown_volume_is_an_error_not_a_pass(gluster_volume: VolumeFactory) -> None:
    volume = gluster_volume()
    with pytest.raises(GlusterError, match="does not exist") as caught:
        connected_clients(volume.hosts, "grt-no-such-volume", timeout=TIMEOUT)
    assert not isinstance(caught.value, VolumeInUse)


def test_a_stopped_volume_is_an_error(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory
) -> None:
    volume = gluster_volume()
    gluster_server.stop_volume(volume)
    with pytest.raises(GlusterError, match="not started"):
        connected_clients(volume.hosts, volume.name, timeout=TIMEOUT)


def test_unreachable_glusterd_is_an_error_and_hosts_are_tried_in_order(
    gluster_volume: VolumeFactory,
) -> None:
    volume = gluster_volume()
    with pytest.raises(GlusterError, match="no gluster host answered") as caught:
        connected_clients([UNRESOLVABLE, "192.0.2.250"], volume.name, timeout=3)
    assert UNRESOLVABLE in str(caught.value)
    assert "192.0.2.250" in str(caught.value)
    hosts = [UNRESOLVABLE, *volume.hosts]
    assert connected_clients(hosts, volume.name, timeout=TIMEOUT) == []


# ------------------------------------------------------------- unmount and cleanup


def test_unmount_of_a_busy_mount_falls_back_to_lazy(
    gluster_volume: VolumeFactory, mount_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    volume = gluster_volume()
    mountpoint = mountpoint_for(mount_root, "pv-cwd")
    mount(volume, mountpoint)
    squatter = subprocess.Popen(["sleep", "300"], cwd=mountpoint)
    try:
        with caplog.at_level(logging.WARNING, logger="recycler_job.gluster.mount"):
            unmount(mountpoint, timeout=TIMEOUT)
        assert "detaching it lazily" in caplog.text
        assert mountinfo.find_mount(mountpoint) is None
        assert not os.path.exists(mountpoint)
        assert squatter.poll() is None  # the process was not killed to unmount
    finally:
        squatter.kill()
        squatter.wait()


def test_unmount_when_not_mounted_never_raises(mount_root: str) -> None:
    mountpoint = mountpoint_for(mount_root, "pv-never")
    marker = with_marker(mountpoint)
    unmount(mountpoint, timeout=TIMEOUT)
    assert marker.read_text() == "precious"
    unmount(mountpoint_for(mount_root, "pv-missing"), timeout=TIMEOUT)


def test_a_stopped_volume_fails_verification_and_still_unmounts(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    gluster_server.write_files(volume, {"a.txt": "A"})
    mountpoint = mountpoint_for(mount_root, "pv-stopped")
    mount(volume, mountpoint)
    gluster_server.stop_volume(volume)

    with pytest.raises(OSError) as caught:
        os.listdir(mountpoint)
    assert caught.value.errno == errno.ENOTCONN
    with pytest.raises(MountError):
        verify_mounted(mountpoint, volume.hosts, volume.source(), timeout=10)

    unmount(mountpoint, timeout=TIMEOUT)
    assert mountinfo.find_mount(mountpoint) is None


def test_cleanup_of_stale_mounts(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    gluster_server.write_files(volume, {"data.txt": "keep me"})
    left_by_us = mountpoint_for(mount_root, "pv-a")
    mount(volume, left_by_us)
    left_by_other = gluster_server.fuse_mount(volume, os.path.join(mount_root, "pv-b"))
    busy = mountpoint_for(mount_root, "pv-busy")
    mount(volume, busy)
    squatter = subprocess.Popen(["sleep", "300"], cwd=busy)
    empty = os.path.join(mount_root, "pv-c")
    os.mkdir(empty)
    full = os.path.join(mount_root, "pv-d")
    marker = with_marker(full)
    try:
        cleaned = cleanup_stale_mounts(mount_root)
    finally:
        squatter.kill()
        squatter.wait()

    # A gluster mount without our record is someone else's: reported and left mounted.
    assert sorted(cleaned) == sorted([left_by_us, busy, empty])
    assert [e.mount_point for e in mountinfo.mounts_below(mount_root)] == [left_by_other]
    gluster_server.fuse_unmount(left_by_other)
    assert sorted(os.listdir(mount_root)) == ["pv-d"]
    assert marker.read_text() == "precious"
    (brick,) = gluster_server.brick_paths(volume)
    assert Path(brick, "data.txt").read_text() == "keep me"  # nothing was removed inside


def test_unmount_leaves_every_mount_it_did_not_make(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    theirs = gluster_server.fuse_mount(volume, mountpoint_for(mount_root, "pv-theirs"))
    ours = mountpoint_for(mount_root, "pv-ours")
    entry = mount(volume, ours)
    try:
        # no record of ours, or another mount id: left mounted
        unmount(theirs, timeout=TIMEOUT)
        unmount(theirs, timeout=TIMEOUT, mount_id=entry.mount_id)
        assert mountinfo.find_mount(theirs) is not None
        # something stacked on top of our mount: neither is touched
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", ours], check=True)
        with pytest.raises(MountError, match="on top of ours"):
            unmount(ours, timeout=TIMEOUT, mount_id=entry.mount_id)
        top = mountinfo.find_mount(ours)
        assert top is not None and top.fstype == "tmpfs"
        subprocess.run(["umount", ours], check=True)
        unmount(ours, timeout=TIMEOUT, mount_id=entry.mount_id)
        assert mountinfo.find_mount(ours) is None
    finally:
        gluster_server.fuse_unmount(theirs)
        gluster_server.unmount_below(mount_root)


def test_a_mount_whose_client_died_is_refused_and_cleaned_up(
    gluster_volume: VolumeFactory, mount_root: str
) -> None:
    volume = gluster_volume()
    mountpoint = mountpoint_for(mount_root, "pv-dead")
    mount(volume, mountpoint)
    found = glusterfs_process(mountpoint)
    assert found is not None
    pid = found[0]
    os.kill(pid, signal.SIGKILL)  # the client process our mount started
    wait_for(lambda: exited(pid), timeout=30, what=f"process {pid} to exit")

    with pytest.raises(MountError):
        verify_mounted(mountpoint, volume.hosts, volume.source(), timeout=10)
    assert mountinfo.find_mount(mountpoint) is not None  # a killed run leaves this behind

    assert cleanup_stale_mounts(mount_root) == [mountpoint]
    assert mountinfo.find_mount(mountpoint) is None
    assert os.listdir(mount_root) == []


def test_the_sandbox_runs_gluster_in_a_thread_while_a_test_changes_the_environment(
    gluster_server: GlusterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The volume reaper runs `gluster` in its own thread while the next test may set PATH
    (the unit tests' fake binaries): no start of a child may fail for it (it did, with
    `[Errno 14] Bad address`, when the child read the environment being changed)."""
    failures: list[OSError] = []
    runs = 0
    done = threading.Event()

    def run_gluster() -> None:
        nonlocal runs
        while not done.is_set():
            try:
                gluster_server.gluster("--version")
            except OSError as exc:
                failures.append(exc)
            runs += 1

    runner = threading.Thread(target=run_gluster)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        i = 0
        while runs < 200 and time.monotonic() < deadline:
            i += 1
            monkeypatch.setenv(f"GRT_CHURN_{i % 40}", "x" * (i % 300))
            if i % 7 == 0:
                monkeypatch.delenv(f"GRT_CHURN_{(i * 3) % 40}", raising=False)
    finally:
        done.set()
        runner.join()
    assert runs >= 200, runs  # enough starts for the old race to show (1 in 20 failed)
    assert failures == [], runs


def test_the_sandbox_runs_the_real_gluster_while_a_test_puts_a_fake_first_on_path(
    gluster_server: GlusterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit tests of `gluster/` put a fake `gluster` first on PATH while the volume
    reaper may still stop an earlier test's volumes: the sandbox must run the real one (it
    once ran the fake, which recorded the reaper's `volume stop` and failed it)."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    fake = fake_bin / "gluster"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "fake-calls"}\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    assert shutil.which("gluster") == str(fake)  # what a test's own child would run

    result = gluster_server.gluster("--version")

    assert result.returncode == 0 and "glusterfs" in result.stdout, result
    assert not (tmp_path / "fake-calls").exists()
