"""The Lease lock against the real API server: conflicts, expiry, release, races, renewal."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from recycler_job.clock import utcnow
from recycler_job.kube import LEASE, Kube
from recycler_job.lease import LeaseKeeper, LeaseLock, LeaseLost

pytestmark = pytest.mark.cluster
NS = "default"


def lock(kube: Kube, name: str, identity: str, duration: int = 30, clock=utcnow) -> LeaseLock:
    return LeaseLock(
        kube, namespace=NS, name=name, identity=identity, duration=duration, clock=clock
    )


def test_missing_lease_is_created_and_a_second_run_sees_the_holder(kube: Kube, unique: str) -> None:
    name = f"lease-{unique}"
    first = lock(kube, name, "run-a")
    assert first.try_acquire() is None
    spec = kube.get(LEASE, name, NS)["spec"]
    assert spec["holderIdentity"] == "run-a"
    assert spec["leaseDurationSeconds"] == 30
    holder = lock(kube, name, "run-b").try_acquire()
    assert holder is not None
    assert holder.identity == "run-a"
    assert holder.expires is not None and holder.expires > utcnow()


def test_expired_lease_is_taken_over_and_transitions_count(kube: Kube, unique: str) -> None:
    name = f"lease-{unique}"
    assert lock(kube, name, "run-a", duration=15).try_acquire() is None
    later = lambda: utcnow() + dt.timedelta(seconds=16)  # noqa: E731
    assert lock(kube, name, "run-b", duration=15, clock=later).try_acquire() is None
    spec = kube.get(LEASE, name, NS)["spec"]
    assert spec["holderIdentity"] == "run-b"
    assert spec["leaseTransitions"] == 1
    # not yet expired for a third run on the real clock
    assert lock(kube, name, "run-c").try_acquire() is not None


def test_release_lets_the_next_run_in_at_once(kube: Kube, unique: str) -> None:
    name = f"lease-{unique}"
    first = lock(kube, name, "run-a", duration=3600)
    assert first.try_acquire() is None
    first.release()
    assert not first.held
    assert kube.get(LEASE, name, NS)["spec"].get("holderIdentity") in (None, "")
    assert lock(kube, name, "run-b").try_acquire() is None


def test_concurrent_runs_exactly_one_wins(kube: Kube, unique: str) -> None:
    for round_ in range(5):
        name = f"lease-{unique}-{round_}"
        locks = [lock(kube, name, f"run-{i}") for i in range(4)]
        results: list[object] = [None] * len(locks)
        barrier = threading.Barrier(len(locks))

        def attempt(
            i: int,
            locks: list[LeaseLock] = locks,
            results: list[object] = results,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            results[i] = locks[i].try_acquire()

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(locks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, r in enumerate(results) if r is None]
        assert len(winners) == 1, results
        assert kube.get(LEASE, name, NS)["spec"]["holderIdentity"] == f"run-{winners[0]}"


def test_renew_detects_a_takeover(kube: Kube, unique: str) -> None:
    name = f"lease-{unique}"
    mine = lock(kube, name, "run-a", duration=15)
    assert mine.try_acquire() is None
    mine.renew()
    later = lambda: utcnow() + dt.timedelta(seconds=60)  # noqa: E731
    assert lock(kube, name, "run-b", duration=15, clock=later).try_acquire() is None
    with pytest.raises(LeaseLost):
        mine.renew()
    assert not mine.held
    mine.release()  # a lost lease is not released over the new holder
    assert kube.get(LEASE, name, NS)["spec"]["holderIdentity"] == "run-b"


def test_keeper_renews_and_flags_loss(kube: Kube, unique: str) -> None:
    name = f"lease-{unique}"
    mine = lock(kube, name, "run-a", duration=3)  # renews every second
    assert mine.try_acquire() is None
    before = kube.get(LEASE, name, NS)["spec"]["renewTime"]
    keeper = LeaseKeeper(mine).start()
    try:
        threading.Event().wait(2.5)
        assert kube.get(LEASE, name, NS)["spec"]["renewTime"] != before
        keeper.check()
        current = kube.get(LEASE, name, NS)
        current["spec"]["holderIdentity"] = "intruder"
        kube.replace(LEASE, current, NS)
        assert keeper.lost.wait(5), "keeper did not notice the takeover"
        with pytest.raises(LeaseLost):
            keeper.check()
    finally:
        keeper.stop()
