"""The wipe engine on a real gluster FUSE mount (one-brick scratch volume per test, made by the
shared harness of tests/sandbox/gluster.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from recycler_job.gluster import cli
from recycler_job.gluster.trash import Trash
from recycler_job.wipe.engine import WipeError, WipeInterrupted
from recycler_job.wipe.fuse import verify_empty, wipe_tree
from recycler_job.wipe.trash import TRASH_DIR
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.gluster_fixtures import VolumeFactory

pytestmark = pytest.mark.gluster


@dataclass
class Volume:
    """A scratch volume of the shared harness, FUSE-mounted for the wipe."""

    server: GlusterServer
    handle: GlusterVolumeHandle
    mnt: Path

    @property
    def name(self) -> str:
        return self.handle.name

    @property
    def brick(self) -> Path:
        return Path(self.handle.bricks[0])

    def set(self, key: str, value: str) -> None:
        self.server.gluster("volume", "set", self.name, key, value)

    def stop_force(self) -> None:
        self.server.stop_volume(self.handle)

    def brick_listing(self) -> list[str]:
        """Everything on the brick except gluster's own .glusterfs metadata."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.brick):
            if Path(dirpath) == self.brick and ".glusterfs" in dirnames:
                dirnames.remove(".glusterfs")
            out += [str((Path(dirpath) / n).relative_to(self.brick)) for n in dirnames + filenames]
        return sorted(out)


@pytest.fixture
def volume(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, tmp_path: Path
) -> Iterator[Volume]:
    handle = gluster_volume()
    mnt = Path(gluster_server.fuse_mount(handle, tmp_path / "mnt"))
    try:
        yield Volume(gluster_server, handle, mnt)
    finally:
        gluster_server.fuse_unmount(mnt)


def write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def digest(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(path))
            if stat.S_ISREG(st.st_mode):
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = oct(st.st_mode)
    return out


