"""Empty the root of a verified mount without ever touching anything outside it.

Everything below the root is removed through directory file descriptors (``unlinkat``,
``unlinkat(AT_REMOVEDIR)``, ``fstatat(AT_SYMLINK_NOFOLLOW)`` relative to a directory we opened
``O_NOFOLLOW|O_DIRECTORY``), so a rename or a symlink planted during the wipe cannot redirect it
outside the tree, and a symlink is only ever unlinked, never followed.  Every entry's ``st_dev``
is compared with the root's: an entry on another device is an error and is neither entered nor
removed.

Unlink over a FUSE mount is one network round trip per file, so directories are emptied in
parallel by a pool of threads (one thread per directory at a time: unlinks in one directory are
serialized by the kernel anyway).  Memory does not grow with the size of the tree: directories
are streamed with ``scandir``, work items sit in a bounded queue (plus per-worker overflow
stacks bounded by ``_SUBDIR_BATCH`` x depth), and a directory is re-scanned rather than listed
in full when it has more subdirectories than fit in one batch.  Chains deeper than
``_RELOCATE_DEPTH`` are renamed up to the top of the tree so that the number of open directory
descriptors stays bounded even for adversarially deep trees.

Gluster's trash translator (``features.trash``) keeps a ``.trashcan`` directory at the volume
root.  Observed on gluster 10.3 through a FUSE mount (see docs/wipe.md):

* ``features.trash`` never enabled: there is no ``.trashcan``.
* ``features.trash on``: ``.trashcan`` appears at the root.  Unlinking a file (up to
  ``features.trash-max-filesize``) *moves* it to ``.trashcan/<path>_<timestamp>``; unlinking
  inside ``.trashcan`` deletes for good; ``rmdir``/``rename`` of ``.trashcan`` itself fail with
  EPERM.
* ``features.trash off`` again: ``.trashcan`` stays and still cannot be removed (EPERM).
* ``features.trash-internal-op on``: ``.trashcan/internal_op`` is created and its ``rmdir``
  fails with EPERM; with the option off it can be removed.

So the wipe removes everything except ``.trashcan`` first, then empties ``.trashcan`` (which by
then holds whatever the wipe itself moved there), then tries to remove it and its
``internal_op``; EPERM there is accepted and :func:`verify_empty` accepts exactly an empty
``.trashcan`` (or one holding only an empty ``internal_op``) at the root.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from recycler_job import failpoints
from recycler_job.config import Config
from recycler_job.errors import RecyclerError

__all__ = [
    "DEFAULT_WORKERS",
    "TRASH_DIR",
    "VerifiedRoot",
    "WipeCrossDevice",
    "WipeError",
    "WipeInterrupted",
    "WipeNotEmpty",
    "WipeStats",
    "WipeWrongRoot",
    "open_verified_root",
    "reset_root",
    "verify_empty",
    "wipe_tree",
]

DEFAULT_WORKERS = Config.wipe_workers
"""The configured default of --wipe-workers (its declaration is the one place it is set)."""
TRASH_DIR = ".trashcan"
TRASH_INTERNAL_OP = "internal_op"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SUBDIR_BATCH = 512  # subdirectories taken from one scan before the directory is re-scanned
_RELOCATE_DEPTH = 32  # deeper directories are renamed to the top to bound open descriptors
_MAX_PASSES = 20  # re-scans of a directory that still is not empty before giving up
_GHOST_BACKOFF_S = 0.1  # first re-scan delay when listed entries could not be looked up
_GHOST_BACKOFF_MAX_S = 2.0
_QUEUE_PER_WORKER = 4
_POLL_S = 0.05
_JOIN_GRACE_S = 10.0

StopFlag: TypeAlias = threading.Event | Callable[[], bool]

# Test seam: called with (parent_fd, name) just before a subdirectory is opened.
_before_open_dir: Callable[[int, str], None] | None = None


@dataclass
class WipeStats:
    """What one wipe removed: non-directories, directories, bytes (st_size of non-directories)."""

    files: int = 0
    dirs: int = 0
    bytes: int = 0
    seconds: float = 0.0


class WipeError(RecyclerError):
    """The wipe failed or could not be proven complete; the volume must not be reused."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.stats: WipeStats | None = None  # progress made before the failure, if any


