"""wipe_engine.py on a tree held in memory: the scheduling, settling and accounting that both
wipe backends share, without a file system in the way.

The backend here keeps a directory as a dict (name -> dict for a directory, int for a file's
size) and does what the real ones do with their primitives: scan, open a child, remove an
emptied directory, unlink batches (handed to other workers as gfapi_wipe.py does).
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from recycler_job.wipe import engine as wipe_engine
from recycler_job.wipe.engine import (
    Counts,
    Engine,
    LocalWork,
    Node,
    WipeError,
    WipeInterrupted,
    WipeNotEmpty,
)

Tree = dict[str, Any]
_Dir = Node[Tree, str]


class MemoryEngine(Engine[Tree, str]):
    """Every file is handed out in batches of two; `refill` adds entries after each scan of
    the directory it names (a tree that changes under the wipe)."""

    def __init__(
        self,
        workers: int = 4,
        stop: Callable[[], bool] | None = None,
        budget: wipe_engine.WorkerBudget | None = None,
    ) -> None:
        super().__init__("/mem", workers, stop, budget)
        self.refill: dict[str, Callable[[Tree], None]] = {}
        self.fail_scan: OSError | None = None
        self.refuse_rmdir: set[str] = set()
        self.closed: list[str] = []

    def scan(self, node: _Dir, local: LocalWork[Tree, str], counts: Counts) -> None:
        if self.fail_scan is not None:
            raise self.fail_scan
        batch: list[tuple[str, int]] = []
        subdirs: list[str] = []
        found = False
        for name, entry in list(node.ref.items()):
            self.check()
            if name in node.skip:
                continue
            found = True
            if isinstance(entry, dict):
                subdirs.append(name)
                if len(subdirs) >= wipe_engine.SUBDIR_BATCH:
                    node.more = True
                    break
            else:
                batch.append((name, entry))
                if len(batch) == 2:
                    self.hand_out(node, batch, counts)
                    batch = []
        if batch:
            self.unlink_batch(node, batch, counts)
        for name in subdirs:
            self.dispatch_child(node, name, local)
        node.found = found
        if (refill := self.refill.get(node.name)) is not None:
            refill(node.ref)

    def open_child(self, parent: _Dir, name: str) -> _Dir | None:
        entry = parent.ref.get(name)
        if entry is None:
            parent.ghosts = True
            return None
        node = _Dir(entry, parent, name, parent.depth + 1)
        node.keep_on_eperm = name in self.refuse_rmdir
        self.track(node)
        return node

    def remove_dir(self, parent: _Dir, node: _Dir) -> None:
        if node.name in self.refuse_rmdir:
            raise OSError(errno.EPERM, "Operation not permitted")
        if node.ref:
            raise OSError(errno.ENOTEMPTY, "Directory not empty")
        del parent.ref[node.name]

    def unlink_batch(self, node: _Dir, entries: list[tuple[str, int]], counts: Counts) -> None:
        for name, size in entries:
            self.check()
            if node.ref.pop(name, None) is not None:
                counts.files += 1
                counts.bytes += size

    def close_ref(self, ref: Tree) -> None:
        self.closed.append(repr(id(ref)))

    def show(self, name: str) -> str:
        return name


def tree(width: int, depth: int, files: int) -> Tree:
    top: Tree = {f"f{i}": 10 for i in range(files)}
    if depth:
        for i in range(width):
            top[f"d{i}"] = tree(width, depth - 1, files)
    return top


def wipe(engine: MemoryEngine, root: Tree) -> wipe_engine.WipeStats:
    engine.run(_Dir(root, None, ""), "/mem")
    return engine.stats()


def test_a_tree_is_emptied_and_every_entry_counted() -> None:
    root = tree(width=3, depth=3, files=5)  # 1 + 3 + 9 + 27 directories, 5 files each
    stats = wipe(MemoryEngine(), root)
    assert root == {}
    assert (stats.files, stats.dirs, stats.bytes) == (40 * 5, 39, 40 * 5 * 10)


def test_more_subdirectories_than_one_batch_are_taken_in_rescans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wipe_engine, "SUBDIR_BATCH", 2)
    monkeypatch.setattr(wipe_engine, "QUEUE_PER_WORKER", 1)
    root = tree(width=7, depth=2, files=1)
    stats = wipe(MemoryEngine(workers=2), root)
    assert root == {}
    assert stats.dirs == 7 + 49


def test_a_directory_that_keeps_filling_up_fails_after_the_last_pass() -> None:
    root = {"busy": {"x": 1}, "other": 1}
    engine = MemoryEngine()
    engine.refill["busy"] = lambda d: d.__setitem__("again", 1)
    with pytest.raises(
        WipeNotEmpty, match=rf"/mem/busy is still not empty after {wipe_engine.MAX_PASSES} passes"
    ):
        wipe(engine, root)
    assert "other" not in root  # the rest was wiped meanwhile


def test_the_stop_flag_interrupts_and_leaves_the_rest() -> None:
    root = tree(width=4, depth=3, files=20)
    seen = threading.Event()
    engine = MemoryEngine(stop=seen.is_set)
    engine.refill[""] = lambda d: seen.set()  # stop once the top has been scanned
    with pytest.raises(WipeInterrupted, match="wipe of /mem interrupted"):
        wipe(engine, root)
    assert root  # not everything went


def test_a_file_system_error_fails_the_wipe_with_its_errno() -> None:
    engine = MemoryEngine()
    engine.fail_scan = OSError(errno.ENOTCONN, "Transport endpoint is not connected")
    with pytest.raises(WipeError, match="Transport endpoint is not connected") as caught:
        wipe(engine, {"a": 1})
    assert caught.value.errno == errno.ENOTCONN
    assert not isinstance(caught.value, WipeInterrupted)


def test_a_directory_the_server_refuses_to_remove_is_kept_when_allowed() -> None:
    # gluster's .trashcan/internal_op: EPERM on rmdir is accepted for a node marked so.
    root: Tree = {"internal_op": {}, "f": 1}
    engine = MemoryEngine()
    engine.refuse_rmdir = {"internal_op"}
    stats = wipe(engine, root)
    assert root == {"internal_op": {}}
    assert (stats.files, stats.dirs) == (1, 0)


def test_paths_in_messages_start_at_the_run_label() -> None:
    engine = MemoryEngine()
    top = _Dir({}, None, "ignored")
    top.top = True
    child = _Dir({}, top, "a")
    grandchild = _Dir({}, child, "b")
    engine.label = "vol:/"
    assert engine.path(top) == "vol:/"
    assert engine.path(grandchild) == "vol:/a/b"
    assert engine.path(child, "c") == "vol:/a/c"


class _SlowToLook(threading.Event):
    """The run's "done" flag, as seen by a main thread that was descheduled: its first wait
    times out only after every worker has finished and exited."""

    def __init__(self) -> None:
        super().__init__()
        self.looked = False

    def wait(self, timeout: float | None = None) -> bool:
        if self.looked:
            return super().wait(timeout)
        self.looked = True
        super().wait()
        time.sleep(0.3)  # the workers take their sentinels and exit
        return False


def test_a_run_that_finishes_while_the_main_thread_looks_away_succeeds() -> None:
    root = tree(width=2, depth=2, files=3)
    engine = MemoryEngine()
    engine._done = _SlowToLook()
    stats = wipe(engine, root)
    assert root == {} and stats.dirs == 6


def test_the_wipe_skeleton_runs_the_steps_in_order_and_closes_the_top() -> None:
    root: Tree = {"a": {"f": 1}, "trash": {"g": 2}}
    engine = MemoryEngine()
    steps: list[str] = []
    top = _Dir(root, None, "")
    top.skip = frozenset({"trash"})

    def empty_trash(name: str) -> None:
        steps.append(f"trash {name}: {sorted(root)}")
        del root[name]

    stats = wipe_engine.wipe(
        engine,
        top,
        "/mem",
        time.monotonic(),
        prepare=lambda: steps.append("prepare"),
        trash=["trash"],
        empty_trash=empty_trash,
        verify=lambda: steps.append(f"verify: {root}"),
        strip_tenant_xattrs=lambda: steps.append("xattrs"),
        close_top=lambda: steps.append("close"),
    )
    assert steps == ["prepare", "trash trash: ['trash']", "verify: {}", "xattrs", "close"]
    assert (stats.files, stats.dirs) == (1, 1)
    assert stats.seconds > 0


def test_a_failed_step_of_the_skeleton_carries_the_progress_and_still_closes() -> None:
    root: Tree = {"a": {"f": 1}}
    closed: list[bool] = []

    def verify() -> None:
        raise WipeNotEmpty("/mem is not empty after the wipe")

    with pytest.raises(WipeNotEmpty) as caught:
        wipe_engine.wipe(
            MemoryEngine(),
            _Dir(root, None, ""),
            "/mem",
            time.monotonic(),
            trash=[],
            empty_trash=lambda name: None,
            verify=verify,
            strip_tenant_xattrs=lambda: None,
            close_top=lambda: closed.append(True),
        )
    assert caught.value.stats is not None
    assert (caught.value.stats.files, caught.value.stats.dirs) == (1, 1)
    assert closed == [True]
