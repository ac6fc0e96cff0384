"""The wipe engine on a local filesystem: what it removes, what it must never touch."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recycler_job.config import Config
from recycler_job.wipe import engine as wipe_engine
from recycler_job.wipe import fuse as fuse_wipe
from recycler_job.wipe import gfapi_handles
from recycler_job.wipe.engine import WipeError, WipeInterrupted, WipeNotEmpty
from recycler_job.wipe.fuse import (
    WipeCrossDevice,
    WipeWrongRoot,
    open_verified_root,
    reset_root,
    verify_empty,
    wipe_tree,
)

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
IN_CI = os.environ.get("CI") == "true"


def need_root(why: str) -> None:
    if IS_ROOT:
        return
    if IN_CI:
        pytest.fail(f"CI=true but not root: {why}")
    pytest.skip(f"needs root: {why}")


def digest(path: Path) -> dict[str, str]:
    """Everything below `path` (not following symlinks): relative name -> type and content."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(path))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = f"file:{oct(st.st_mode)}:" + hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = f"mode:{oct(st.st_mode)}"
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A tree next to the root that must survive every wipe byte for byte."""
    o = tmp_path / "outside"
    (o / "dir" / "sub").mkdir(parents=True)
    (o / "file").write_bytes(b"precious\n")
    (o / "dir" / "a").write_bytes(b"a" * 1000)
    (o / "dir" / "sub" / ".b").write_bytes(b"b")
    return o


def listing(path: Path) -> list[str]:
    return sorted(os.listdir(path))


def write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---- what gets removed --------------------------------------------------------------------


def test_dotfiles_are_removed(root: Path) -> None:
    write(root / ".hidden")
    write(root / "..double")
    write(root / "...")
    write(root / ".dir" / ".inner")
    (root / ".emptydir").mkdir()
    stats = wipe_tree(str(root), workers=2)
    assert listing(root) == []
    assert (stats.files, stats.dirs) == (4, 2)


def test_counts_files_dirs_and_bytes(root: Path) -> None:
    write(root / "a", b"12345")
    write(root / "d1" / "b", b"x" * 1000)
    write(root / "d1" / "d2" / "c", b"")
    (root / "d1" / "d2" / "empty").mkdir()
    os.link(root / "a", root / "d1" / "hardlink")  # each name counts, with its size
    os.symlink("a", root / "rel-link")
    before = time.monotonic()
    stats = wipe_tree(str(root), workers=3)
    elapsed = time.monotonic() - before
    assert stats.files == 5
    assert stats.dirs == 3
    assert stats.bytes == 5 + 1000 + 0 + 5 + len("a")
    assert 0 < stats.seconds <= elapsed  # the wipe's own duration, on the monotonic clock
    assert listing(root) == []


def test_root_itself_is_kept(root: Path) -> None:
    write(root / "f")
    before = root.stat().st_ino
    wipe_tree(str(root))
    assert root.is_dir()
    assert root.stat().st_ino == before


def _make_chain(root: Path, levels: int, name: str = "d" * 40) -> None:
    """A chain deeper than PATH_MAX allows, built through directory descriptors."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(levels):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            os.close(os.open(f".f{level}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def test_deep_tree_beyond_path_max(root: Path) -> None:
    _make_chain(root, 300)  # 300 * 41 bytes: far beyond PATH_MAX; also beyond relocation depth
    stats = wipe_tree(str(root), workers=4)
    assert listing(root) == []
    assert (stats.files, stats.dirs) == (300, 300)


def test_deep_tree_open_descriptors_stay_bounded(root: Path) -> None:
    """With 100 descriptors allowed a 600-level chain only works if depth does not pin fds."""
    _make_chain(root, 600, name="d")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))\n"
        "from recycler_job.wipe.fuse import wipe_tree\n"
        "s = wipe_tree(sys.argv[1], workers=2)\n"
        "print(s.files, s.dirs)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["600", "600"]
    assert listing(root) == []