class WipeInterrupted(WipeError):
    """The stop flag was raised; the remaining entries were left in place."""


class WipeNotEmpty(WipeError):
    """Something is left below the root after the wipe."""


class WipeCrossDevice(WipeError):
    """An entry below the root lives on another device (a mount); it was not touched."""


class WipeWrongRoot(WipeError):
    """The directory at the path is not the root of the mount that was verified."""


class _Abort(RecyclerError):
    """Unwinds a worker after the engine has been told to stop."""


class _Node:
    """An open directory inside the tree.

    ``pending`` counts what still has to finish before the directory can be removed: its own
    scan and its child directories.  Whoever drops it to
    zero settles the node (rmdir, or re-scan if something is still there).
    """

    __slots__ = (
        "depth",
        "fd",
        "found_work",
        "ghosts",
        "keep_on_eperm",
        "more",
        "name",
        "needs_rescan",
        "parent",
        "passes",
        "pending",
        "skip",
        "top",
    )

    def __init__(self, fd: int, parent: _Node | None, name: str, depth: int) -> None:
        self.fd = fd
        self.parent = parent
        self.name = name
        self.depth = depth
        self.pending = 0
        self.needs_rescan = False  # something changed under a scan (a race): look again
        self.more = False  # the last scan stopped at _SUBDIR_BATCH: continue
        self.found_work = False
        self.ghosts = False  # listed by readdir, but ENOENT on lookup (see _rescan)
        self.passes = 0
        self.top = False
        self.keep_on_eperm = False
        self.skip: frozenset[str] = frozenset()


class _Scan:
    __slots__ = ("node",)

    def __init__(self, node: _Node) -> None:
        self.node = node


class _Child:
    __slots__ = ("name", "parent")

    def __init__(self, parent: _Node, name: str) -> None:
        self.parent = parent
        self.name = name


_Item: TypeAlias = _Scan | _Child


class _Counts:
    __slots__ = ("bytes", "dirs", "files")

    def __init__(self) -> None:
        self.files = 0
        self.dirs = 0
        self.bytes = 0


def _stop_callable(stop: StopFlag | None) -> Callable[[], bool] | None:
    if stop is None:
        return None
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _open_root(root: str) -> int:
    """Open the root without following a symlink: a symlinked root is refused, not followed."""
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                if stat.S_ISLNK(os.lstat(root).st_mode):
                    raise WipeError(
                        f"refusing to wipe {root}: it is a symlink", errno=exc.errno
                    ) from exc
            except OSError:
                pass
            raise WipeError(f"refusing to wipe {root}: not a directory", errno=exc.errno) from exc
        raise WipeError(f"cannot open {root}: {_describe(exc)}", errno=exc.errno) from exc


@dataclass(frozen=True)
class VerifiedRoot:
    """An open descriptor of the directory that was checked to be the root of a mount.

    Everything done to the root (wipe, emptiness proof, owner and mode) goes through this
    descriptor: if the mount is detached or replaced after the check, the path leads
    somewhere else, the descriptor does not.
    """

    fd: int
    path: str  # for messages only

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> VerifiedRoot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_verified_root(path: str, *, device: int, inode: int | None = None) -> VerifiedRoot:
    """Open ``path`` once (``O_DIRECTORY|O_NOFOLLOW``) and prove it is the verified mount's root.

    ``device`` is the mount's ``st_dev`` from mountinfo (major:minor), ``inode`` the inode its
    root must have (gluster's root is 1); a mismatch means the mount was detached or swapped
    since it was verified, and raises :class:`WipeWrongRoot`.
    """
    fd = _open_root(path)
    try:
        st = os.fstat(fd)
        if st.st_dev != device:
            raise WipeWrongRoot(
                f"refusing to wipe {path}: it is on device "
                f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}, the verified mount is "
                f"{os.major(device)}:{os.minor(device)}: detached or replaced since verified"
            )
        if inode is not None and st.st_ino != inode:
            raise WipeWrongRoot(
                f"refusing to wipe {path}: inode {st.st_ino} is not the mount's root ({inode})"
            )
    except OSError as exc:
        os.close(fd)
        raise _os_error("stat", path, exc) from exc
    except BaseException:
        os.close(fd)
        raise
    return VerifiedRoot(fd=fd, path=path)


