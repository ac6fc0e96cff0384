"""The parallel tree walk both wipe backends share: scheduling, settling and accounting.

A backend (fuse.py over a FUSE mount, gfapi_handles.py over libgfapi) supplies only its file
system primitives: how to scan a directory, open a child directory without following it,
remove an emptied directory, unlink a batch of names and close what it opened.  The engine
decides what runs where and when a directory is done; :func:`wipe` is the whole wipe around
it (trash last, emptiness proof, stats, cleanup), the same for both.

* A pool of threads works on a bounded queue (plus per-worker overflow stacks bounded by the
  subdirectory batch times the depth), so memory does not grow with the size of the tree.
* ``pending`` on a directory counts what must finish before it can be settled: its running
  scan, batches of its names handed to other workers, and its child directories.  Whoever
  drops it to zero settles the directory: re-scan it (more subdirectories than one batch, or
  something changed under the scan), remove it, or -- for the top directory, which is kept --
  prove it empty with one more scan and finish the run.
* A directory that still is not empty after ``MAX_PASSES`` counted re-scans fails the wipe.
  Entries listed but not yet looked up (gluster's trash translator creates directories below
  ``.trashcan`` without a gfid for about a second) get a backed-off re-scan.
* A worker holds a slot of a :class:`WorkerBudget` while it works on an item.  The pass
  hands one budget to every wipe it runs at the same time, so that ``--wipe-workers`` bounds
  the entries in flight across all of them; slots are handed over in the order they were
  asked for, so a wipe that ends (or waits) frees its share for the others at once.
* The stop flag is checked between entries; the first error (or the stop) aborts every
  worker.  Workers still blocked in a file system call after a grace period are counted as
  stuck, and then nothing they may still use is closed.
"""

from __future__ import annotations

import errno
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from recycler_job import failpoints
from recycler_job.errors import RecyclerError, VolumeError

DEFAULT_WORKERS = 16
"""The default of --wipe-workers; tests/unit/wipe/test_fuse.py holds Config's to it."""
SUBDIR_BATCH = 512  # subdirectories taken from one scan before the directory is re-scanned
MAX_PASSES = 20  # re-scans of a directory that still is not empty before giving up
GHOST_BACKOFF_S = 0.1  # first re-scan delay when listed entries could not be looked up
GHOST_BACKOFF_MAX_S = 2.0
QUEUE_PER_WORKER = 4
POLL_S = 0.05
_JOIN_GRACE_S = 10.0

StopFlag: TypeAlias = threading.Event | Callable[[], bool]

R = TypeVar("R")  # what a backend holds a directory by: an fd, a gfapi handle
K = TypeVar("K", str, bytes)  # how it names entries


@dataclass
class WipeStats:
    """What one wipe removed: non-directories, directories, bytes (st_size of non-directories)."""

    files: int = 0
    dirs: int = 0
    bytes: int = 0
    seconds: float = 0.0