def test_wide_directories_and_many_files(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny subdirectory batch forces re-scans (and a full queue) on a small tree."""
    monkeypatch.setattr(fuse_wipe, "_SUBDIR_BATCH", 3)
    monkeypatch.setattr(wipe_engine, "QUEUE_PER_WORKER", 1)
    for d in range(40):
        for f in range(7):
            write(root / f"d{d}" / f"f{f}", b"ab")
    for f in range(300):
        write(root / "flat" / f"{f}", b"c")
    stats = wipe_tree(str(root), workers=5)
    assert listing(root) == []
    assert (stats.files, stats.dirs, stats.bytes) == (580, 41, 40 * 7 * 2 + 300)


class _ScanInOrder:
    """``os.scandir`` of a directory, its entries in name order (the test decides where the
    subdirectory comes in the scan)."""

    def __init__(self, real: Callable[..., object], fd: object) -> None:
        with real(fd) as it:  # type: ignore[attr-defined]
            self.entries = sorted(it, key=lambda e: e.name)

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_subdirectory_is_emptied_while_its_parent_is_still_scanned(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan hands a subdirectory to the pool when it sees it, not when it is done: the
    files listed after it wait here until another worker has opened it."""
    for i in range(20):
        write(root / f"a{i:02d}")
        write(root / f"z{i:02d}")
    write(root / "m" / "inside")
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda fd: _ScanInOrder(real_scandir, fd))
    opened = threading.Event()
    monkeypatch.setattr(fuse_wipe, "_before_open_dir", lambda fd, name: opened.set())
    late: list[str] = []
    original = fuse_wipe._FdEngine._unlink

    def unlink(
        self: fuse_wipe._FdEngine, node: fuse_wipe._FdNode, name: str, size: int, counts: object
    ) -> None:
        if name.startswith("z") and not late and not opened.wait(2):
            late.append(name)  # the scan went on, the subdirectory had not been handed out
        original(self, node, name, size, counts)  # type: ignore[arg-type]

    monkeypatch.setattr(fuse_wipe._FdEngine, "_unlink", unlink)
    stats = wipe_tree(str(root), workers=2)
    assert late == []
    assert listing(root) == []
    assert (stats.files, stats.dirs) == (41, 1)


def test_read_only_dirs_and_files(root: Path) -> None:
    write(root / "ro" / "f")
    write(root / "ro" / "sub" / "g")
    (root / "ro" / "sub" / "g").chmod(0o000)
    (root / "ro" / "sub").chmod(0o500)
    (root / "ro").chmod(0o000)
    write(root / "rofile")
    (root / "rofile").chmod(0o400)
    stats = wipe_tree(str(root))
    assert listing(root) == []
    assert (stats.files, stats.dirs) == (3, 2)


def run_as(uid: int, fn: Callable[[], object]) -> object:
    """Run `fn` in a forked child with all privileges dropped; return its result or error."""
    import pickle

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                result: object = fn()
            except Exception as exc:
                result = f"{type(exc).__name__}: {exc}"
            with os.fdopen(wfd, "wb") as f:
                pickle.dump(result, f)
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else "child died"


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="wipe-test-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_read_only_dirs_as_unprivileged_owner(shared_tmp: Path) -> None:
    """Without root's DAC override the engine has to chmod u+rwx itself to empty them."""
    need_root("to hand the tree to another user")
    root = shared_tmp / "root"
    write(root / "ro" / "f")
    write(root / "ro" / "sub" / "g")
    write(root / "locked" / "h")
    write(root / "rofile")
    for p in [root, *root.rglob("*")]:
        os.lchown(p, 65534, 65534)
    (root / "rofile").chmod(0o400)
    (root / "ro" / "sub").chmod(0o500)
    (root / "ro").chmod(0o500)
    (root / "locked").chmod(0o000)  # cannot even be opened before a chmod
    root.chmod(0o500)
    result = run_as(65534, lambda: wipe_tree(str(root), workers=2))
    assert isinstance(result, wipe_engine.WipeStats), result
    assert (result.files, result.dirs) == (4, 3)
    assert listing(root) == []


def test_odd_names(root: Path) -> None:
    names = [
        "new\nline",
        " leading and trailing space ",
        "-rf",
        "--",
        "*",
        "a\\b",
        "tab\there",
        "x" * 255,
        "ünïcødé",
    ]
    for n in names:
        write(root / n)
        (root / "dir" / n).mkdir(parents=True)
        write(root / "dir" / n / n)
    raw = os.fsencode(str(root)) + b"/\xff\xfe-not-utf8"
    with open(raw, "wb") as f:
        f.write(b"1")
    os.mkdir(os.fsencode(str(root)) + b"/\x80dir")
    stats = wipe_tree(str(root))
    assert os.listdir(os.fsencode(str(root))) == []
    assert stats.files == 2 * len(names) + 1
    assert stats.dirs == len(names) + 2