def _open(root: str | VerifiedRoot) -> tuple[int, str]:
    """A descriptor of ``root`` that the caller closes, and the path to show in messages."""
    if isinstance(root, VerifiedRoot):
        try:
            return os.dup(root.fd), root.path
        except OSError as exc:
            raise _os_error("dup", root.path, exc) from exc
    return _open_root(root), root


def _os_error(op: str, path: str, exc: OSError) -> WipeError:
    return WipeError(f"{op} {path}: {_describe(exc)}", errno=exc.errno)


class _Engine:
    """One parallel pass over the subtree of a *top* node (the root, or the trash directory)."""

    def __init__(self, root: str, dev: int, workers: int, stop: StopFlag | None) -> None:
        self._root = root
        self.dev = dev
        self._workers = workers
        self._stop = _stop_callable(stop)
        self._lock = threading.Lock()
        # None is the "run finished" sentinel, one per worker.
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=workers * _QUEUE_PER_WORKER)
        self._abort = threading.Event()
        self._done = threading.Event()
        self._error: WipeError | None = None
        self._open: set[_Node] = set()
        self.main_counts = _Counts()  # work done on the calling thread
        self._counts: list[_Counts] = [self.main_counts]
        self.stuck = 0
        self._threads: list[threading.Thread] = []  # every worker of every run
        self._top: _Node | None = None

    # ---- driving -------------------------------------------------------------------------

    def run(self, top: _Node) -> None:
        """Empty ``top`` (which is kept) using the worker pool; raise the first error."""
        self._top = top
        top.top = True
        top.pending = 1
        self._done.clear()
        self._queue.put(_Scan(top))
        threads: list[threading.Thread] = []
        try:
            for i in range(self._workers):
                counts = _Counts()
                t = threading.Thread(
                    target=self._worker, args=(counts,), name=f"wipe-{i}", daemon=True
                )
                try:
                    t.start()
                except RuntimeError as exc:  # out of threads or memory: stop those started
                    self._fail(WipeError(f"wipe of {self._root}: cannot start a worker: {exc}"))
                    break
                self._counts.append(counts)
                threads.append(t)
                self._threads.append(t)
            while not self._done.wait(_POLL_S):
                if self._abort.is_set():
                    break
                if self._stop is not None and self._stop():
                    self._fail(WipeInterrupted(f"wipe of {self._root} interrupted"))
                    break
                if not any(t.is_alive() for t in threads):
                    self._fail(WipeError(f"wipe of {self._root}: every worker exited early"))
                    break
        finally:
            # Whatever ended the wait (even an exception here), no worker may outlive this
            # call unnoticed: they are told to stop and joined, and the ones still blocked in
            # a filesystem call are counted so that no descriptor they use is closed.
            if not self._done.is_set():
                self._abort.set()
            deadline = time.monotonic() + _JOIN_GRACE_S
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            self.stuck = sum(t.is_alive() for t in self._threads)
        if self._error is not None:
            if self.stuck:
                self._error.args = (
                    f"{self._error.args[0]} ({self.stuck} worker(s) still blocked in a "
                    "filesystem call)",
                )
            raise self._error

    def close(self) -> None:
        """Close descriptors left open by an aborted run, unless a worker may still use them."""
        self.stuck = sum(t.is_alive() for t in self._threads)
        if self.stuck:
            return  # a blocked worker may wake up and use them: leak rather than risk reuse
        for node in list(self._open):
            self._close(node)

    def stats(self) -> WipeStats:
        total = WipeStats()
        for c in self._counts:
            total.files += c.files
            total.dirs += c.dirs
            total.bytes += c.bytes
        return total

    def adopt(self, node: _Node) -> None:
        """Track a node opened by the caller so that :meth:`close` closes it after an abort."""
        self._open.add(node)

    def release_top(self, node: _Node) -> None:
        """Close a top node after its run finished cleanly."""
        self._close(node)

    # ---- worker --------------------------------------------------------------------------

    def _fail(self, error: WipeError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
        self._abort.set()

    def _check(self) -> None:
        if self._abort.is_set():
            raise _Abort
        if self._stop is not None and self._stop():
            self._fail(WipeInterrupted(f"wipe of {self._root} interrupted"))
            raise _Abort

    def _worker(self, counts: _Counts) -> None:
        local: deque[_Item] = deque()
        try:
            while not self._abort.is_set():
                item: _Item | None
                if local:
                    item = local.pop()
                else:
                    try:
                        item = self._queue.get(timeout=_POLL_S)
                    except queue.Empty:
                        continue
                    if item is None:
                        return
                failpoints.hit("wipe-directory")  # tests: slow a wipe down to act during it
                self._process(item, local, counts)
                # Share the oldest (shallowest, usually largest) pending work with idle workers.
                while len(local) > 1 and not self._queue.full():
                    try:
                        self._queue.put_nowait(local.popleft())
                    except queue.Full:
                        break
        except _Abort:
            return
        except WipeError as exc:
            self._fail(exc)
        except OSError as exc:
            self._fail(WipeError(f"wipe of {self._root}: {_describe(exc)}", errno=exc.errno))
        except Exception as exc:
            self._fail(WipeError(f"wipe of {self._root}: internal error: {exc!r}"))

    def _submit(self, item: _Item, local: deque[_Item]) -> None:
        """Offer work to idle workers; keep it when the bounded queue is full (never block)."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            local.append(item)

    def _process(self, item: _Item, local: deque[_Item], counts: _Counts) -> None:
        if isinstance(item, _Scan):
            self._scan(item.node, local, counts)
            self._release(item.node, local, counts)
        else:
            child = self._open_child(item.parent, item.name)
            if child is None:
                self._release(item.parent, local, counts)
                return
            child.pending = 1
            self._scan(child, local, counts)
            self._release(child, local, counts)

    def _path(self, node: _Node | None, name: str | None = None) -> str:
        parts = [] if name is None else [name]
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        if node is not None and node.name:
            parts.append(node.name)
        parts.reverse()
        return os.path.join(self._root, *parts) if parts else self._root

    def _scan(self, node: _Node, local: deque[_Item], counts: _Counts) -> None:
        """One streaming pass: unlink non-directories, dispatch up to a batch of subdirectories.

        The non-directories of one directory are unlinked by the thread that scans it, never in
        parallel: the kernel holds the parent directory's lock across the whole FUSE round trip
        of an unlink, so parallel unlinks in one directory only queue up on that lock (measured:
        8 threads on one flat directory were 25% slower than 1).  Parallelism is across
        directories.
        """
        found = False
        early = False
        subdirs: list[str] = []
        try:
            with os.scandir(node.fd) as it:
                for entry in it:
                    self._check()
                    name = entry.name
                    if name in node.skip:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        node.ghosts = found = True  # gone, or not yet visible: look again
                        continue
                    if st.st_dev != self.dev:
                        raise WipeCrossDevice(
                            f"{self._path(node, name)} is on another device "
                            f"({st.st_dev} != {self.dev}); not removed"
                        )
                    found = True
                    if stat.S_ISDIR(st.st_mode):
                        subdirs.append(name)
                        if len(subdirs) >= _SUBDIR_BATCH:
                            early = True
                            break
                    else:
                        self._unlink(node, name, st.st_size, counts)
        except OSError as exc:
            raise _os_error("scan", self._path(node), exc) from exc
        for name in subdirs:
            self._dispatch_child(node, name, local)
        node.found_work = found
        if early:
            node.more = True

    def _unlink(self, node: _Node, name: str, size: int, counts: _Counts) -> None:
        try:
            os.unlink(name, dir_fd=node.fd)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.EPERM) and self._is_dir(node, name):
                node.needs_rescan = True  # swapped for a directory since the scan
                return
            raise _os_error("unlink", self._path(node, name), exc) from exc
        counts.files += 1
        counts.bytes += size

    def _is_dir(self, node: _Node, name: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(name, dir_fd=node.fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _dispatch_child(self, node: _Node, name: str, local: deque[_Item]) -> None:
        parent = node
        if node.depth + 1 > _RELOCATE_DEPTH and self._top is not None:
            # Rename the subtree to the top so that its ancestors can be closed and removed.
            new_name = f".recycler-deep-{uuid.uuid4().hex}"
            try:
                os.rename(name, new_name, src_dir_fd=node.fd, dst_dir_fd=self._top.fd)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise _os_error("relocate", self._path(node, name), exc) from exc
            parent, name = self._top, new_name
        with self._lock:
            parent.pending += 1
        self._submit(_Child(parent, name), local)

    def _open_child(self, parent: _Node, name: str) -> _Node | None:
        """Open a subdirectory without following symlinks or leaving the device; None if gone."""
        hook = _before_open_dir
        if hook is not None:
            hook(parent.fd, name)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
        except FileNotFoundError:
            parent.ghosts = True
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                parent.needs_rescan = True  # replaced by a non-directory: unlink it next pass
                return None
            if exc.errno != errno.EACCES:
                raise _os_error("open", self._path(parent, name), exc) from exc
            reopened = self._open_unreadable(parent, name)
            if reopened is None:
                return None
            fd = reopened
        node = _Node(fd, parent, name, parent.depth + 1)
        self._open.add(node)
        try:
            st = os.fstat(fd)
            if st.st_dev != self.dev:
                raise WipeCrossDevice(
                    f"{self._path(parent, name)} is on another device "
                    f"({st.st_dev} != {self.dev}); not removed"
                )
            if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
        except OSError as exc:
            raise _os_error("open", self._path(parent, name), exc) from exc
        if parent.top and parent.name == TRASH_DIR and name == TRASH_INTERNAL_OP:
            node.keep_on_eperm = True
        return node

    def _open_unreadable(self, parent: _Node, name: str) -> int | None:
        """Make a directory we may not read (mode 0) readable, via an O_PATH handle on it.

        ``chmod`` by name would follow a symlink swapped in after the scan; the O_PATH handle
        pins the inode, and ``/proc/self/fd`` lets us chmod exactly that inode.
        """
        try:
            pfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                parent.needs_rescan = True
                return None
            raise _os_error("open", self._path(parent, name), exc) from exc
        try:
            st = os.fstat(pfd)
            if st.st_dev != self.dev:
                raise WipeCrossDevice(
                    f"{self._path(parent, name)} is on another device; not removed"
                )
            os.chmod(f"/proc/self/fd/{pfd}", stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
            if os.fstat(fd).st_ino != st.st_ino:
                os.close(fd)
                parent.needs_rescan = True
                return None
            return fd
        except OSError as exc:
            raise _os_error("open", self._path(parent, name), exc) from exc
        finally:
            os.close(pfd)

    def _release(self, node: _Node, local: deque[_Item], counts: _Counts) -> None:
        with self._lock:
            node.pending -= 1
            if node.pending:
                return
        self._settle(node, local, counts)

    def _rescan(self, node: _Node, local: deque[_Item], counted: bool) -> None:
        """Scan ``node`` again; ``counted`` passes are the ones that may never end.

        Gluster's trash translator creates the directories below ``.trashcan`` on the brick
        without a gfid: readdir lists them, but lookups fail with ENOENT for about a second
        until the gfid has been assigned.  Such "ghost" entries get a backed-off re-scan
        instead of being taken for vanished.
        """
        if counted:
            node.passes += 1
            if node.passes > _MAX_PASSES:
                raise WipeNotEmpty(
                    f"{self._path(node)} is still not empty after {_MAX_PASSES} passes"
                )
            if node.ghosts:
                node.ghosts = False
                self._sleep(min(_GHOST_BACKOFF_S * 2 ** (node.passes - 1), _GHOST_BACKOFF_MAX_S))
        node.needs_rescan = node.more = False
        node.pending = 1
        self._submit(_Scan(node), local)

    def _settle(self, node: _Node, local: deque[_Item], counts: _Counts) -> None:
        """Everything below ``node`` has finished: remove it, re-scan it, or finish the run."""
        current: _Node | None = node
        while current is not None:
            node = current
            if node.more and not node.needs_rescan:
                self._rescan(node, local, counted=False)  # progress, not a retry
                return
            if node.needs_rescan:
                self._rescan(node, local, counted=True)
                return
            if node.top:
                if node.found_work:
                    self._rescan(node, local, counted=True)  # prove it empty with one more pass
                else:
                    self._finish()
                return
            parent = node.parent
            assert parent is not None
            removed = True
            try:
                os.rmdir(node.name, dir_fd=parent.fd)
            except FileNotFoundError:
                removed = False
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    self._rescan(node, local, counted=True)
                    return
                if exc.errno == errno.EPERM and node.keep_on_eperm:
                    removed = False  # gluster refuses to remove .trashcan/internal_op
                    parent.skip = parent.skip | {node.name}
                else:
                    raise _os_error("rmdir", self._path(node), exc) from exc
            self._close(node)
            if removed:
                counts.dirs += 1
            with self._lock:
                parent.pending -= 1
                current = parent if parent.pending == 0 else None

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._check()
            time.sleep(min(left, _POLL_S))

    def _finish(self) -> None:
        """Everything is settled: the queue is empty, so wake every worker up to exit."""
        self._done.set()
        for _ in range(self._workers):
            self._queue.put_nowait(None)

    def _close(self, node: _Node) -> None:
        if node in self._open:
            self._open.discard(node)
            os.close(node.fd)


def wipe_tree(
    root: str | VerifiedRoot, *, workers: int = DEFAULT_WORKERS, stop: StopFlag | None = None
) -> WipeStats:
    """Remove everything below ``root`` (kept), then :func:`verify_empty` it.

    ``root`` is a path (opened here, symlink refused) or a :class:`VerifiedRoot`, which is
    used as it is: the path is never looked up again.

    ``stop`` (an Event, or a thread-safe callable: it is called from the worker threads) is
    checked between entries; when it is raised the wipe stops promptly with
    :class:`WipeInterrupted` and leaves the rest in place.  Any error other than an entry
    vanishing (ENOENT) aborts the wipe with a :class:`WipeError` carrying the progress made in
    ``.stats``: a disconnected mount (ENOTCONN, EIO) must fail the volume, not be retried or
    mistaken for a clean one.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    started = time.monotonic()
    root_fd, root = _open(root)
    engine: _Engine | None = None
    try:
        try:
            st = os.fstat(root_fd)
            if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
                os.fchmod(root_fd, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
        except OSError as exc:
            raise _os_error("stat", root, exc) from exc
        engine = _Engine(root, st.st_dev, workers, stop)
        top = _Node(root_fd, None, "", 0)
        top.skip = frozenset({TRASH_DIR})
        engine.run(top)
        _wipe_trash(root, root_fd, engine)
        _verify_dir(root_fd, root)
    except WipeError as exc:
        if engine is not None:
            exc.stats = engine.stats()
            exc.stats.seconds = time.monotonic() - started
        raise
    finally:
        if engine is not None:
            engine.close()
        if engine is None or not engine.stuck:
            os.close(root_fd)
    result = engine.stats()
    result.seconds = time.monotonic() - started
    return result


def _wipe_trash(root: str, root_fd: int, engine: _Engine) -> None:
    """Empty ``.trashcan`` last (the wipe itself may have filled it), then try to remove it."""
    path = os.path.join(root, TRASH_DIR)
    try:
        st = os.stat(TRASH_DIR, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _os_error("stat", path, exc) from exc
    if st.st_dev != engine.dev:
        raise WipeCrossDevice(f"{path} is on another device; not removed")
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(TRASH_DIR, dir_fd=root_fd)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _os_error("unlink", path, exc) from exc
        engine.main_counts.files += 1
        engine.main_counts.bytes += st.st_size
        return
    try:
        fd = os.open(TRASH_DIR, _DIR_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _os_error("open", path, exc) from exc
    node = _Node(fd, _Node(root_fd, None, "", 0), TRASH_DIR, 0)
    engine.adopt(node)
    try:
        if os.fstat(fd).st_dev != engine.dev:
            raise WipeCrossDevice(f"{path} is on another device; not removed")
    except OSError as exc:
        raise _os_error("stat", path, exc) from exc
    engine.run(node)
    engine.release_top(node)
    try:
        os.rmdir(TRASH_DIR, dir_fd=root_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return  # gluster's trash translator refuses: it stays, empty
        raise _os_error("rmdir", path, exc) from exc
    engine.main_counts.dirs += 1


def verify_empty(root: str | VerifiedRoot) -> None:
    """Raise :class:`WipeNotEmpty` unless ``root`` is empty.

    The only thing tolerated is gluster's ``.trashcan`` (a real directory on the same device)
    that is empty or holds nothing but an empty ``internal_op`` directory, because the server
    refuses to remove those.
    """
    fd, path = _open(root)
    try:
        _verify_dir(fd, path)
    finally:
        os.close(fd)


def _verify_dir(fd: int, root: str) -> None:
    """:func:`verify_empty` on an open directory (``wipe_tree`` checks the very inode it wiped)."""
    shown: list[str] = []
    count = 0
    try:
        dev = os.fstat(fd).st_dev
        with os.scandir(fd) as it:
            for entry in it:
                inside = _trash_leftovers(fd, dev) if entry.name == TRASH_DIR else None
                for name in [entry.name] if inside is None else inside:
                    count += 1
                    if len(shown) < 5:
                        shown.append(repr(name))
    except OSError as exc:
        raise _os_error("verify", root, exc) from exc
    if count:
        more = f" and {count - len(shown)} more" if count > len(shown) else ""
        raise WipeNotEmpty(f"{root} is not empty after the wipe: {', '.join(shown)}{more}")


def _trash_leftovers(root_fd: int, dev: int) -> list[str] | None:
    """What is left inside ``.trashcan``; None when it is not an acceptable trash directory."""
    try:
        st = os.stat(TRASH_DIR, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(st.st_mode) or st.st_dev != dev:
        return None
    fd = os.open(TRASH_DIR, _DIR_FLAGS, dir_fd=root_fd)
    try:
        names = os.listdir(fd)
        if names != [TRASH_INTERNAL_OP]:
            return [f"{TRASH_DIR}/{n}" for n in names]
        ist = os.stat(TRASH_INTERNAL_OP, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISDIR(ist.st_mode) or ist.st_dev != dev:
            return [f"{TRASH_DIR}/{TRASH_INTERNAL_OP}"]
        ifd = os.open(TRASH_INTERNAL_OP, _DIR_FLAGS, dir_fd=fd)
        try:
            return [f"{TRASH_DIR}/{TRASH_INTERNAL_OP}/{n}" for n in os.listdir(ifd)]
        finally:
            os.close(ifd)
    finally:
        os.close(fd)


def reset_root(root: str | VerifiedRoot, owner: tuple[int, int] | None, mode: int | None) -> None:
    """Give the emptied root the owner and mode the next tenant expects (through the fd)."""
    if mode is not None and not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {mode:#o} out of range")
    fd, path = _open(root)
    try:
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        if mode is not None:
            os.fchmod(fd, mode)  # after chown: chown clears set-id bits
    except OSError as exc:
        raise _os_error("reset", path, exc) from exc
    finally:
        os.close(fd)
