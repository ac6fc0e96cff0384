"""mount.py without a gluster server: naming, verification, a fake `mount`, cleanup."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from recycler_job.gluster import probe
from recycler_job.gluster.errors import GlusterError, MountError
from recycler_job.gluster.mount import (
    cleanup_stale_mounts,
    mount_volume,
    mountpoint_for,
    unmount,
    verify_mounted,
)
from recycler_job.gluster.mountinfo import MountEntry
from recycler_job.gluster.records import RECORD_DIR
from tests.unit.gluster.fakes import entry, fake_mount, gone, source, stat_result, write_script

# --------------------------------------------------------------------------------------
# mountpoint naming


def test_mountpoint_for_a_pv_name(tmp_path: Path) -> None:
    assert mountpoint_for("/var/lib/recycler/", "pv-a.b-1") == "/var/lib/recycler/pv-a.b-1"
    assert mountpoint_for("/var/lib/../lib/recycler", "pv") == "/var/lib/recycler/pv"


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../etc",
        "a/b",
        "/abs",
        "pv/../../x",
        "PV-Upper",
        "-pv",
        "pv-",
        "a..b",
        "pv\x00",
        "pv name",
        "x" * 254,
    ],
)
def test_mountpoint_for_refuses_names_that_are_not_dns_subdomains(name: str) -> None:
    with pytest.raises(MountError):
        mountpoint_for("/var/lib/recycler", name)


# --------------------------------------------------------------------------------------
# verification


@pytest.fixture
def mounted_world(monkeypatch: pytest.MonkeyPatch):
    """verify_mounted against a made-up mountinfo entry and stat results."""
    world = {
        "entry": entry(mount_point="/var/lib/recycler/pv-a"),
        "stat": stat_result(dev=os.makedev(0, 51), ino=1),
        "parent": stat_result(dev=os.makedev(259, 2), ino=1234),
    }

    def fake_find(path: str) -> MountEntry | None:
        assert path == "/var/lib/recycler/pv-a"
        return world["entry"]  # type: ignore[return-value]

    def fake_lstat(path: str, timeout: float) -> os.stat_result:
        return world["parent" if path == "/var/lib/recycler" else "stat"]  # type: ignore[return-value]

    monkeypatch.setattr(probe, "find_mount", fake_find)

    def fake_statvfs(path: str, timeout: float) -> os.statvfs_result:
        if world.get("dead"):
            raise MountError(f"{path}: Transport endpoint is not connected")
        return os.statvfs("/")

    monkeypatch.setattr(probe, "lstat", fake_lstat)
    monkeypatch.setattr(probe, "statvfs", fake_statvfs)
    monkeypatch.setattr(probe, "canonical", lambda p: p)
    return world


def test_verify_accepts_the_right_mount(mounted_world: dict[str, object]) -> None:
    found = verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.9", "10.0.0.5"], source())
    assert found is mounted_world["entry"]
    verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.5"], source(), read_only=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entry": None}, "nothing is mounted"),
        ({"entry": entry(fstype="nfs4")}, "not fuse.glusterfs"),
        ({"entry": entry(source="10.0.0.5:/vol_b")}, "expected 10.0.0.5:/vol_a"),
        ({"entry": entry(source="10.0.0.6:/vol_a")}, "expected"),
        ({"entry": entry(source="10.0.0.5:/vol_a/sub")}, "expected"),
        ({"entry": entry(source="10.0.0.5:vol_a")}, "expected"),
        ({"entry": entry(root="/sub")}, "not its root"),
        ({"entry": entry(mount_options=("ro",))}, "read-only"),
        ({"stat": stat_result(dev=os.makedev(259, 2), ino=1)}, "same device"),
        ({"stat": stat_result(dev=os.makedev(0, 52), ino=1)}, "mountinfo says 0:51"),
        ({"stat": stat_result(dev=os.makedev(0, 51), ino=77)}, "root inode"),
        ({"stat": stat_result(dev=os.makedev(0, 51), ino=1, mode=stat.S_IFLNK)}, "not a dir"),
        ({"dead": True}, "not connected"),
    ],
)
def test_verify_refuses(
    mounted_world: dict[str, object], change: dict[str, object], message: str
) -> None:
    mounted_world.update(change)
    with pytest.raises(MountError, match=message):
        verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.5"], source(), read_only=False)


def test_verify_read_only_wants_ro(mounted_world: dict[str, object]) -> None:
    with pytest.raises(MountError, match="read-write"):
        verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.5"], source(), read_only=True)


def test_verify_on_a_plain_directory(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "keep.txt").write_text("data")
    with pytest.raises(MountError, match="nothing is mounted"):
        verify_mounted(str(plain), ["10.0.0.5"], source())
    assert (plain / "keep.txt").read_text() == "data"


# --------------------------------------------------------------------------------------
# mount_volume with a fake `mount` (no root needed)


def test_mount_exiting_zero_without_mounting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    mountpoint = tmp_path / "root" / "pv-a"
    mountpoint.mkdir(parents=True)
    (mountpoint / "keep.txt").write_text("data")
    with pytest.raises(MountError, match="exited 0 but: nothing is mounted"):
        mount_volume(["h1", "h2", "h3"], source("vol_a/sub"), str(mountpoint), timeout=5)
    assert (mountpoint / "keep.txt").read_text() == "data"
    assert calls.read_text().split() == [
        "-t",
        "glusterfs",
        "-o",
        # the md-cache option: one brick fop per removed file (gluster/client_cache.py)
        "backup-volfile-servers=h2:h3,xlator-option=vol_a-md-cache.md-cache-timeout=600",
        "h1:/vol_a/sub",
        str(mountpoint),
    ]


def test_failed_mount_removes_the_directory_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mount(tmp_path, monkeypatch, 'echo "Mounting glusterfs on $6 failed." >&2\nexit 1\n')
    mountpoint = tmp_path / "root" / "pv-a"
    with pytest.raises(MountError, match=r"failed \(exit 1\): Mounting glusterfs on .* failed"):
        mount_volume(["h1"], source(), str(mountpoint), timeout=5)
    assert not mountpoint.exists()
    assert (tmp_path / "root").is_dir()


def test_mount_timeout_kills_the_whole_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    fake_mount(tmp_path, monkeypatch, f"sleep 60 &\necho $! > {pid_file}\nsleep 60\n")
    mountpoint = tmp_path / "root" / "pv-a"
    started = time.monotonic()
    with pytest.raises(MountError, match="timed out after 1s"):
        mount_volume(["h1"], source(), str(mountpoint), timeout=1)
    assert time.monotonic() - started < 10
    assert gone(int(pid_file.read_text()))
    assert not mountpoint.exists()


def test_mount_refuses_a_mountpoint_that_is_already_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    monkeypatch.setattr(probe, "find_mount", lambda path: entry(mount_point=path))
    with pytest.raises(MountError, match="already a mountpoint"):
        mount_volume(["h1"], source(), str(tmp_path / "pv-a"), timeout=5)
    assert not calls.exists()


def test_mount_refuses_a_mountpoint_that_is_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "pv-a").symlink_to(target)
    with pytest.raises(MountError, match="not a directory"):
        mount_volume(["h1"], source(), str(tmp_path / "root" / "pv-a"), timeout=5)
    assert not calls.exists()
    assert target.is_dir()


# --------------------------------------------------------------------------------------
# unmount and cleanup of things that are not mounted


def test_unmount_of_what_is_not_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    umount_log = tmp_path / "umount.log"
    write_script(tmp_path / "bin", "umount", f'echo "$*" >> {umount_log}\nexit 32\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("data")
    unmount(str(empty), timeout=5)
    unmount(str(full), timeout=5)
    unmount(str(tmp_path / "missing"), timeout=5)
    assert not empty.exists()
    assert (full / "keep.txt").read_text() == "data"
    assert not umount_log.exists()  # nothing was mounted: umount never ran


def test_cleanup_without_mounts_removes_only_empty_directories(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "mounts"
    (root / "empty-1").mkdir(parents=True)
    (root / "empty-2").mkdir()
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("data")
    (root / "file").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    cleaned = cleanup_stale_mounts(str(root))
    assert cleaned == [str(root / "empty-1"), str(root / "empty-2")]
    assert (root / "full" / "keep.txt").read_text() == "data"
    assert (root / "file").exists()
    assert (root / "link").is_symlink()
    assert outside.is_dir()
    assert f"left {root / 'full'} in place: the directory is not empty" in caplog.text


def test_cleanup_of_a_missing_root_and_of_slash(tmp_path: Path) -> None:
    assert cleanup_stale_mounts(str(tmp_path / "missing")) == []
    with pytest.raises(GlusterError):
        cleanup_stale_mounts("/")


def test_a_mount_record_is_written_before_mount_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    record_dir = tmp_path / "root" / RECORD_DIR
    write_script(tmp_path / "bin", "mount", f"cat {record_dir}/pv-a > {seen}\nexit 32\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with pytest.raises(MountError):
        mount_volume(["h1"], source(), str(tmp_path / "root" / "pv-a"), timeout=5)
    assert '"source": "h1:/vol_a"' in seen.read_text()
    assert not record_dir.exists()  # dropped again with the failed mount
