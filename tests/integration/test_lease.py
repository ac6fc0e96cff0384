"""The Lease lock against the real API server: conflicts, expiry, release, races, renewal, and
a pass whose API server stops answering."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import threading
import time

import pytest

from recycler_job.clock import utcnow
from recycler_job.failpoints import ENV as FAILPOINTS
from recycler_job.kube import LEASE, Kube
from recycler_job.lease import LeaseKeeper, LeaseLock, LeaseLost
from tests.integration.scenario import Follow, Scenario
from tests.sandbox.objects import wait_for

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
    mine = lock(kube, name, "run-a", duration=6)  # renews every 2 s
    assert mine.try_acquire() is None
    before = kube.get(LEASE, name, NS)["spec"]["renewTime"]
    first_deadline = None
    keeper = LeaseKeeper(mine).start()
    try:
        first_deadline = keeper.deadline
        wait_for(
            lambda: kube.get(LEASE, name, NS)["spec"]["renewTime"] != before,
            timeout=10,
            what="a renewal",
        )
        wait_for(lambda: keeper.deadline > first_deadline, timeout=5, what="the hold to extend")
        keeper.check()
        current = kube.get(LEASE, name, NS)
        current["spec"]["holderIdentity"] = "intruder"
        kube.replace(LEASE, current, NS)
        assert keeper.lost.wait(5), "keeper did not notice the takeover"
        with pytest.raises(LeaseLost):
            keeper.check()
    finally:
        keeper.stop()


@pytest.mark.gluster
def test_nothing_is_removed_after_the_lease_expires_on_a_frozen_api_server(
    scenario: Scenario,
) -> None:
    """kube-apiserver stopped (SIGSTOP) for longer than the Lease while a pass is wiping:
    the stalled watches stop the wipe, renewals hang, the hold ends on the monotonic clock 5 s
    before the Lease can expire, and no file is removed after that; exit 1 with the Lease
    reported lost."""
    files = {f"d{i:02}/f{j}": "x" for i in range(60) for j in range(5)}
    pv = scenario.released_volume("frozen", files)
    initial = scenario.brick_files(pv)
    assert initial >= len(files)
    apiserver = scenario.plane.procs["kube-apiserver"]
    # One worker, 0.4 s per directory: the wipe takes far longer than the 15 s Lease.
    run = Follow(
        scenario.start(
            "--lease-duration",
            "15",
            "--wipe-workers",
            "1",
            env={FAILPOINTS: "wipe-directory=sleep:0.4"},
        )
    )
    frozen = False
    try:
        wait_for(lambda: scenario.brick_files(pv) < initial, interval=0.05, what="the wipe")
        os.kill(apiserver.pid, signal.SIGSTOP)
        frozen = True
        stopped = time.monotonic()
        # Our hold ends 10 s after the last renewal sent (before the SIGSTOP); the Lease on
        # the server cannot expire before 15 s after it. When was that renewal?
        lost_at, lost = run.wait_for_line("lease lost: not renewed for", timeout=60)
        match = re.search(r"not renewed for ([0-9.]+)s", lost)
        assert match, lost
        renewed = lost_at - float(match.group(1))
        assert renewed <= stopped
        # The watches stall with the server: the view goes stale after 2 s and stops the wipe
        # before the hold ends (10 s); either rule alone would stop it before the expiry.
        run.wait_for_line("stopping the wipe: the view of the cluster is not current")
        # Still before the Lease can expire on the server: what is left now must stay.
        wait_for(lambda: time.monotonic() > renewed + 13.5, timeout=30, what="expiry - 1.5 s")
        before_expiry = scenario.brick_files(pv)
        assert time.monotonic() < renewed + 14.5, "counted too late to mean anything"
        # Past any expiry on the server: another run could have taken the Lease by now.
        wait_for(lambda: time.monotonic() > stopped + 16, timeout=60, what="the Lease to expire")
        assert scenario.brick_files(pv) == before_expiry, "files removed after the Lease expired"
        os.kill(apiserver.pid, signal.SIGCONT)
        frozen = False
        code = run.wait(timeout=240)
    finally:
        if frozen:
            os.kill(apiserver.pid, signal.SIGCONT)
        run.kill()
    assert 0 < before_expiry < initial, "the wipe was not stopped midway: nothing was tested"
    assert scenario.brick_files(pv) == before_expiry, "files removed after the Lease expired"
    assert code == 1, run.stderr
    assert scenario.pv(pv)["spec"].get("claimRef"), "a partly wiped volume is never released"
    report = json.loads((scenario.tmp / "report.json").read_text())
    assert report["outcome"] == "lease-lost" and report["lease"] == "lost"
    volume = next(v for v in report["volumes"] if v["pv"] == pv)
    assert volume["outcome"] == "failed" and "not current" in volume["error"], volume
    assert volume["files"] == initial - before_expiry  # every removal was the wipe's
