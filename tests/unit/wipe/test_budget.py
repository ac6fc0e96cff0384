"""One worker budget shared by the wipes of a pass (wipe_engine.WorkerBudget): at most its size
of work items in flight across every wipe that shares it, handed over first come, first
served, and a wipe waiting for a slot still stops between entries."""

from __future__ import annotations

import threading
import time

import pytest

from recycler_job.wipe.engine import (
    POLL_S,
    Abort,
    Counts,
    Item,
    LocalWork,
    WipeInterrupted,
    WorkerBudget,
)
from tests.unit.wipe.test_engine import MemoryEngine, Tree, _Dir, tree


class InFlight:
    """Counts the work items being processed at once, overall and per engine."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak = 0
        self.peak_by: dict[str, int] = {}
        self.overlapped = False  # both engines had an item in flight at the same moment

    def enter(self, who: str) -> None:
        with self.lock:
            self.now[who] = self.now.get(who, 0) + 1
            self.peak = max(self.peak, sum(self.now.values()))
            self.peak_by[who] = max(self.peak_by.get(who, 0), self.now[who])
            self.overlapped = self.overlapped or sum(1 for n in self.now.values() if n) > 1

    def leave(self, who: str) -> None:
        with self.lock:
            self.now[who] -= 1


class SlowEngine(MemoryEngine):
    """Each work item takes ``delay`` seconds (a brick round trip) and is counted in flight."""

    def __init__(
        self, who: str, flight: InFlight, budget: WorkerBudget | None, delay: float = 0.003
    ) -> None:
        super().__init__(workers=4, budget=budget)
        self.who, self.flight, self.delay = who, flight, delay

    def _process(self, item: Item[Tree, str], local: LocalWork[Tree, str], counts: Counts) -> None:
        self.flight.enter(self.who)
        try:
            time.sleep(self.delay)
            super()._process(item, local, counts)
        finally:
            self.flight.leave(self.who)


def run_together(*jobs: tuple[MemoryEngine, Tree]) -> list[BaseException]:
    """Run each engine on its tree in its own thread at the same time; the errors raised."""
    errors: list[BaseException] = []

    def one(engine: MemoryEngine, root: Tree) -> None:
        try:
            engine.run(_Dir(root, None, ""), "/mem")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_two_concurrent_wipes_never_have_more_in_flight_than_the_shared_budget() -> None:
    budget = WorkerBudget(4)
    flight = InFlight()
    roots = [tree(width=4, depth=2, files=12), tree(width=4, depth=2, files=12)]
    first = SlowEngine("a", flight, budget)
    second = SlowEngine("b", flight, budget)
    assert run_together((first, roots[0]), (second, roots[1])) == []
    assert roots == [{}, {}]
    assert flight.overlapped  # the two wipes really ran at the same time
    assert flight.peak <= 4  # 2 x 4 workers, never more than the 4 slots at once
    assert budget.in_use_peak == 4


def test_a_wipe_that_ends_leaves_its_slots_to_the_other() -> None:
    budget = WorkerBudget(4)
    flight = InFlight()
    small, large = {"f": 1}, tree(width=6, depth=2, files=30)
    done_small = SlowEngine("small", flight, budget)
    big = SlowEngine("large", flight, budget, delay=0.005)
    assert run_together((done_small, small), (big, large)) == []
    assert small == {} and large == {}
    assert flight.peak_by["large"] == 4  # every slot once the small wipe was over


def test_slots_go_to_the_longest_waiting_worker() -> None:
    budget = WorkerBudget(1)
    budget.acquire(lambda: None)
    got: list[str] = []

    def wait_for_it() -> None:
        budget.acquire(lambda: None)
        got.append("T")

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    deadline = time.monotonic() + 5
    while not budget._waiting and time.monotonic() < deadline:
        time.sleep(0.005)
    budget.release()
    # Asking again right after giving it back does not take it from the one who waited.
    polls = 0

    def give_up() -> None:
        nonlocal polls
        polls += 1
        if polls > 3:
            raise Abort

    with pytest.raises(Abort):
        budget.acquire(give_up)
    waiter.join(5)
    assert got == ["T"]
    budget.release()
    assert budget._free == 1 and not budget._waiting  # nothing lost by the one that gave up


def test_a_wipe_waiting_for_a_slot_still_stops() -> None:
    budget = WorkerBudget(1)
    budget.acquire(lambda: None)  # another volume's wipe holds the only slot
    stop = threading.Event()
    engine = SlowEngine("waiting", InFlight(), budget)
    engine._stop = stop.is_set
    root = tree(width=2, depth=1, files=3)
    threading.Timer(3 * POLL_S, stop.set).start()
    started = time.monotonic()
    errors = run_together((engine, root))
    assert [type(e) for e in errors] == [WipeInterrupted]
    assert time.monotonic() - started < 2
    assert root == tree(width=2, depth=1, files=3)  # nothing removed without a slot
    budget.release()
    assert budget._free == 1 and not budget._waiting


def test_a_budget_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        WorkerBudget(0)
