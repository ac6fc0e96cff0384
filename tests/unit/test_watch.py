"""The during-wipe watcher: the first change (or failure to look) raises the wipe's stop flag."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import cast

import pytest

from recycler_job import watch
from recycler_job.gluster.clients import ClientReport
from recycler_job.gluster.errors import VolumeInUse
from recycler_job.gluster.parse import BrickClients
from recycler_job.lease import LeaseKeeper, LeaseLost
from recycler_job.watch import (
    OWN_GRAPH_TRIES,
    VolumeChanged,
    Watcher,
    clients_besides_own,
    volume_watcher,
)
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


def test_a_volume_wipe_stops_once_the_lease_is_no_longer_ours() -> None:
    """The Lease probe of volume_watcher asks the keeper, without a request of its own."""

    class Keeper:
        def check(self) -> None:
            raise LeaseLost("renewal overdue")

    with volume_watcher(("h1",), "vol1", None, {}, cast(LeaseKeeper, Keeper())) as watcher:
        wait_for(watcher.changed, timeout=3.0, interval=0.01, what="the Lease probe")
    assert watcher.reason == "the Lease is no longer ours: renewal overdue"


class ClientLists:
    """`client_report` answering from a list of client-kind counts, one per call (the last
    repeats); counts the requests sent through our connection in between."""

    def __init__(self, *kinds: dict[str, int]) -> None:
        self.kinds = list(kinds)
        self.asked = 0
        self.requests: list[int] = []  # how many times the clients had been asked, per request

    def report(self, hosts: Sequence[str], volume: str, *, timeout: float) -> ClientReport:
        kinds = self.kinds[min(self.asked, len(self.kinds) - 1)]
        self.asked += 1
        widest = sum(kinds.values())
        connections = tuple(f"10.0.0.{i}:49{i:03}" for i in range(widest))
        brick = BrickClients(brick="h1:/b", online=True, connections=connections)
        return ClientReport(volume=volume, bricks=(brick,), kinds=kinds)

    def request(self) -> None:
        self.requests.append(self.asked)


def besides_own(lists: ClientLists, monkeypatch: pytest.MonkeyPatch) -> ClientReport:
    monkeypatch.setattr(watch, "client_report", lists.report)
    return clients_besides_own(
        ("h1",), "vol1", {"gfapi.x": 1}, lists.request, timeout=1.0, sleep=lambda s: None
    )


def test_our_own_client_listed_twice_is_asked_again_after_a_request_of_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our old graph is listed until our next request: one request, then the count is ours."""
    lists = ClientLists({"gfapi.x": 2}, {"gfapi.x": 1, "glustershd": 1})
    report = besides_own(lists, monkeypatch)
    assert report.kinds == {"gfapi.x": 1, "glustershd": 1}
    assert lists.requests == [1]


def test_a_second_client_of_our_kind_that_stays_is_not_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lists = ClientLists({"gfapi.x": 2})
    with pytest.raises(VolumeInUse, match=r"clients besides our own: 1 gfapi\.x$"):
        besides_own(lists, monkeypatch)
    assert lists.asked == OWN_GRAPH_TRIES
    assert len(lists.requests) == OWN_GRAPH_TRIES - 1


def test_a_client_of_another_kind_is_refused_without_asking_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only our own kinds can be our old graph: a `fuse` beside our gfapi client is not."""
    lists = ClientLists({"gfapi.x": 2, "fuse": 1}, {"gfapi.x": 1})
    with pytest.raises(VolumeInUse, match=r"besides our own: 1 fuse, 1 gfapi\.x$"):
        besides_own(lists, monkeypatch)
    assert (lists.asked, lists.requests) == (1, [])


def test_a_connection_gluster_cannot_name_is_refused_without_asking_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More connections on a brick than named clients: `unidentified`, never ours."""

    class Unnamed(ClientLists):
        def report(self, hosts: Sequence[str], volume: str, *, timeout: float) -> ClientReport:
            report = super().report(hosts, volume, timeout=timeout)
            brick = report.bricks[0]
            wider = BrickClients(brick.brick, True, (*brick.connections, "10.0.0.9:49999"))
            return ClientReport(volume=volume, bricks=(wider,), kinds=report.kinds)

    lists = Unnamed({"gfapi.x": 1})
    with pytest.raises(VolumeInUse, match=r"besides our own: 1 unidentified$"):
        besides_own(lists, monkeypatch)
    assert lists.requests == []


def test_a_second_listing_of_our_kind_during_the_wipe_stops_it_and_says_it_may_be_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """During the wipe our kind listed once more stops the wipe (a stranger, or our own old
    graph after a change of the volume's options: both are changes); the reason says both."""
    lists = ClientLists({"gfapi.x": 2})
    monkeypatch.setattr(watch, "client_report", lists.report)
    before = ClientLists({"gfapi.x": 1}).report(("h1",), "vol1", timeout=1.0)
    with volume_watcher(("h1",), "vol1", before, {"gfapi.x": 1}, None) as watcher:
        wait_for(watcher.changed, timeout=3.0, interval=0.01, what="the clients probe")
    assert watcher.reason == (
        "a new gluster client connected to volume vol1: 1 gfapi.x (of our own kind: another "
        "client, or ours listed twice because the volume's client graph changed)"
    )
    assert lists.requests == []


def test_a_new_client_of_another_kind_during_the_wipe_is_named_as_such(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lists = ClientLists({"gfapi.x": 1, "fuse": 1})
    monkeypatch.setattr(watch, "client_report", lists.report)
    before = ClientLists({"gfapi.x": 1}).report(("h1",), "vol1", timeout=1.0)
    with volume_watcher(("h1",), "vol1", before, {"gfapi.x": 1}, None) as watcher:
        wait_for(watcher.changed, timeout=3.0, interval=0.01, what="the clients probe")
    assert watcher.reason == "a new gluster client connected to volume vol1: 1 fuse"