def make_chain(root: Path, levels: int) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(levels):
            os.mkdir("d" * 30, dir_fd=fd)
            nfd = os.open("d" * 30, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            os.close(os.open(f".f{level}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def test_dotfiles_deep_tree_read_only_dirs(volume: Volume) -> None:
    root = volume.mnt
    write(root / ".hidden", b"12345")
    write(root / ".config" / ".inner", b"1")
    write(root / "-rf", b"1")
    write(root / "new\nline", b"1")
    write(root / "ro" / "sub" / "f", b"1")
    (root / "ro" / "sub").chmod(0o500)
    (root / "ro").chmod(0o000)
    write(root / "rofile", b"1")
    (root / "rofile").chmod(0o400)
    make_chain(root, 120)
    stats = wipe_tree(str(root), workers=8)
    assert os.listdir(root) == []
    assert stats.files == 6 + 120
    assert stats.dirs == 3 + 120
    assert stats.bytes == 5 + 5
    assert volume.brick_listing() == []


def test_symlinks_outside_survive(volume: Volume, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "file", b"precious")
    write(outside / "dir" / "a", b"a" * 4096)
    before = digest(outside)
    root = volume.mnt
    os.symlink(outside, root / "to-outside")
    os.symlink(outside / "file", root / "to-file")
    write(root / "in" / "x")
    os.symlink(outside / "dir", root / "in" / "to-dir")
    os.symlink("/", root / "in" / "slash")
    os.symlink("..", root / "in" / "up")
    stats = wipe_tree(str(root), workers=8)
    assert os.listdir(root) == []
    assert digest(outside) == before
    assert stats.files == 6


def test_many_files_in_parallel(volume: Volume) -> None:
    root = volume.mnt

    def fill(d: int) -> None:
        for i in range(100):
            write(root / f"d{d:03d}" / f"f{i}", b"abc")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(fill, range(30)))
    for i in range(600):
        write(root / "flat" / f"f{i}", b"z")
    stats = wipe_tree(str(root), workers=12)
    assert (stats.files, stats.dirs, stats.bytes) == (3600, 31, 3000 * 3 + 600)
    assert os.listdir(root) == []
    assert volume.brick_listing() == []


def test_trashcan_fresh_volume_has_none(volume: Volume) -> None:
    """features.trash never enabled: there is no .trashcan at all."""
    assert not (volume.mnt / TRASH_DIR).exists()
    write(volume.mnt / "f")
    wipe_tree(str(volume.mnt))
    assert os.listdir(volume.mnt) == []


@pytest.mark.parametrize("internal_op", ["off", "on"])
def test_trashcan_with_trash_on(volume: Volume, internal_op: str) -> None:
    """With features.trash on, every unlink moves the file into .trashcan; the wipe must still
    leave nothing of the tenant: only the (undeletable) empty .trashcan[/internal_op]."""
    volume.set("features.trash", "on")
    volume.set("features.trash-internal-op", internal_op)
    root = volume.mnt
    for _ in range(50):
        if (root / TRASH_DIR).is_dir():
            break
        time.sleep(0.1)
    write(root / "deleted-by-tenant", b"old secret")
    os.unlink(root / "deleted-by-tenant")  # now in .trashcan
    write(root / "a" / "b" / "c", b"secret")
    write(root / ".dot", b"s")
    assert any(n.startswith("deleted-by-tenant") for n in os.listdir(root / TRASH_DIR))
    # The server refuses to remove .trashcan itself.
    with pytest.raises(PermissionError):
        os.rmdir(root / TRASH_DIR)

    stats = wipe_tree(str(root), workers=8)
    assert os.listdir(root) == [TRASH_DIR]
    inside = os.listdir(root / TRASH_DIR)
    assert inside == ([] if internal_op == "off" else ["internal_op"])
    expected_brick = [TRASH_DIR] + ([f"{TRASH_DIR}/internal_op"] if internal_op == "on" else [])
    assert volume.brick_listing() == expected_brick
    assert stats.files >= 3 + 1  # moved-then-purged files are counted twice
    verify_empty(str(root))


def test_trashcan_after_trash_turned_off(volume: Volume) -> None:
    """.trashcan outlives `features.trash off` and still cannot be removed; internal_op can."""
    volume.set("features.trash", "on")
    volume.set("features.trash-internal-op", "on")
    root = volume.mnt
    write(root / "x", b"1")
    os.unlink(root / "x")
    volume.set("features.trash-internal-op", "off")
    volume.set("features.trash", "off")
    write(root / "y", b"2")
    wipe_tree(str(root))
    assert os.listdir(root) == [TRASH_DIR]
    assert os.listdir(root / TRASH_DIR) == []
    assert volume.brick_listing() == [TRASH_DIR]


def test_disconnected_mount_fails_promptly(volume: Volume) -> None:
    """Stop the volume (force) in the middle of a wipe: ENOTCONN must surface as WipeError."""
    root = volume.mnt

    def fill(d: int) -> None:
        for i in range(50):
            write(root / f"d{d:02d}" / f"f{i}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(fill, range(40)))

    calls = 0
    lock = threading.Lock()
    stopped = threading.Event()
    stopped_at: list[float] = []

    def stop_volume() -> None:
        try:
            volume.stop_force()
        finally:
            stopped_at.append(time.monotonic())
            stopped.set()

    def stop_flag() -> bool:
        """Never asks to stop; after 200 entries, holds every worker until the volume is down."""
        nonlocal calls
        with lock:
            calls += 1
            if calls == 200:
                threading.Thread(target=stop_volume, daemon=True).start()
        if calls >= 200:
            stopped.wait(60)
        return False

    with pytest.raises(WipeError) as info:
        wipe_tree(str(root), workers=8, stop=stop_flag)
    raised_at = time.monotonic()
    assert stopped_at, "the volume was never stopped"
    assert not isinstance(info.value, WipeInterrupted)
    assert info.value.errno in (errno.ENOTCONN, errno.EIO, errno.ESTALE), info.value
    assert raised_at - stopped_at[0] < 15, raised_at - stopped_at[0]
    assert info.value.stats is not None and 0 < info.value.stats.files < 2000


def test_stop_event_on_gluster(volume: Volume) -> None:
    root = volume.mnt
    for i in range(300):
        write(root / "d" / f"f{i}")
    ev = threading.Event()
    seen = 0

    def stop() -> bool:
        nonlocal seen
        seen += 1
        if seen > 20:
            ev.set()
        return ev.is_set()

    with pytest.raises(WipeInterrupted):
        wipe_tree(str(root), workers=4, stop=stop)
    assert len(os.listdir(root / "d")) > 200


def test_renamed_trash_is_emptied_and_kept(volume: Volume) -> None:
    """features.trash-dir .Trash: the trash gluster refuses to remove is `.Trash`; the wipe
    takes the names from `volume info` (gluster/trash.py) and empties it last."""
    volume.set("features.trash", "on")
    volume.set("features.trash-dir", ".Trash")
    root = volume.mnt
    for _ in range(50):
        if (root / ".Trash").is_dir():
            break
        time.sleep(0.1)
    write(root / "deleted-by-tenant", b"old secret")
    os.unlink(root / "deleted-by-tenant")
    write(root / "a" / "b", b"secret")
    info = cli.volume_info(volume.handle.hosts, volume.name, timeout=60)
    wipe_tree(str(root), trash=Trash.of(info).root_names)
    assert volume.brick_listing() == [".Trash"]


def test_old_tenants_xattrs_and_acls_of_the_root_are_removed(
    volume: Volume, tmp_path: Path
) -> None:
    """Set through an `acl` mount, removed through the recycler's plain one; gluster's own
    xattrs stay on the brick."""
    with volume.server.mounted(volume.handle, tmp_path / "acl", options=["acl"]) as other:
        os.setxattr(other, "user.secret", b"old tenant")
        subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx", other], check=True)
        subprocess.run(["setfacl", "-m", "u:4321:rx", other], check=True)
        write(Path(other) / "f")
    wipe_tree(str(volume.mnt))
    on_brick = set(os.listxattr(volume.brick))
    assert not [n for n in on_brick if n.startswith(("user.", "system.posix_acl"))], on_brick
    assert {"trusted.gfid", "trusted.glusterfs.volume-id"} <= on_brick
