"""Whole passes in which the volume becomes someone's again while it is being wiped.

A large tree is wiped with one worker so that the wipe takes seconds; once files start to
disappear from the brick, the volume changes hands (a claim binds the PV, another holder takes
the Lease, a second client mounts it). The wipe must stop within 3 s: the files are counted on
the brick itself (a second FUSE mount to count them would be a client of its own).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from recycler_job.api_errors import Conflict
from recycler_job.failpoints import ENV
from recycler_job.gluster import mountinfo
from recycler_job.kube import LEASE, Kube
from recycler_job.pv_writes import RECYCLED_ANNOTATION
from tests.integration.scenario import Follow, Scenario
from tests.sandbox.objects import gluster_pv, pvc, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]

# Long enough to take several seconds with one worker on this machine.
DIRS, PER_DIR = 40, 150
LIMIT_S = 3.0  # a new gluster client: polled (gluster has no watch), and the view frozen
API_LIMIT_S = 1.0  # a change in the API: the view's watch delivers it


def big_volume(scenario: Scenario, name: str, dirs: int = DIRS) -> str:
    files: dict[str, bytes | str] = {
        f"d{i:02}/f{j:03}": "x" for i in range(dirs) for j in range(PER_DIR)
    }
    return scenario.released_volume(name, files)


def brick_files(scenario: Scenario, pv: str) -> int:
    """Files left on the volume, counted on its brick (not a client of the volume)."""
    (brick,) = scenario.gluster.brick_paths(scenario.volumes[pv])
    count = 0
    for dirpath, dirnames, filenames in os.walk(brick):
        if dirpath == brick:
            dirnames[:] = [d for d in dirnames if d != ".glusterfs"]
        count += len(filenames)
    return count


def change_during_wipe(
    scenario: Scenario, pv: str, change: Callable[[], None]
) -> tuple[subprocess.Popen[str], int, float]:
    """Run a pass, make `change` once the wipe is removing files; returns the finished
    process, how many files were removed after the change and how long after it the last
    one went."""
    total = brick_files(scenario, pv)
    proc = scenario.start("--wipe-workers", "1")
    wait_for(
        lambda: brick_files(scenario, pv) < total or proc.poll() is not None,
        interval=0.05,
        timeout=120,
        what="the wipe to start",
    )
    assert proc.poll() is None, "the pass ended before the change could be made"
    change()
    changed_at = time.monotonic()
    at_change = previous = brick_files(scenario, pv)
    last_removal = 0.0
    while True:
        done = proc.poll() is not None
        now = brick_files(scenario, pv)
        if now < previous:
            last_removal = time.monotonic() - changed_at
        previous = now
        if done:
            break
        time.sleep(0.1)
    proc.communicate(timeout=60)
    removed = at_change - previous
    print(
        f"\n{pv}: {total - at_change} of {total} files removed before the change, "
        f"{removed} after it; the last removal {last_removal:.2f}s after the change"
    )
    return proc, removed, last_removal


def report_volume(scenario: Scenario, pv: str) -> dict[str, Any]:
    report = json.loads((scenario.tmp / "report.json").read_text())
    return next(v for v in report["volumes"] if v["pv"] == pv)


def assert_stopped_and_not_released(
    scenario: Scenario,
    pv: str,
    proc: subprocess.Popen[str],
    last_removal: float,
    reason: str,
    limit: float = API_LIMIT_S,
) -> dict[str, Any]:
    assert last_removal <= limit, f"files were still removed {last_removal:.2f}s after it"
    assert proc.returncode == 1
    vol = report_volume(scenario, pv)
    assert vol["outcome"] == "failed"
    assert vol["error"].startswith("changed during the wipe: "), vol["error"]
    assert reason in vol["error"]
    assert brick_files(scenario, pv) > 0
    after = scenario.pv(pv)
    assert RECYCLED_ANNOTATION not in (after["metadata"].get("annotations") or {})
    events = scenario.events(pv)
    assert "Recycled" not in [e["reason"] for e in events]
    assert any("changed during the wipe" in e.get("message", "") for e in events)
    assert mountinfo.find_mount(str(scenario.mount_root / pv)) is None
    return after


def test_a_claim_binding_the_pv_during_the_wipe_stops_it(scenario: Scenario) -> None:
    pv = big_volume(scenario, "rebound")
    claim = f"new-owner-{pv}"

    def rebind() -> None:
        scenario.plane.run_kubectl(
            "patch", "pv", pv, "--type=json", "-p", '[{"op":"remove","path":"/spec/claimRef"}]'
        )
        scenario.plane.apply(pvc(claim, volume_name=pv))

    proc, _, last = change_during_wipe(scenario, pv, rebind)
    after = assert_stopped_and_not_released(scenario, pv, proc, last, pv)
    wait_for(lambda: scenario.phase(pv) == "Bound", what=f"{claim} to bind {pv}")
    assert scenario.pv(pv)["spec"]["claimRef"]["name"] == claim
    assert after["spec"].get("claimRef", {}).get("name") in (None, claim)


def test_a_claim_binding_the_pv_after_the_mount_is_seen_before_the_first_unlink(
    scenario: Scenario,
) -> None:
    pv = scenario.released_volume("late", {"keep": "tenant data", "dir/inner": "more"})
    claim = f"late-owner-{pv}"
    proc = scenario.start(env={ENV: "after-verify=sleep:5"})
    assert proc.stderr is not None
    for line in proc.stderr:
        if "failpoint after-verify" in line:
            break
    scenario.plane.run_kubectl(
        "patch", "pv", pv, "--type=json", "-p", '[{"op":"remove","path":"/spec/claimRef"}]'
    )
    scenario.plane.apply(pvc(claim, volume_name=pv))
    proc.communicate(timeout=120)
    assert proc.returncode == 1
    vol = report_volume(scenario, pv)
    assert vol["error"].startswith("re-check before wiping"), vol["error"]
    assert vol["files"] == 0
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]
    wait_for(lambda: scenario.phase(pv) == "Bound", what=f"{claim} to bind {pv}")
    assert RECYCLED_ANNOTATION not in (scenario.pv(pv)["metadata"].get("annotations") or {})


def test_another_holder_taking_the_lease_during_the_wipe_stops_it(
    scenario: Scenario, kube: Kube
) -> None:
    pv = big_volume(scenario, "leased")
    claim_ref = scenario.pv(pv)["spec"]["claimRef"]

    def take_lease() -> None:
        while True:
            lease = kube.get(LEASE, scenario.lease, "default")
            lease["spec"]["holderIdentity"] = "another-recycler"
            try:
                kube.replace(LEASE, lease, "default")
                return
            except Conflict:
                continue  # our own renewal got in between

    proc, _, last = change_during_wipe(scenario, pv, take_lease)
    after = assert_stopped_and_not_released(scenario, pv, proc, last, "Lease")
    assert after["spec"]["claimRef"] == claim_ref


def test_a_second_client_mounting_during_the_wipe_stops_it(scenario: Scenario) -> None:
    pv = big_volume(scenario, "client")
    claim_ref = scenario.pv(pv)["spec"]["claimRef"]
    mounted: list[str] = []

    def mount() -> None:
        mounted.append(scenario.gluster.fuse_mount(scenario.volumes[pv]))

    try:
        proc, _, last = change_during_wipe(scenario, pv, mount)
    finally:
        for path in mounted:
            scenario.gluster.fuse_unmount(path)
    after = assert_stopped_and_not_released(scenario, pv, proc, last, "new gluster client", LIMIT_S)
    assert after["spec"]["claimRef"] == claim_ref


def test_a_patch_of_the_pv_during_the_wipe_stops_it(scenario: Scenario) -> None:
    pv = big_volume(scenario, "patched")

    def patch() -> None:
        scenario.plane.run_kubectl("annotate", "pv", pv, "example.com/touched=yes", "--overwrite")

    proc, _, last = change_during_wipe(scenario, pv, patch)
    assert_stopped_and_not_released(scenario, pv, proc, last, "was modified")


def test_a_new_pv_on_an_overlapping_path_during_the_wipe_stops_it(scenario: Scenario) -> None:
    pv = big_volume(scenario, "overlap")
    volume = scenario.volumes[pv].name
    inner = f"inner-{pv}"

    def create() -> None:
        scenario.plane.apply(gluster_pv(inner, f"{volume}/d00", policy="Retain"))

    try:
        proc, _, last = change_during_wipe(scenario, pv, create)
        assert_stopped_and_not_released(scenario, pv, proc, last, f"overlaps pv/{inner}")
    finally:
        scenario.plane.run_kubectl("delete", "pv", inner, "--wait=false")


def test_the_api_server_frozen_during_the_wipe_stops_it(scenario: Scenario) -> None:
    """SIGSTOP of this session's own kube-apiserver: no watch is heard from, the wipe stops."""
    pv = big_volume(scenario, "frozen")
    apiserver = scenario.plane.procs["kube-apiserver"]
    stopped: list[bool] = []

    def freeze() -> None:
        os.kill(apiserver.pid, signal.SIGSTOP)
        stopped.append(True)
        threading.Timer(6.0, lambda: os.kill(apiserver.pid, signal.SIGCONT)).start()

    try:
        proc, _, last = change_during_wipe(scenario, pv, freeze)
    finally:
        if stopped:
            os.kill(apiserver.pid, signal.SIGCONT)
    assert last <= LIMIT_S, f"files were still removed {last:.2f}s after the freeze"
    assert proc.returncode == 1
    vol = report_volume(scenario, pv)
    assert "not current" in vol["error"], vol["error"]
    assert brick_files(scenario, pv) > 0
    assert RECYCLED_ANNOTATION not in (scenario.pv(pv)["metadata"].get("annotations") or {})


