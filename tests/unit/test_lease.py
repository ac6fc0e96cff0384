"""Who holds a Lease and until when: expiry arithmetic and the keeper, without the API server
(that part is integration)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from urllib3.exceptions import ReadTimeoutError

from recycler_job import lease as lease_module
from recycler_job.api_errors import KubeError
from recycler_job.clock import format_micro_time, parse_time
from recycler_job.kube import Kube
from recycler_job.lease import (
    SAFETY_MARGIN,
    LeaseKeeper,
    LeaseLock,
    LeaseLost,
    hold_deadline,
    renew_interval,
    renew_timeout,
    retry_interval,
)
from tests.sandbox.objects import wait_for

NOW = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.UTC)


def lock() -> LeaseLock:
    return LeaseLock(
        None,  # type: ignore[arg-type]  # no API call is made
        namespace="ns",
        name="l",
        identity="me",
        duration=60,
        clock=lambda: NOW,
    )


def lease(holder: str | None, renewed_ago: float | None, duration: int = 60) -> dict[str, Any]:
    spec: dict[str, Any] = {"holderIdentity": holder, "leaseDurationSeconds": duration}
    if renewed_ago is not None:
        spec["renewTime"] = format_micro_time(NOW - dt.timedelta(seconds=renewed_ago))
    return {"spec": spec}


@pytest.mark.parametrize(
    ("holder", "renewed_ago", "held"),
    [
        ("other", 10, True),  # live
        ("other", 59.9, True),  # about to expire
        ("other", 60, False),  # expired exactly at the duration
        ("other", 3600, False),
        (None, 1, False),  # released
        ("", 1, False),
        ("me", 1, False),  # our own (a retried start of the same pod)
        ("other", None, False),  # no time at all: cannot be live
    ],
)
def test_live_holder(holder: str | None, renewed_ago: float | None, held: bool) -> None:
    result = lock()._live_holder(lease(holder, renewed_ago))
    assert (result is not None) == held
    if result is not None:
        assert result.identity == holder
        assert result.expires is not None and result.expires > NOW


def test_acquire_time_is_used_when_renew_time_is_missing() -> None:
    data = {
        "spec": {
            "holderIdentity": "other",
            "leaseDurationSeconds": 60,
            "acquireTime": format_micro_time(NOW - dt.timedelta(seconds=5)),
        }
    }
    assert lock()._live_holder(data) is not None


def test_time_formats_round_trip() -> None:
    assert parse_time(format_micro_time(NOW)) == NOW
    assert parse_time("2026-11-29T12:00:00Z") == NOW
    assert parse_time("not a time") is None
    assert parse_time(None) is None


# ---- our own hold: monotonic deadline, renewer failures --------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LeaseApi:
    """Just the two calls a renewal makes; `fail` decides what each replace does."""

    def __init__(self, fail: Callable[[], None] | None = None) -> None:
        self.fail = fail
        self.timeouts: list[float] = []
        self.renewed = threading.Event()

    def replace(
        self, kind: object, body: dict[str, Any], namespace: str, *, timeout: float
    ) -> dict[str, Any]:
        self.timeouts.append(timeout)
        if self.fail is not None:
            self.fail()
        self.renewed.set()
        return body

    def get_or_none(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("no conflict expected")


def held_lock(api: LeaseApi, monotonic: FakeClock, duration: int = 15) -> LeaseLock:
    held = LeaseLock(
        api,  # type: ignore[arg-type]
        namespace="ns",
        name="l",
        identity="me",
        duration=duration,
        clock=lambda: NOW,
        monotonic=monotonic,
    )
    held._lease = {"metadata": {"resourceVersion": "1"}, "spec": {"holderIdentity": "me"}}
    held.renewed_at = monotonic()
    return held


@pytest.mark.parametrize("duration", [15, 16, 60, 61, 300, 3600])
def test_hold_ends_a_safety_margin_before_the_lease_expires(duration: int) -> None:
    margin = duration - (hold_deadline(100.0, duration) - 100.0)
    assert margin == pytest.approx(duration * SAFETY_MARGIN)
    assert margin >= 5.0  # > the wipe watcher's 2 s between checks, plus clock skew
    interval = renew_interval(duration)
    # a renewal attempt (the client retries a timed-out request once) ends before the next
    assert 2 * renew_timeout(duration) < interval
    # a failed renewal is retried several times before the hold ends
    assert (duration - margin - interval) / retry_interval(duration) >= 4


def test_check_fails_at_the_deadline_and_stays_failed() -> None:
    clock = FakeClock()
    keeper = LeaseKeeper(held_lock(LeaseApi(), clock, duration=15))  # never started
    clock.now += 9.99
    keeper.check()
    clock.now += 0.01  # 10 s = 15 s - the 5 s margin after the acquire
    with pytest.raises(LeaseLost, match=r"not renewed for 10\.0s"):
        keeper.check()
    assert keeper.lost.is_set()
    clock.now -= 5
    with pytest.raises(LeaseLost):
        keeper.check()


def test_a_hanging_renewal_does_not_keep_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """The renewer is stuck in a request: check() still ends the hold on time."""
    monkeypatch.setattr(lease_module, "renew_interval", lambda duration: 0.01)
    clock = FakeClock()
    release = threading.Event()

    def hang() -> None:
        release.wait(30)

    api = LeaseApi(fail=hang)
    keeper = LeaseKeeper(held_lock(api, clock)).start()
    try:
        wait_for(lambda: api.timeouts, timeout=5, interval=0.005, what="the renewal to start")
        clock.now += 9
        keeper.check()
        clock.now += 1
        with pytest.raises(LeaseLost):
            keeper.check()
    finally:
        release.set()
        keeper.stop()
    # a renewal that finally answers does not bring the Lease back
    with pytest.raises(LeaseLost):
        keeper.check()


def test_a_renewal_after_an_api_error_extends_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "renew_interval", lambda duration: 0.01)
    monkeypatch.setattr(lease_module, "retry_interval", lambda duration: 0.01)
    clock = FakeClock()
    errors = [KubeError("500 from the server")]

    def flaky() -> None:
        if errors:
            raise errors.pop()

    api = LeaseApi(fail=flaky)
    keeper = LeaseKeeper(held_lock(api, clock))
    before = keeper.deadline
    clock.now += 8
    keeper.start()
    try:
        assert api.renewed.wait(5)
        wait_for(
            lambda: keeper.deadline > before, timeout=5, interval=0.005, what="the deadline to move"
        )
    finally:
        keeper.stop()
    assert len(api.timeouts) >= 2  # the error was retried
    assert all(t == renew_timeout(15) for t in api.timeouts)
    assert keeper.deadline == pytest.approx(hold_deadline(1008.0, 15))
    clock.now += 9.9
    keeper.check()
    assert not keeper.lost.is_set()


@pytest.mark.parametrize("error", [TypeError("bug"), OSError("EMFILE"), ValueError("x")])
def test_any_renewer_exception_marks_the_lease_lost(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    monkeypatch.setattr(lease_module, "renew_interval", lambda duration: 0.01)

    def broken() -> None:
        raise error

    keeper = LeaseKeeper(held_lock(LeaseApi(fail=broken), FakeClock())).start()
    try:
        assert keeper.lost.wait(5), "a renewer that died left the Lease counted as ours"
        with pytest.raises(LeaseLost, match=type(error).__name__):
            keeper.check()
    finally:
        keeper.stop()


def test_check_is_safe_from_many_threads() -> None:
    """Eight threads call check() while the clock moves past the deadline: each sees it pass,
    then fail, and never pass again. The clock moves only once every thread has passed at
    least once, while they keep checking; each stops only after it has seen the loss."""
    clock = FakeClock()
    keeper = LeaseKeeper(held_lock(LeaseApi(), clock))
    seen: list[list[bool]] = [[] for _ in range(8)]
    passed = [threading.Event() for _ in seen]
    start = threading.Barrier(len(seen) + 1)
    give_up = time.monotonic() + 10

    def worker(outcomes: list[bool], passed_once: threading.Event) -> None:
        start.wait()
        after_loss = 0
        while after_loss < 200 and time.monotonic() < give_up:
            try:
                keeper.check()
                outcomes.append(True)
                passed_once.set()
            except LeaseLost:
                outcomes.append(False)
                after_loss += 1

    threads = [
        threading.Thread(target=worker, args=args) for args in zip(seen, passed, strict=True)
    ]
    for t in threads:
        t.start()
    start.wait()
    for event in passed:
        assert event.wait(5), "a thread never saw the Lease held"
    clock.now += 11  # past the hold deadline of a 15 s Lease (10 s), while threads check
    for t in threads:
        t.join()
    for outcomes in seen:  # in every thread: passing, then lost for good
        assert True in outcomes and False in outcomes
        assert outcomes == sorted(outcomes, reverse=True)
        assert outcomes.count(False) == 200
    assert keeper.lost_reason.startswith("not renewed")


@pytest.mark.parametrize("duration", [15, 60, 3600])
def test_failed_renewals_leave_room_for_another_before_the_hold_ends(
    duration: int, tmp_path: Path
) -> None:
    """The client sends a renewal's PUT once (its retries are for reads), so a renewal that
    hangs ends `renew_timeout` after it was due, and another attempt `retry_interval` later
    still ends before the hold does."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    kube = Kube.connect(str(kubeconfig))
    retries = kube._dyn.client.rest_client.pool_manager.connection_pool_kw["retries"]
    with pytest.raises(ReadTimeoutError):  # a PUT whose reply is late is not sent again
        retries.increment("PUT", "/lease", error=ReadTimeoutError(None, "/lease", "timed out"))
    timeout = renew_timeout(duration)
    assert timeout < renew_interval(duration)
    second_gives_up = renew_interval(duration) + timeout + retry_interval(duration) + timeout
    assert second_gives_up < hold_deadline(0, duration)
