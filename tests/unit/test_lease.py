"""Who still holds a Lease: expiry arithmetic, without the API (that part is integration)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from recycler_job.clock import format_micro_time, parse_time
from recycler_job.lease import LeaseLock

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
