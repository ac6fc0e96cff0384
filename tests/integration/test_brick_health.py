"""Whole passes on a 2-brick distributed volume with a brick down: refused whatever the client
check says, for both backends, with no file removed and the PV not released.

A wipe only sees the bricks that answer: with one brick down it would remove what the other
holds, and, when nothing it touched needed the dead brick, release the PV; the files would come
back with the brick. Files are counted on the brick directories (a mount cannot see a dead
brick's files, and counting adds no client).
"""

from __future__ import annotations

import json
import os

import pytest

from recycler_job.failpoints import ENV
from tests.integration.scenario import Follow, Scenario
from tests.integration.test_gfapi_pass import nobody  # noqa: F401 -- the gfapi fixture

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]


@pytest.fixture(params=["fuse", "gfapi"])
def backend(request: pytest.FixtureRequest, scenario: Scenario) -> Scenario:
    """The FUSE scenario as root, or the gfapi one as uid 65534."""
    if request.param == "fuse":
        return scenario
    nobody_scenario: Scenario = request.getfixturevalue("nobody")
    return nobody_scenario


def distributed_pv(scenario: Scenario, name: str) -> str:
    """A released PV on a new 2-brick distribute volume whose 200 files land on both bricks."""
    handle = scenario.volume_factory(bricks=2)
    scenario.gluster.write_files(handle, {f"d{i % 8}/f{i}": "x" for i in range(200)})
    pv = scenario.released_volume(name, path=handle.path)
    scenario.volumes[pv] = handle
    return pv


def files_per_brick(scenario: Scenario, pv: str) -> list[int]:
    counts = []
    for brick in scenario.gluster.brick_paths(scenario.volumes[pv]):
        count = 0
        for dirpath, dirnames, filenames in os.walk(brick):
            if dirpath == brick:
                dirnames[:] = [d for d in dirnames if not d.startswith(".glusterfs")]
            count += len(filenames)
        counts.append(count)
    return counts


def test_a_dead_brick_refuses_the_wipe_without_the_client_check(backend: Scenario) -> None:
    pv = distributed_pv(backend, "deadbrick")
    before = files_per_brick(backend, pv)
    assert sum(before) == 200 and min(before) > 0, before
    backend.gluster.kill_brick(backend.volumes[pv], 0)

    dry = backend.run("--no-client-check", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert dry.volume(pv)["outcome"] == "would-refuse", dry.volume(pv)

    result = backend.run("--no-client-check")
    assert result.code == 1, result.stderr
    vol = result.volume(pv)
    assert vol["outcome"] == "failed" and "brick(s) offline" in vol["error"], vol
    assert vol["files"] == 0, vol
    assert files_per_brick(backend, pv) == before, "no file may be removed"
    assert backend.pv(pv)["spec"].get("claimRef"), "the PV must stay unreleased"
    assert backend.phase(pv) == "Failed"


def test_a_brick_lost_after_the_wipe_stops_the_release(backend: Scenario) -> None:
    """The wipe ran with both bricks; before the release one is killed: the PV is not released
    (a brick restarted in between, with another pid, is refused the same way: unit-tested)."""
    pv = distributed_pv(backend, "late")
    run = Follow(backend.start("--no-client-check", env={ENV: "before-release=sleep:8"}))
    try:
        run.wait_for_line("failpoint before-release")
        backend.gluster.kill_brick(backend.volumes[pv], 1)
        assert run.wait(timeout=180) == 1, run.stderr
    finally:
        run.kill()
    report = json.loads((backend.tmp / "report.json").read_text())
    vol = next(v for v in report["volumes"] if v["pv"] == pv)
    assert vol["outcome"] == "failed" and "brick(s) offline" in vol["error"], vol
    assert vol["files"] == 200, vol  # the wipe itself had both bricks
    assert backend.pv(pv)["spec"].get("claimRef"), "the PV must stay unreleased"
    assert backend.phase(pv) == "Failed"
