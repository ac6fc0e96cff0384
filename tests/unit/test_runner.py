"""The pass's own rules: why a PV was held back, at INFO and capped; the exit code a pass earns."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from recycler_job.config import load_config
from recycler_job.decide import DecideSettings, decide_all
from recycler_job.exit_codes import ExitCode
from recycler_job.report import VolumeResult
from recycler_job.runner import REASONS_AT_INFO, Runner, _HeldBack
from recycler_job.selector import parse_selector
from recycler_job.snapshot import ClusterSnapshot
from tests.unit.builders import make_pv

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _held_back(pvs: list[dict[str, Any]], selector: str | None = None) -> None:
    """What the pass does with the PVs it does not recycle."""
    settings = DecideSettings(
        phases=frozenset({"Failed"}),
        failed_messages=("No recycler plugin found for the volume!",),
        reclaim_policies=frozenset({"Recycle"}),
        selector=parse_selector(selector) if selector else None,
        min_age=60.0,
        max_volumes=None,
    )
    by_name = {pv["metadata"]["name"]: pv for pv in pvs}
    held = _HeldBack(settings)
    for decision in decide_all(ClusterSnapshot.build(pvs, []), settings, NOW):
        result = Runner._not_recycled(decision)
        held.log(by_name[decision.pv_name], result)
    held.log_rest()


def _info(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_each_candidate_held_back_is_logged_at_info_with_its_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="recycler_job")
    _held_back(
        [
            make_pv("pv-retain", policy="Retain", labels={"tier": "scratch"}),
            make_pv("pv-released", phase="Released", message=None, labels={"tier": "scratch"}),
            make_pv("pv-young", last_transition="2026-12-04T23:59:30Z", labels={"tier": "scratch"}),
        ],
        selector="tier=scratch",
    )
    assert _info(caplog) == [
        "pv/pv-released: not recycled (skipped): phase Released is not one of Failed",
        "pv/pv-retain: not recycled (skipped): reclaim policy Retain is not one of Recycle",
        "pv/pv-young: not recycled (waiting): too young: in its phase 30s ago, "
        "30s left of min-age 60s",
    ]
    assert {r.pv for r in caplog.records} == {"pv-retain", "pv-released", "pv-young"}  # type: ignore[attr-defined]


def test_pvs_that_are_no_candidates_stay_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """Bound or Available PVs, other plugins and PVs outside the selector are not held back."""
    caplog.set_level(logging.DEBUG, logger="recycler_job")
    _held_back(
        [
            make_pv("pv-bound", phase="Bound", message=None),
            make_pv("pv-available", phase="Available", message=None, claim=None),
            make_pv("pv-nfs", policy="Retain", source={"nfs": {"server": "n", "path": "/"}}),
            make_pv("pv-other", policy="Retain", labels={"tier": "gold"}),
        ],
        selector="tier=scratch",
    )
    assert _info(caplog) == []
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 4


def test_a_big_cluster_gets_the_first_lines_and_a_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="recycler_job")
    extra = 7
    _held_back([make_pv(f"pv-{i:03d}", policy="Retain") for i in range(REASONS_AT_INFO + extra)])
    lines = _info(caplog)
    assert len(lines) == REASONS_AT_INFO + 1
    assert lines[0].startswith("pv/pv-000: not recycled (skipped): reclaim policy Retain")
    assert lines[-1].startswith(f"{extra} more released or failed PVs matching the selector")


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        (["busy"], ExitCode.OK),
        (["recycled", "busy", "waiting"], ExitCode.OK),
        (["busy", "failed"], ExitCode.VOLUME_FAILED),
    ],
)
def test_a_busy_volume_is_not_a_failed_pass(outcomes: list[str], code: ExitCode) -> None:
    runner = Runner(load_config([], {}))
    runner.report.volumes = [
        VolumeResult(f"pv{i}", "recycle", "", o) for i, o in enumerate(outcomes)
    ]
    assert runner._exit_code() is code
