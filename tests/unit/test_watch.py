"""The during-wipe watcher: the first change (or failure to look) raises the wipe's stop flag."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from recycler_job.watch import VolumeChanged, Watcher
from tests.sandbox.objects import wait_for


def waited(condition: Callable[[], bool]) -> float:
    """Seconds until `condition` holds, polled every 10 ms (at most 5 s)."""
    started = time.monotonic()
    wait_for(condition, timeout=5.0, interval=0.01, what="the watcher")
    return time.monotonic() - started


def test_a_change_raises_the_flag_within_one_interval() -> None:
    changed = threading.Event()
    calls: list[float] = []

    def probe() -> None:
        calls.append(time.monotonic())
        if changed.is_set():
            raise VolumeChanged("pv/x was modified")

    with Watcher({"pv": probe}, interval=0.1) as watcher:
        waited(lambda: len(calls) >= 3)
        assert not watcher.changed()
        watcher.check()
        changed.set()
        assert waited(watcher.changed) < 0.5
        with pytest.raises(VolumeChanged, match="pv/x was modified"):
            watcher.check()
    assert watcher.reason == "pv/x was modified"


def test_failing_to_look_stops_the_wipe_too() -> None:
    def probe() -> None:
        raise OSError("connection refused")

    with Watcher({"gluster clients": probe}, interval=0.05) as watcher:
        waited(watcher.changed)
    assert watcher.reason == "could not check gluster clients: OSError: connection refused"


def test_probes_run_independently_a_slow_one_does_not_delay_the_others() -> None:
    release = threading.Event()

    def slow() -> None:
        release.wait(5)

    def fast() -> None:
        raise VolumeChanged("Lease taken")

    watcher = Watcher({"slow": slow, "lease": fast}, interval=0.05).start()
    try:
        assert waited(watcher.changed) < 1.0
        assert watcher.reason == "Lease taken"
    finally:
        release.set()
        watcher.stop()


def test_no_probe_after_stop() -> None:
    calls: list[float] = []
    watcher = Watcher({"pv": lambda: calls.append(time.monotonic())}, interval=0.05).start()
    waited(lambda: len(calls) >= 2)
    watcher.stop()
    count = len(calls)
    time.sleep(0.3)
    assert len(calls) == count


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Watcher({}, interval=0)


def test_a_probe_still_running_when_the_wipe_ends_is_heard() -> None:
    """Issue 17 item 6: a probe that raises 1.5 s after the last entry went still stops the
    release (it used to be dropped after 2 intervals)."""
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(1.5)
        raise RuntimeError("glusterd did not answer")

    watcher = Watcher({"gluster clients": slow}, interval=0.05, bounds={"gluster clients": 5.0})
    with watcher:
        assert started.wait(2)
    assert watcher.changed()
    with pytest.raises(VolumeChanged, match="could not check gluster clients"):
        watcher.check()


def test_a_probe_that_outlives_its_bound_counts_as_could_not_check() -> None:
    release = threading.Event()
    started = threading.Event()

    def hung() -> None:
        started.set()
        release.wait(10)

    watcher = Watcher({"gluster clients": hung}, interval=0.05, bounds={"gluster clients": 0.3})
    with watcher:
        assert started.wait(2)
    release.set()
    with pytest.raises(VolumeChanged, match=r"no answer within 0\.3s"):
        watcher.check()