def test_special_files(root: Path) -> None:
    os.mkfifo(root / "fifo")
    os.mknod(root / "sock", stat.S_IFSOCK | 0o600)
    if IS_ROOT:
        os.mknod(root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    stats = wipe_tree(str(root))
    assert listing(root) == []
    assert stats.files == (3 if IS_ROOT else 2)


# ---- what must never be touched -----------------------------------------------------------


def test_symlinks_are_unlinked_not_followed(root: Path, outside: Path) -> None:
    before = digest(outside)
    os.symlink(outside, root / "to-dir")  # at root level
    os.symlink(outside / "file", root / "to-file")
    write(root / "sub" / "x")
    os.symlink(outside / "dir", root / "sub" / "to-dir")
    os.symlink(outside / "dir" / "a", root / "sub" / "to-a")
    os.symlink("/nonexistent/dangling", root / "sub" / "dangling")
    os.symlink("..", root / "sub" / "up")
    os.symlink("/", root / "slash")
    stats = wipe_tree(str(root), workers=4)
    assert listing(root) == []
    assert digest(outside) == before
    assert stats.files == 8


def test_directory_swapped_for_symlink_is_not_followed(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan saw a directory; just before it is opened it becomes a symlink to `outside`."""
    before = digest(outside)
    write(root / "victim" / "f")
    write(root / "other" / "g")
    swapped: list[str] = []

    def swap(parent_fd: int, name: str) -> None:
        if name == "victim" and not swapped:
            os.rename("victim", "victim-moved", src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            os.symlink(str(outside), "victim", dir_fd=parent_fd)
            swapped.append(name)

    monkeypatch.setattr(fuse_wipe, "_before_open_dir", swap)
    wipe_tree(str(root), workers=1)
    assert swapped == ["victim"]
    assert listing(root) == []
    assert digest(outside) == before


def test_deep_directory_swapped_for_symlink(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = digest(outside)
    write(root / "a" / "b" / "c" / "f")
    swapped: list[str] = []

    def swap(parent_fd: int, name: str) -> None:
        if name == "c" and not swapped:
            inner = os.open("c", os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent_fd)
            os.unlink("f", dir_fd=inner)
            os.close(inner)
            os.rmdir("c", dir_fd=parent_fd)
            os.symlink(str(outside / "dir"), "c", dir_fd=parent_fd)
            swapped.append(name)

    monkeypatch.setattr(fuse_wipe, "_before_open_dir", swap)
    wipe_tree(str(root), workers=2)
    assert swapped
    assert listing(root) == []
    assert digest(outside) == before


def test_racing_symlink_swaps_never_escape(root: Path, outside: Path) -> None:
    """A thread flips `root/sw` between a full directory and a symlink to `outside`."""
    before = digest(outside)
    for i in range(200):
        write(root / f"d{i}" / "f")
    done = threading.Event()

    def flipper() -> None:
        while not done.is_set():
            try:
                (root / "sw").mkdir()
                write(root / "sw" / "inner")
            except OSError:
                pass
            try:
                os.unlink(root / "sw" / "inner")
                os.rmdir(root / "sw")
            except OSError:
                pass
            try:
                os.symlink(outside, root / "sw")
                os.unlink(root / "sw")
            except OSError:
                pass

    t = threading.Thread(target=flipper, daemon=True)
    t.start()
    try:
        for _ in range(5):
            # The flipper may leave something behind (WipeNotEmpty): fine here.
            with contextlib.suppress(WipeError):
                wipe_tree(str(root), workers=4)
            for i in range(50):
                write(root / f"e{i}" / "f")
    finally:
        done.set()
        t.join()
    assert digest(outside) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["top", "nested"])
def test_endless_swapping_gives_up(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """An adversary that keeps swapping a directory for a symlink cannot keep the wipe busy
    forever: it gives up with WipeNotEmpty after a bounded number of passes."""
    before = digest(outside)
    parent = root if where == "top" else root / "p"
    (parent / "x").mkdir(parents=True)
    real_unlink = os.unlink
    swaps = 0

    def swap(parent_fd: int, name: str) -> None:
        nonlocal swaps
        if name == "x":
            swaps += 1
            os.rmdir("x", dir_fd=parent_fd)
            os.symlink(str(outside), "x", dir_fd=parent_fd)

    def unlink(name: str, *, dir_fd: int | None = None) -> None:
        real_unlink(name, dir_fd=dir_fd)
        if name == "x":
            os.mkdir("x", dir_fd=dir_fd)  # ... and it is back as a directory

    monkeypatch.setattr(fuse_wipe, "_before_open_dir", swap)
    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(WipeNotEmpty, match="passes"):
        wipe_tree(str(root), workers=2)
    monkeypatch.undo()
    assert 5 < swaps <= 2 * wipe_engine.MAX_PASSES + 2
    assert digest(outside) == before


def test_root_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    before = digest(outside)
    mode = outside.stat().st_mode
    link = tmp_path / "link"
    os.symlink(outside, link)
    with pytest.raises(WipeError, match="symlink"):
        wipe_tree(str(link))
    with pytest.raises(WipeError, match="symlink"):
        verify_empty(str(link))
    with pytest.raises(WipeError, match="symlink"):
        reset_root(str(link), (1, 1), 0o700)
    assert digest(outside) == before
    assert outside.stat().st_mode == mode


def test_root_not_a_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_bytes(b"x")
    with pytest.raises(WipeError, match="not a directory"):
        wipe_tree(str(f))
    with pytest.raises(WipeError):
        wipe_tree(str(tmp_path / "missing"))
    assert f.read_bytes() == b"x"


@pytest.fixture
def tmpfs_below(root: Path) -> Iterator[Path]:
    need_root("to mount a tmpfs below the root")
    mnt = root / "sub" / "mnt"
    mnt.mkdir(parents=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount tmpfs: {res.stderr}")
        pytest.skip(f"cannot mount tmpfs: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_other_filesystem_below_root_is_not_entered(
    root: Path, tmpfs_below: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmpfs_below / "on-tmpfs", b"keep me")
    write(root / "sub" / "mnt-sibling")
    write(root / "top")
    opened: list[str] = []
    monkeypatch.setattr(fuse_wipe, "_before_open_dir", lambda fd, name: opened.append(name))
    with pytest.raises(WipeCrossDevice, match="another device"):
        wipe_tree(str(root), workers=1)
    assert "mnt" not in opened  # refused on the scan's lstat, before any open
    assert (tmpfs_below / "on-tmpfs").read_bytes() == b"keep me"
    assert os.stat(tmpfs_below).st_dev != os.stat(root).st_dev  # still mounted
    with pytest.raises(WipeNotEmpty):
        verify_empty(str(root))


def test_mount_appearing_after_the_scan_is_not_entered(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory was on our device when scanned; an empty read-only tmpfs is mounted on
    it before it is opened.  Only the check on the opened descriptor can catch this."""
    need_root("to mount a tmpfs below the root")
    target = root / "late"
    write(target / "under-the-mount")
    mounted: list[bool] = []

    def hook(parent_fd: int, name: str) -> None:
        if name == "late" and not mounted:
            res = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0555", "tmpfs", str(target)],
                capture_output=True,
                check=False,
            )
            mounted.append(res.returncode == 0)

    monkeypatch.setattr(fuse_wipe, "_before_open_dir", hook)
    try:
        with pytest.raises(WipeCrossDevice, match="another device"):
            wipe_tree(str(root), workers=1)
        if mounted != [True]:
            pytest.skip("cannot mount tmpfs")
        # Not even made writable: the device check comes before anything is changed.
        assert stat.S_IMODE(target.stat().st_mode) == 0o555
    finally:
        if mounted == [True]:
            subprocess.run(["umount", str(target)], check=False)
    assert (target / "under-the-mount").exists()


def test_root_on_same_device_as_tmpfs_root(tmpfs_below: Path) -> None:
    """Wiping the mount itself (the usual case) works: the root defines the device."""
    write(tmpfs_below / "a" / "b")
    stats = wipe_tree(str(tmpfs_below))
    assert listing(tmpfs_below) == []
    assert (stats.files, stats.dirs) == (1, 1)


# ---- races, stop and errors ---------------------------------------------------------------


def test_vanishing_entries_are_tolerated(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in ("a", "b", "c"):
        for i in range(20):
            write(root / d / f"f{i}")
    write(root / "gone" / "x")
    real_unlink, real_rmdir = os.unlink, os.rmdir
    stolen: list[str] = []

    def unlink(name: str, *, dir_fd: int | None = None) -> None:
        # Someone else removes the file first: our unlink gets ENOENT.
        if name == "f3":
            real_unlink(name, dir_fd=dir_fd)
            stolen.append(name)
        real_unlink(name, dir_fd=dir_fd)

    def rmdir(name: str, *, dir_fd: int | None = None) -> None:
        if name == "b":
            real_rmdir(name, dir_fd=dir_fd)
            stolen.append(name)
        real_rmdir(name, dir_fd=dir_fd)

    def hook(parent_fd: int, name: str) -> None:
        if name == "gone":  # the whole directory disappears before we open it
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent_fd)
            real_unlink("x", dir_fd=inner)
            os.close(inner)
            real_rmdir(name, dir_fd=parent_fd)
            stolen.append(name)

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "rmdir", rmdir)
    monkeypatch.setattr(fuse_wipe, "_before_open_dir", hook)
    stats = wipe_tree(str(root), workers=3)
    monkeypatch.undo()
    assert listing(root) == []
    assert sorted(stolen) == ["b", "f3", "f3", "f3", "gone"]
    assert (stats.files, stats.dirs) == (57, 2)


