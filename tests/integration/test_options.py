"""Options that shape a pass, end to end: caps, deadline, root ownership, first-seen, logs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recycler_job.config import load_config
from recycler_job.decide import FIRST_SEEN_ANNOTATION, parse_first_seen
from recycler_job.kube import PV, Kube
from recycler_job.runner import Runner
from tests.integration.scenario import Scenario
from tests.sandbox.objects import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]


def test_max_volumes_caps_a_pass_and_parallel_recycles_the_rest(scenario: Scenario) -> None:
    pvs = [scenario.released_volume(f"cap{i}", {"f": "x"}) for i in range(3)]
    first = scenario.run("--max-volumes", "1")
    assert first.code == 0, first.stderr
    outcomes = sorted(first.volume(pv)["outcome"] for pv in pvs)
    assert outcomes == ["recycled", "waiting", "waiting"]
    second = scenario.run("--parallel", "2")
    assert second.code == 0, second.stderr
    waiting = [pv for pv in pvs if first.volume(pv)["outcome"] == "waiting"]
    assert [second.volume(pv)["outcome"] for pv in waiting] == ["recycled", "recycled"]
    for pv in pvs:
        assert scenario.listing(pv) == []


def test_no_volume_starts_after_the_deadline(scenario: Scenario) -> None:
    pvs = [scenario.released_volume(f"late{i}", {"f": "x"}) for i in range(2)]
    result = scenario.run(
        "--deadline", "2", env={"GLUSTER_RECYCLER_FAILPOINTS": "after-decide=sleep:3"}
    )
    assert result.code == 0, result.stderr
    for pv in pvs:
        assert result.volume(pv)["outcome"] == "waiting"
        assert "deadline" in result.volume(pv)["reason"]
        assert scenario.listing(pv) == ["f"]
        assert scenario.pv(pv)["spec"].get("claimRef")


def test_reset_owner_and_mode_of_the_volume_root(scenario: Scenario) -> None:
    pv = scenario.released_volume("owner", {"f": "x"})
    result = scenario.run("--reset-owner", "1234:5678", "--reset-mode", "0770")
    assert result.code == 0, result.stderr
    with scenario.gluster.mounted(scenario.volumes[pv]) as root:
        st = os.stat(root)
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert st.st_mode & 0o7777 == 0o770


def test_first_seen_annotation_is_written_with_a_precondition(
    scenario: Scenario, kube: Kube
) -> None:
    """Servers older than 1.29 have no lastPhaseTransitionTime; this one always sets it (the
    API server re-adds it even when a status patch removes it), so the fallback's write is
    exercised directly against the real API."""
    pv = scenario.released_volume("seen", {"f": "x"})
    current = kube.get(PV, pv)
    runner = Runner(load_config(["--min-age", "60"], {}), kube=kube)
    runner._mark_first_seen(kube, current)
    stamp = kube.get(PV, pv)["metadata"]["annotations"][FIRST_SEEN_ANNOTATION]
    when, claim = parse_first_seen(stamp)
    assert when is not None
    assert claim == current["spec"]["claimRef"]["uid"]  # the clock belongs to this claim
    # a stale resourceVersion is a precondition failure: nothing is overwritten
    runner._mark_first_seen(kube, current)
    assert kube.get(PV, pv)["metadata"]["annotations"][FIRST_SEEN_ANNOTATION] == stamp
    result = scenario.run()
    assert result.volume(pv)["outcome"] == "recycled"
    wait_for(lambda: scenario.phase(pv) == "Available", what="Available")
    assert FIRST_SEEN_ANNOTATION not in scenario.pv(pv)["metadata"].get("annotations", {})


def test_json_logs_and_config_file(scenario: Scenario, tmp_path: Path) -> None:
    pv = scenario.released_volume("json", {"f": "x"})
    config = tmp_path / "config.yaml"
    config.write_text("log-format: json\nwipe-workers: 4\nmode: release\n")
    result = scenario.run("--config", str(config))
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any("recycled" in entry["msg"] for entry in lines)
    assert all({"time", "level", "logger", "msg"} <= set(entry) for entry in lines)
    assert json.loads(result.stdout.splitlines()[0])["exit_code"] == 0
    assert scenario.listing(pv) == []