def test_the_watch_connection_cut_during_the_wipe_stops_it(scenario: Scenario) -> None:
    """Every connection to the API server is reset and new ones are refused (an iptables
    rule on this machine's loopback, removed after 6 s): the watches cannot be resumed, the
    view is no longer current, the wipe stops."""
    pv = big_volume(scenario, "cut", dirs=2 * DIRS)  # a cut is noticed up to 2.5 s later
    rule = [
        "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(scenario.plane.api_port),
        "-j", "REJECT", "--reject-with", "tcp-reset",
    ]  # fmt: skip
    added: list[bool] = []

    def lift() -> None:
        if added and subprocess.run(["iptables", "-D", *rule], check=False).returncode == 0:
            added.clear()

    def cut() -> None:
        subprocess.run(["iptables", "-I", *rule], check=True)
        added.append(True)
        threading.Timer(6.0, lift).start()

    try:
        proc, _, last = change_during_wipe(scenario, pv, cut)
    finally:
        lift()
    assert last <= LIMIT_S, f"files were still removed {last:.2f}s after the cut"
    assert proc.returncode == 1
    vol = report_volume(scenario, pv)
    assert "not current" in vol["error"], vol["error"]
    assert brick_files(scenario, pv) > 0
    assert RECYCLED_ANNOTATION not in (scenario.pv(pv)["metadata"].get("annotations") or {})


