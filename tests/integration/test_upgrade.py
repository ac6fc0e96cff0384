"""Upgrading from the appuio fork: its appuio.ch/failed-at stamp starts the min-age clock.

Run on the default version (before 1.29, no lastPhaseTransitionTime), where the first-seen
clock, and so failed-at, decides the age.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from recycler_job.decide import APPUIO_FAILED_AT_ANNOTATION, FIRST_SEEN_ANNOTATION
from tests.integration.scenario import Scenario


def _fork_stamp(ago: timedelta) -> str:
    """As the fork writes it (`date -Is`): seconds and a numeric offset."""
    moment = datetime.now(UTC) - ago
    return moment.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="seconds")


def test_failed_at_counts_as_first_seen_and_is_dropped_on_release(scenario: Scenario) -> None:
    if scenario.plane.at_least(29):
        pytest.skip("lastPhaseTransitionTime is the clock here; failed-at only postpones")
    old = scenario.released_volume(
        "forkold",
        {"f": "x"},
        annotations={APPUIO_FAILED_AT_ANNOTATION: _fork_stamp(timedelta(minutes=5))},
    )
    young = scenario.released_volume(
        "forkyoung",
        {"f": "x"},
        annotations={APPUIO_FAILED_AT_ANNOTATION: _fork_stamp(timedelta(0))},
    )
    result = scenario.run("--min-age", "120")
    assert result.volume(old)["outcome"] == "recycled", result.volume(old)
    assert scenario.listing(old) == []
    annotations = scenario.pv(old)["metadata"].get("annotations") or {}
    assert APPUIO_FAILED_AT_ANNOTATION not in annotations
    assert FIRST_SEEN_ANNOTATION not in annotations
    assert result.volume(young)["outcome"] == "waiting"
    assert scenario.listing(young) == ["f"]