def test_stop_callable_interrupts_and_leaves_the_rest(root: Path) -> None:
    for d in range(20):
        for i in range(50):
            write(root / f"d{d}" / f"f{i}")
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 100

    with pytest.raises(WipeInterrupted) as info:
        wipe_tree(str(root), workers=2, stop=stop)
    left = sum(len(files) for _, _, files in os.walk(root))
    assert left >= 1000 - 110
    assert info.value.stats is not None
    assert info.value.stats.files == 1000 - left


def test_stop_event_set_before_start(root: Path) -> None:
    write(root / "a" / "b")
    ev = threading.Event()
    ev.set()
    with pytest.raises(WipeInterrupted):
        wipe_tree(str(root), stop=ev)
    assert (root / "a" / "b").exists()


def test_stop_event_is_prompt(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in range(20):
        for i in range(300):
            write(root / f"d{d}" / f"f{i}")
    real_unlink = os.unlink

    def slow_unlink(name: str, *, dir_fd: int | None = None) -> None:
        time.sleep(0.002)  # a slow network filesystem
        real_unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", slow_unlink)
    ev = threading.Event()
    threading.Timer(0.3, ev.set).start()
    t0 = time.monotonic()
    with pytest.raises(WipeInterrupted):
        wipe_tree(str(root), workers=4, stop=ev)
    elapsed = time.monotonic() - t0
    monkeypatch.undo()
    assert elapsed < 1.5, elapsed  # 6000 files x 2 ms / 4 workers would take 3 s or more
    assert sum(len(files) for _, _, files in os.walk(root)) > 3000


def _failing(err: int, name: str) -> Callable[..., None]:
    real_unlink = os.unlink

    def unlink(n: str, *, dir_fd: int | None = None) -> None:
        if n == name:
            raise OSError(err, os.strerror(err))
        real_unlink(n, dir_fd=dir_fd)

    return unlink


@pytest.mark.parametrize("err", [errno.ENOTCONN, errno.EIO, errno.EACCES])
def test_io_errors_surface_as_wipe_error(
    root: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    for i in range(200):
        write(root / f"d{i % 4}" / f"f{i}")
    monkeypatch.setattr(os, "unlink", _failing(err, "f77"))
    t0 = time.monotonic()
    with pytest.raises(WipeError) as info:
        wipe_tree(str(root), workers=4)
    assert time.monotonic() - t0 < 5
    assert info.value.errno == err
    assert "f77" in str(info.value)
    assert not isinstance(info.value, WipeInterrupted)


def test_not_connected_while_opening_a_directory(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(root / "a" / "b" / "c")

    def hook(parent_fd: int, name: str) -> None:
        if name == "b":
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    monkeypatch.setattr(fuse_wipe, "_before_open_dir", hook)
    with pytest.raises(WipeError, match="Transport endpoint is not connected") as info:
        wipe_tree(str(root), workers=2)
    assert info.value.errno == errno.ENOTCONN
    assert (root / "a" / "b" / "c").exists()


def test_workers_must_be_positive(root: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        wipe_tree(str(root), workers=0)


# ---- .trashcan ---------------------------------------------------------------------------


def test_trashcan_on_a_plain_filesystem_is_removed(root: Path) -> None:
    write(root / ".trashcan" / "internal_op" / "x")
    write(root / ".trashcan" / "old_2024" / "y")
    stats = wipe_tree(str(root))
    assert listing(root) == []
    assert (stats.files, stats.dirs) == (2, 3)


def test_trashcan_file_is_removed(root: Path) -> None:
    write(root / ".trashcan", b"not a dir")
    wipe_tree(str(root))
    assert listing(root) == []


def test_trashcan_emptied_last_and_left_when_server_refuses(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emulate gluster's trash translator: unlink moves files into .trashcan, whose rmdir
    (and that of internal_op) fails with EPERM."""
    before = digest(outside)
    (root / ".trashcan" / "internal_op").mkdir(parents=True)
    write(root / ".trashcan" / "old-tenant-file")
    os.symlink(outside, root / ".trashcan" / "link-out")
    write(root / "a" / "f", b"12")
    write(root / "b" / "g", b"345")
    real_unlink, real_rmdir, real_rename = os.unlink, os.rmdir, os.rename
    trash_fd = os.open(root / ".trashcan", os.O_RDONLY | os.O_DIRECTORY)
    trash_ino = os.fstat(trash_fd).st_ino
    moved: list[str] = []

    def unlink(name: str, *, dir_fd: int | None = None) -> None:
        assert dir_fd is not None
        if os.fstat(dir_fd).st_ino != trash_ino and name in ("f", "g"):
            real_rename(name, f"{name}_ts", src_dir_fd=dir_fd, dst_dir_fd=trash_fd)
            moved.append(name)
            return
        real_unlink(name, dir_fd=dir_fd)

    def rmdir(name: str, *, dir_fd: int | None = None) -> None:
        assert dir_fd is not None
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if st.st_ino == trash_ino or (
            name == "internal_op" and os.fstat(dir_fd).st_ino == trash_ino
        ):
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_rmdir(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "rmdir", rmdir)
    try:
        stats = wipe_tree(str(root), workers=2)
    finally:
        monkeypatch.undo()
        os.close(trash_fd)
    assert sorted(moved) == ["f", "g"]
    assert listing(root) == [".trashcan"]
    assert listing(root / ".trashcan") == ["internal_op"]
    assert listing(root / ".trashcan" / "internal_op") == []
    assert digest(outside) == before
    # f and g are counted when moved and again when purged from the trash
    assert stats.files == 2 + 2 + 2
    assert stats.dirs == 2


def test_other_eperm_on_rmdir_is_an_error(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "internal_op").mkdir()  # only .trashcan/internal_op may be refused
    real_rmdir = os.rmdir

    def rmdir(name: str, *, dir_fd: int | None = None) -> None:
        if name == "internal_op":
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_rmdir(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "rmdir", rmdir)
    with pytest.raises(WipeError, match="internal_op"):
        wipe_tree(str(root))


# ---- verify_empty and reset_root --------------------------------------------------------


def test_verify_empty_accepts_empty_root(root: Path) -> None:
    verify_empty(str(root))


def test_verify_empty_lists_leftovers(root: Path) -> None:
    for i in range(8):
        write(root / f"left{i}")
    with pytest.raises(WipeNotEmpty, match=r"'left\d'.*and 3 more"):
        verify_empty(str(root))


def test_verify_empty_trashcan_rules(root: Path, outside: Path) -> None:
    (root / ".trashcan").mkdir()
    verify_empty(str(root))
    (root / ".trashcan" / "internal_op").mkdir()
    verify_empty(str(root))
    write(root / ".trashcan" / "internal_op" / "x")
    with pytest.raises(WipeNotEmpty, match="internal_op/x"):
        verify_empty(str(root))
    os.unlink(root / ".trashcan" / "internal_op" / "x")
    write(root / ".trashcan" / "file_2024")
    with pytest.raises(WipeNotEmpty, match="file_2024"):
        verify_empty(str(root))
    os.unlink(root / ".trashcan" / "file_2024")
    os.rmdir(root / ".trashcan" / "internal_op")
    write(root / ".trashcan" / "internal_op")  # a file by that name is tenant data
    with pytest.raises(WipeNotEmpty, match="internal_op"):
        verify_empty(str(root))


def test_verify_empty_rejects_trashcan_symlink_and_file(root: Path, outside: Path) -> None:
    os.symlink(outside / "dir", root / ".trashcan")
    with pytest.raises(WipeNotEmpty, match=r"\.trashcan"):
        verify_empty(str(root))
    os.unlink(root / ".trashcan")
    write(root / ".trashcan")
    with pytest.raises(WipeNotEmpty, match=r"\.trashcan"):
        verify_empty(str(root))


def test_wipe_tree_verifies_at_the_end(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A leftover the engine did not notice is still caught by the final verification."""
    write(root / "f")
    seen: list[str] = []

    def verify(fd: int, path: str, trash: frozenset[str]) -> None:
        assert os.fstat(fd).st_ino == root.stat().st_ino  # the very directory it wiped
        seen.append(path)
        raise WipeNotEmpty(f"{path} is not empty after the wipe: 'ghost'")

    monkeypatch.setattr(fuse_wipe, "_verify_dir", verify)
    with pytest.raises(WipeNotEmpty, match="ghost") as info:
        wipe_tree(str(root))
    assert seen == [str(root)]
    assert info.value.stats is not None
    assert info.value.stats.files == 1


def test_reset_root_owner_and_mode(root: Path) -> None:
    need_root("to chown")
    reset_root(str(root), (1234, 5678), 0o2770)
    st = root.stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert stat.S_IMODE(st.st_mode) == 0o2770


def test_reset_root_mode_only_and_noop(root: Path) -> None:
    uid, gid = root.stat().st_uid, root.stat().st_gid
    reset_root(str(root), None, 0o711)
    assert stat.S_IMODE(root.stat().st_mode) == 0o711
    reset_root(str(root), None, None)
    assert stat.S_IMODE(root.stat().st_mode) == 0o711
    assert (root.stat().st_uid, root.stat().st_gid) == (uid, gid)


def test_reset_root_rejects_bad_mode(root: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        reset_root(str(root), None, 0o17777)


# ---- the verified root: one descriptor, checked once ------------------------------------


def test_open_verified_root_refuses_another_device_or_inode(root: Path) -> None:
    st = root.stat()
    with pytest.raises(WipeWrongRoot, match="detached or replaced"):
        open_verified_root(str(root), device=st.st_dev + 1)
    with pytest.raises(WipeWrongRoot, match="not the mount's root"):
        open_verified_root(str(root), device=st.st_dev, inode=st.st_ino + 1)
    with open_verified_root(str(root), device=st.st_dev, inode=st.st_ino) as handle:
        assert os.fstat(handle.fd).st_ino == st.st_ino


def test_open_verified_root_refuses_a_symlink(root: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(root)
    with pytest.raises(WipeError, match="symlink"):
        open_verified_root(str(link), device=root.stat().st_dev)


def test_a_verified_root_is_wiped_through_its_descriptor_not_its_path(
    root: Path, tmp_path: Path
) -> None:
    """The path swapped for another directory after the check: the one checked is wiped,
    reset and verified; the impostor at the path is never touched."""
    write(root / "tenant" / "data")
    write(root / ".dot")
    handle = open_verified_root(str(root), device=root.stat().st_dev)
    try:
        root.rename(tmp_path / "moved")
        impostor = tmp_path / "root"
        impostor.mkdir(mode=0o755)
        write(impostor / "not-ours")
        stats = wipe_tree(handle, workers=2)
        reset_root(handle, None, 0o711)
        verify_empty(handle)
    finally:
        handle.close()
    assert (stats.files, stats.dirs) == (2, 1)
    assert listing(tmp_path / "moved") == []
    assert stat.S_IMODE((tmp_path / "moved").stat().st_mode) == 0o711
    assert listing(impostor) == ["not-ours"]
    assert stat.S_IMODE(impostor.stat().st_mode) == 0o755


# ---- worker threads that cannot be started -----------------------------------------------


def wipe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wipe-")]


@pytest.mark.parametrize("fail_on", [1, 3])
def test_a_worker_that_cannot_start_stops_the_others_before_returning(
    root: Path, monkeypatch: pytest.MonkeyPatch, fail_on: int
) -> None:
    """threading.Thread.start raising (no threads or memory left): the wipe fails, and the
    workers already started are stopped and joined before wipe_tree returns, so none of them
    unlinks a file or uses a closed (and maybe reused) descriptor afterwards."""
    for d in range(40):
        for f in range(20):
            write(root / f"d{d}" / f"f{f}")
    real_start = threading.Thread.start
    started = 0

    def start(self: threading.Thread) -> None:
        nonlocal started
        if self.name.startswith("wipe-"):
            started += 1
            if started == fail_on:
                raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    # Keep the started workers busy, so that they are still at work when the start fails.
    monkeypatch.setattr(fuse_wipe, "_before_open_dir", lambda fd, name: time.sleep(0.02))
    with pytest.raises(WipeError, match="cannot start a worker"):
        wipe_tree(str(root), workers=4)
    assert wipe_threads() == [], "a worker outlived wipe_tree"
    left = every_path(root)
    time.sleep(0.3)  # what must NOT happen meanwhile is a change: nothing is left running
    assert every_path(root) == left
    if fail_on == 1:
        assert len(left) == 40 + 800  # no worker ran: nothing was removed


def every_path(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_engines_take_the_configured_worker_count_by_default() -> None:
    """One default for --wipe-workers: the declaration's, in both engines."""
    configured = Config().wipe_workers
    assert configured == wipe_engine.DEFAULT_WORKERS
    assert inspect.signature(wipe_tree).parameters["workers"].default == configured
    wipe_of_gfapi = inspect.signature(gfapi_handles.GfapiVolume.wipe)
    assert wipe_of_gfapi.parameters["workers"].default == configured


# ---- renamed trash, the old tenant's xattrs ------------------------------------------------


def test_renamed_trash_is_emptied_last_and_tolerated(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With features.trash-dir .Trash, the directory gluster refuses to remove is .Trash."""
    write(root / ".Trash" / "pv" / "old_2024")
    write(root / "f")
    real_rmdir = os.rmdir

    def rmdir(path: str, *, dir_fd: int | None = None) -> None:
        if path == ".Trash":
            raise PermissionError(errno.EPERM, "refused like gluster's trash translator")
        real_rmdir(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "rmdir", rmdir)
    wipe_tree(str(root), trash={".Trash", ".trashcan"})
    assert listing(root) == [".Trash"]
    verify_empty(str(root), trash={".Trash"})
    with pytest.raises(WipeNotEmpty, match=r"\.Trash"):
        verify_empty(str(root))  # not a trash name by default


def test_tenant_xattrs_of_the_root_are_removed(root: Path) -> None:
    try:
        os.setxattr(root, "user.secret", b"old tenant")
    except OSError as exc:
        pytest.skip(f"no user xattrs here: {exc}")
    write(root / "f")
    wipe_tree(str(root))
    assert [n for n in os.listxattr(root) if n.startswith("user.")] == []


@pytest.mark.parametrize(
    ("name", "tenant"),
    [
        ("user.secret", True),
        (b"user.x", True),
        ("system.posix_acl_default", True),
        ("system.posix_acl_access", True),
        ("trusted.gfid", False),
        ("trusted.glusterfs.volume-id", False),
        ("security.selinux", False),
        ("system.nfs4_acl", False),
        ("users.x", False),
    ],
)
def test_which_xattrs_are_the_tenants(name: str | bytes, tenant: bool) -> None:
    assert wipe_engine.is_tenant_xattr(name) is tenant


def test_a_wipe_waits_for_the_budget_it_shares_with_the_other_volumes(root: Path) -> None:
    """The pass's budget reaches the FUSE wipe: while another volume's wipe holds every slot,
    this one removes nothing, and a stop still ends it."""
    write(root / "d" / "f")
    write(root / "g")
    budget = wipe_engine.WorkerBudget(1)
    budget.acquire(lambda: None)  # the other volume's wipe
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(wipe_engine.WipeInterrupted):
        wipe_tree(str(root), workers=2, stop=stop, budget=budget)
    assert listing(root) == ["d", "g"] and listing(root / "d") == ["f"]
    budget.release()
    wipe_tree(str(root), workers=2, budget=budget)  # its slot free again: the wipe goes on
    assert listing(root) == []