def test_our_mount_listed_twice_while_it_changes_graphs_is_still_ours(scenario: Scenario) -> None:
    """A client whose volume's client graph changes is listed twice until its next request
    (and ~0.5 s after): the check with our mount connected sends one through the mount and
    asks again, instead of taking our own old graph for a second client."""
    pv = scenario.released_volume("regraphed", {"f": "x", "d/g": "y"})
    run = Follow(scenario.start(env={ENV: "before-client-check=sleep:5"}))
    try:
        run.wait_for_line("failpoint before-client-check")
        scenario.switch_client_graphs(pv, "fuse")
        assert run.wait(timeout=120) == 0, run.stderr
    finally:
        run.kill()
    vol = report_volume(scenario, pv)
    assert vol["outcome"] == "recycled", vol
    assert scenario.listing(pv) == []


def test_a_mount_arriving_before_the_check_with_ours_connected_is_refused(
    scenario: Scenario,
) -> None:
    """A mount that came between the first client check and the one with ours connected is
    listed as `fuse`, as our own old graph would be; unlike that one it stays listed after
    our request and the waits, so the volume is busy and nothing is removed."""
    pv = scenario.released_volume("early-mount", {"precious": "x"})
    run = Follow(scenario.start(env={ENV: "before-client-check=sleep:3"}))
    mounted: list[str] = []
    try:
        run.wait_for_line("failpoint before-client-check")
        mounted.append(scenario.gluster.fuse_mount(scenario.volumes[pv]))
        assert run.wait(timeout=120) == 0, run.stderr  # busy before the first unlink
    finally:
        run.kill()
        for path in mounted:
            scenario.gluster.fuse_unmount(path)
    assert report_volume(scenario, pv)["outcome"] == "busy"
    # 2 when the other mount itself is listed twice (GlusterServer.wait_clients): still busy
    assert re.search(r"has clients besides our own: [12] fuse", run.stderr), run.stderr
    assert scenario.listing(pv) == ["precious"]
    assert scenario.pv(pv)["spec"].get("claimRef")