class WipeError(VolumeError):
    """The wipe failed or could not be proven complete; the volume must not be reused."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.stats: WipeStats | None = None  # progress made before the failure, if any


class WipeInterrupted(WipeError):
    """The stop flag was raised; the remaining entries were left in place."""


class WipeNotEmpty(WipeError):
    """Something is left below the root after the wipe."""


def wipe_error(op: str, path: str, exc: OSError) -> WipeError:
    """``op path: reason`` as a WipeError carrying the errno."""
    return WipeError(f"{op} {path}: {exc.strerror or exc}", errno=exc.errno)


def ensure_empty(label: str, leftovers: Iterable[object]) -> None:
    """Raise WipeNotEmpty, naming up to five of ``leftovers`` and how many more, unless there
    are none."""
    shown: list[str] = []
    count = 0
    for item in leftovers:
        count += 1
        if len(shown) < 5:
            shown.append(repr(item))
    if count:
        more = f" and {count - len(shown)} more" if count > len(shown) else ""
        raise WipeNotEmpty(f"{label} is not empty after the wipe: {', '.join(shown)}{more}")


# The root directory (kept) keeps its extended attributes through a wipe unless they are removed:
# the tenant's `user.*` and its POSIX ACLs go; gluster's own `trusted.*` (gfid, layout,
# volume-id), `security.*` (SELinux labels) and any other `system.*` name stay.
_TENANT_ACLS = frozenset({"system.posix_acl_access", "system.posix_acl_default"})


def is_tenant_xattr(name: str | bytes) -> bool:
    """Whether the root's extended attribute ``name`` is the old tenant's, removed by a wipe."""
    text = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
    return text.startswith("user.") or text in _TENANT_ACLS


def stop_callable(stop: StopFlag | None) -> Callable[[], bool] | None:
    """The stop flag as a thread-safe callable (an Event's ``is_set``)."""
    if stop is None:
        return None
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


class WorkerBudget:
    """At most ``size`` work items in flight across every engine that shares this budget.

    One budget per pass is shared by the volumes wiped at the same time (``--parallel``), so
    that four wipes do not run four times ``--wipe-workers`` file system calls at once on a
    node whose CPUs one wipe already keeps busy.  Slots are handed directly to the longest
    waiting worker (first come, first served): a thread that gives a slot back and asks again
    at once cannot take it from a worker of another wipe that was waiting, so no wipe starves
    another.  A wipe alone uses every slot.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a worker budget needs at least one slot")
        self.size = size
        self._lock = threading.Lock()
        self._free = size
        self._waiting: deque[threading.Event] = deque()
        self.in_use_peak = 0  # the most slots held at once (tests, benchmarks)

    def _granted(self) -> None:
        used = self.size - self._free
        self.in_use_peak = max(self.in_use_peak, used)

    def acquire(self, check: Callable[[], None]) -> None:
        """Wait for a slot; ``check`` runs every ``POLL_S`` while waiting and may raise (an
        abort or a stop), in which case no slot is held."""
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                self._granted()
                return
            turn = threading.Event()
            self._waiting.append(turn)
        try:
            while not turn.wait(POLL_S):
                check()
        except BaseException:
            with self._lock:
                if not turn.is_set():
                    self._waiting.remove(turn)
                    raise
            self.release()  # handed over while giving up: pass it on
            raise

    def release(self) -> None:
        """Give a slot back: to the longest waiting worker, if any."""
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()  # still in use: it changes hands
                return
            self._free += 1


class Node(Generic[R, K]):
    """A directory inside the tree, held by ``ref`` (an fd, a handle); see the module doc."""

    __slots__ = (
        "depth",
        "found",
        "ghosts",
        "keep_on_eperm",
        "more",
        "name",
        "needs_rescan",
        "parent",
        "passes",
        "pending",
        "ref",
        "skip",
        "top",
    )

    def __init__(self, ref: R, parent: Node[R, K] | None, name: K, depth: int = 0) -> None:
        self.ref: R = ref
        self.parent: Node[R, K] | None = parent
        self.name: K = name
        self.depth = depth
        self.pending = 0
        self.needs_rescan = False  # something changed under a scan (a race): look again
        self.more = False  # the last scan stopped at SUBDIR_BATCH: continue
        self.found = False  # the last scan saw an entry (the top needs one more, empty, pass)
        self.ghosts = False  # listed, but ENOENT on lookup (see the module doc)
        self.passes = 0
        self.top = False
        self.keep_on_eperm = False  # gluster refuses to remove .trashcan/internal_op
        self.skip: frozenset[K] = frozenset()


class _Scan(Generic[R, K]):
    __slots__ = ("node",)

    def __init__(self, node: Node[R, K]) -> None:
        self.node: Node[R, K] = node


class _Child(Generic[R, K]):
    __slots__ = ("name", "parent")

    def __init__(self, parent: Node[R, K], name: K) -> None:
        self.parent: Node[R, K] = parent
        self.name: K = name


class _Batch(Generic[R, K]):
    __slots__ = ("entries", "node")

    def __init__(self, node: Node[R, K], entries: list[tuple[K, int]]) -> None:
        self.node: Node[R, K] = node
        self.entries: list[tuple[K, int]] = entries


Item: TypeAlias = _Scan[R, K] | _Child[R, K] | _Batch[R, K]
LocalWork: TypeAlias = deque[Item[R, K]]  # a worker's own overflow stack


class Counts:
    """One thread's share of the accounting (summed by ``Engine.stats``)."""

    __slots__ = ("bytes", "dirs", "files")

    def __init__(self) -> None:
        self.files = 0
        self.dirs = 0
        self.bytes = 0


class Abort(RecyclerError):
    """Unwinds a worker after the engine has been told to stop."""


class Engine(ABC, Generic[R, K]):
    """Parallel passes over the subtree of a top directory (kept); one backend's primitives."""

    thread_name = "wipe"

    def __init__(
        self,
        label: str,
        workers: int,
        stop: StopFlag | None,
        budget: WorkerBudget | None = None,
    ) -> None:
        self.label = label  # the top directory of the current run, for messages
        self._workers = workers
        # Shared with the other wipes of the pass, or this wipe's own.
        self.budget = budget if budget is not None else WorkerBudget(workers)
        self._stop = stop_callable(stop)
        self.lock = threading.Lock()
        # None is the "run finished" sentinel, one per worker.
        self._queue: queue.Queue[Item[R, K] | None] = queue.Queue(
            maxsize=workers * QUEUE_PER_WORKER
        )
        self._abort = threading.Event()
        self._done = threading.Event()
        self._error: WipeError | None = None
        self._open: set[Node[R, K]] = set()
        self.main_counts = Counts()  # work done on the calling thread
        self._counts: list[Counts] = [self.main_counts]
        self.stuck = 0
        self._threads: list[threading.Thread] = []  # every worker of every run
        self.top: Node[R, K] | None = None

    # ---- the backend's primitives --------------------------------------------------------

    @abstractmethod
    def scan(self, node: Node[R, K], local: LocalWork[R, K], counts: Counts) -> None:
        """One streaming pass over ``node``: remove (or ``hand_out``) its non-directories,
        ``dispatch_child`` up to ``SUBDIR_BATCH`` subdirectories (then set ``node.more``), and
        set ``node.found`` to whether it saw anything."""

    @abstractmethod
    def open_child(self, parent: Node[R, K], name: K) -> Node[R, K] | None:
        """The subdirectory ``name``, opened without following it and ``track``ed; None when
        it is gone (set ``parent.ghosts``) or no longer a directory (``parent.needs_rescan``)."""

    @abstractmethod
    def remove_dir(self, parent: Node[R, K], node: Node[R, K]) -> None:
        """Remove the emptied directory ``node`` from ``parent``; OSError as the system says."""

    @abstractmethod
    def close_ref(self, ref: R) -> None:
        """Close what a node holds."""

    @abstractmethod
    def show(self, name: K) -> str:
        """A name as text for messages."""

    def unlink_batch(self, node: Node[R, K], entries: list[tuple[K, int]], counts: Counts) -> None:
        """Unlink ``(name, size)`` entries of ``node`` (backends that ``hand_out`` batches)."""
        raise NotImplementedError

    def worker_started(self) -> None:
        """Runs first on every worker thread."""

    # ---- driving -------------------------------------------------------------------------

    def run(self, top: Node[R, K], label: str) -> None:
        """Empty ``top`` (which is kept) using the worker pool; raise the first error."""
        self.top = top
        self.label = label
        top.top = True
        top.pending = 1
        self._done.clear()
        self._queue.put(_Scan(top))
        threads: list[threading.Thread] = []
        try:
            for i in range(self._workers):
                counts = Counts()
                t = threading.Thread(
                    target=self._worker, args=(counts,), name=f"{self.thread_name}-{i}", daemon=True
                )
                try:
                    t.start()
                except RuntimeError as exc:  # out of threads or memory: stop those started
                    self._fail(WipeError(f"wipe of {label}: cannot start a worker: {exc}"))
                    break
                self._counts.append(counts)
                threads.append(t)
                self._threads.append(t)
            while not self._done.wait(POLL_S):
                if self._abort.is_set():
                    break
                if self._stop is not None and self._stop():
                    self._fail(WipeInterrupted(f"wipe of {label} interrupted"))
                    break
                if not any(t.is_alive() for t in threads):
                    if self._done.is_set():
                        break  # finished between the wait above and this check
                    self._fail(WipeError(f"wipe of {label}: every worker exited early"))
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
        while True:  # the sentinels of workers that ended otherwise
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def close(self) -> None:
        """Close what an aborted run left open, unless a worker may still use it."""
        self.stuck = sum(t.is_alive() for t in self._threads)
        if self.stuck:
            return  # a blocked worker may wake up and use it: leak rather than risk reuse
        for node in list(self._open):
            self.release(node)

    def stats(self) -> WipeStats:
        """Everything removed so far, by every thread."""
        total = WipeStats()
        for c in self._counts:
            total.files += c.files
            total.dirs += c.dirs
            total.bytes += c.bytes
        return total

    def track(self, node: Node[R, K]) -> None:
        """Close ``node`` in :meth:`close` if a run is aborted before it is released."""
        with self.lock:
            self._open.add(node)

    def release(self, node: Node[R, K]) -> None:
        """Close ``node`` (once)."""
        with self.lock:
            if node not in self._open:
                return
            self._open.discard(node)
        self.close_ref(node.ref)

    def path(self, node: Node[R, K], name: K | None = None) -> str:
        """Where ``node`` (or its entry ``name``) is, below the current run's top, for messages."""
        parts: list[str] = [] if name is None else [self.show(name)]
        current: Node[R, K] | None = node
        while current is not None and not current.top:
            parts.append(self.show(current.name))
            current = current.parent
        parts.reverse()
        return "/".join([self.label.rstrip("/"), *parts]) if parts else self.label

    # ---- what the primitives call --------------------------------------------------------

    def check(self) -> None:
        """Between entries: unwind when aborted or stopped."""
        if self._abort.is_set():
            raise Abort
        if self._stop is not None and self._stop():
            self._fail(WipeInterrupted(f"wipe of {self.label} interrupted"))
            raise Abort

    def dispatch_child(self, node: Node[R, K], name: K, local: LocalWork[R, K]) -> None:
        """Queue the subdirectory ``name`` of ``node`` for a worker."""
        with self.lock:
            node.pending += 1
        self._submit(_Child(node, name), local)

    def hand_out(self, node: Node[R, K], batch: list[tuple[K, int]], counts: Counts) -> None:
        """Give a batch of names to an idle worker; unlink it here when the queue is full."""
        with self.lock:
            node.pending += 1
        try:
            self._queue.put_nowait(_Batch(node, batch))
        except queue.Full:
            with self.lock:
                node.pending -= 1
            self.unlink_batch(node, batch, counts)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up to an abort or a stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check()
            time.sleep(min(left, POLL_S))

    # ---- worker --------------------------------------------------------------------------

    def _fail(self, error: WipeError) -> None:
        with self.lock:
            if self._error is None:
                self._error = error
        self._abort.set()

    def _worker(self, counts: Counts) -> None:
        local: LocalWork[R, K] = deque()
        try:
            self.worker_started()
            while not self._abort.is_set():
                item: Item[R, K] | None
                if local:
                    item = local.pop()
                else:
                    try:
                        item = self._queue.get(timeout=POLL_S)
                    except queue.Empty:
                        continue
                    if item is None:
                        return
                self.budget.acquire(self.check)
                try:
                    failpoints.hit("wipe-directory")  # tests: slow a wipe down to act during it
                    self._process(item, local, counts)
                finally:
                    self.budget.release()
                # Share the oldest (shallowest, usually largest) pending work with idle workers.
                while len(local) > 1 and not self._queue.full():
                    try:
                        self._queue.put_nowait(local.popleft())
                    except queue.Full:
                        break
        except Abort:
            return
        except WipeError as exc:
            self._fail(exc)
        except OSError as exc:
            self._fail(WipeError(f"wipe of {self.label}: {exc.strerror or exc}", errno=exc.errno))
        except Exception as exc:
            self._fail(WipeError(f"wipe of {self.label}: internal error: {exc!r}"))

    def _submit(self, item: Item[R, K], local: LocalWork[R, K]) -> None:
        """Offer work to idle workers; keep it when the bounded queue is full (never block)."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            local.append(item)

    def _process(self, item: Item[R, K], local: LocalWork[R, K], counts: Counts) -> None:
        if isinstance(item, _Batch):
            self.unlink_batch(item.node, item.entries, counts)
            self._release(item.node, local, counts)
        elif isinstance(item, _Scan):
            self.scan(item.node, local, counts)
            self._release(item.node, local, counts)
        else:
            child = self.open_child(item.parent, item.name)
            if child is None:
                self._release(item.parent, local, counts)
                return
            child.pending = 1
            self.scan(child, local, counts)
            self._release(child, local, counts)

    def _release(self, node: Node[R, K], local: LocalWork[R, K], counts: Counts) -> None:
        with self.lock:
            node.pending -= 1
            if node.pending:
                return
        self._settle(node, local, counts)

    def _rescan(self, node: Node[R, K], local: LocalWork[R, K], counted: bool) -> None:
        """Scan ``node`` again; ``counted`` passes are the ones that may never end."""
        if counted:
            node.passes += 1
            if node.passes > MAX_PASSES:
                raise WipeNotEmpty(
                    f"{self.path(node)} is still not empty after {MAX_PASSES} passes"
                )
            if node.ghosts:
                node.ghosts = False
                self.sleep(min(GHOST_BACKOFF_S * 2 ** (node.passes - 1), GHOST_BACKOFF_MAX_S))
        node.needs_rescan = node.more = False
        node.pending = 1
        self._submit(_Scan(node), local)

    def _settle(self, node: Node[R, K], local: LocalWork[R, K], counts: Counts) -> None:
        """Everything below ``node`` has finished: remove it, re-scan it, or finish the run."""
        current: Node[R, K] | None = node
        while current is not None:
            node = current
            if node.more and not node.needs_rescan:
                self._rescan(node, local, counted=False)  # progress, not a retry
                return
            if node.needs_rescan:
                self._rescan(node, local, counted=True)
                return
            if node.top:
                if node.found:
                    self._rescan(node, local, counted=True)  # prove it empty with one more pass
                else:
                    self._finish()
                return
            parent = node.parent
            assert parent is not None
            removed = True
            try:
                self.remove_dir(parent, node)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    removed = False
                elif exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    self._rescan(node, local, counted=True)
                    return
                elif exc.errno == errno.EPERM and node.keep_on_eperm:
                    removed = False  # gluster refuses to remove .trashcan/internal_op
                    parent.skip = parent.skip | {node.name}
                else:
                    raise wipe_error("rmdir", self.path(node), exc) from exc
            self.release(node)
            if removed:
                counts.dirs += 1
            with self.lock:
                parent.pending -= 1
                current = parent if parent.pending == 0 else None

    def _finish(self) -> None:
        """Everything is settled: the queue is empty, so wake every worker up to exit."""
        self._done.set()
        for _ in range(self._workers):
            self._queue.put_nowait(None)


def wipe(
    engine: Engine[R, K],
    top: Node[R, K],
    label: str,
    started: float,
    *,
    trash: Sequence[K],
    empty_trash: Callable[[K], None],
    verify: Callable[[], None],
    strip_tenant_xattrs: Callable[[], None],
    close_top: Callable[[], None],
    prepare: Callable[[], None] | None = None,
) -> WipeStats:
    """One wipe of ``top`` (kept), the same for every backend; the callables are its primitives.

    ``prepare`` checks before anything is removed; then the tree, then each ``trash`` name
    last (the wipe itself fills the trash: wipe/trash.py), then ``verify`` proves ``top``
    empty and ``strip_tenant_xattrs`` clears it.  A WipeError carries the progress made in
    ``.stats``.  ``close_top`` is skipped while a worker is still blocked in a call: it may
    still use ``top``.
    """

    def stats() -> WipeStats:
        total = engine.stats()
        total.seconds = time.monotonic() - started
        return total

    try:
        if prepare is not None:
            prepare()
        engine.run(top, label)
        for name in trash:
            empty_trash(name)
        verify()
        strip_tenant_xattrs()
    except WipeError as exc:
        exc.stats = stats()
        raise
    finally:
        engine.close()
        if not engine.stuck:
            close_top()
    return stats()
