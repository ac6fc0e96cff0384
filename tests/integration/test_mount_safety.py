"""Whole passes around the mount itself: wipe exactly the mount that was verified, and never
unmount or clean up a mount this tool did not make."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from recycler_job.failpoints import ENV
from recycler_job.gluster import mountinfo
from recycler_job.pv_writes import RECYCLED_ANNOTATION
from tests.integration.scenario import Scenario

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]

TENANT = {"keep": "tenant data", "dir/inner": "more"}


def start_and_wait_for(scenario: Scenario, point: str, *args: str) -> subprocess.Popen[str]:
    """Start a pass that pauses at failpoint `point`; return once it is paused there."""
    proc = scenario.start(*args, env={ENV: f"{point}=sleep:5"})
    assert proc.stderr is not None
    for line in proc.stderr:
        if f"failpoint {point}" in line:
            return proc
    proc.wait(timeout=60)
    raise AssertionError(f"the pass ended (exit {proc.returncode}) before failpoint {point}")


def report_volume(scenario: Scenario, pv: str) -> dict[str, Any]:
    report = json.loads((scenario.tmp / "report.json").read_text())
    return next(v for v in report["volumes"] if v["pv"] == pv)


def assert_untouched(scenario: Scenario, pv: str, claim_ref: dict[str, Any]) -> None:
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]
    after = scenario.pv(pv)
    assert after["spec"].get("claimRef") == claim_ref, "a failed volume is never released"
    assert RECYCLED_ANNOTATION not in (after["metadata"].get("annotations") or {})
    assert "Recycled" not in [e["reason"] for e in scenario.events(pv)]


def test_a_mount_detached_between_verify_and_wipe_fails_the_volume(scenario: Scenario) -> None:
    pv = scenario.released_volume("detached", TENANT)
    claim_ref = scenario.pv(pv)["spec"]["claimRef"]
    mountpoint = scenario.mount_root / pv
    proc = start_and_wait_for(scenario, "after-verify")
    # An admin, a lazy unmount or another run's cleanup: the path is now a local directory.
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)
    proc.communicate(timeout=120)
    assert proc.returncode == 1
    vol = report_volume(scenario, pv)
    assert vol["outcome"] == "failed"
    assert "detached or replaced" in vol["error"], vol["error"]
    assert_untouched(scenario, pv, claim_ref)
    assert mountinfo.find_mount(str(mountpoint)) is None


def test_a_foreign_mount_at_the_mountpoint_is_refused_and_left_mounted(
    scenario: Scenario,
) -> None:
    pv = scenario.released_volume("squatted", TENANT)
    claim_ref = scenario.pv(pv)["spec"]["claimRef"]
    mountpoint = scenario.mount_root / pv
    proc = start_and_wait_for(scenario, "before-mount")
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], check=True)
    try:
        (mountpoint / "theirs").write_text("someone else's tmpfs")
        proc.communicate(timeout=120)
        assert proc.returncode == 1
        vol = report_volume(scenario, pv)
        assert "already a mountpoint" in vol["error"], vol["error"]
        entry = mountinfo.find_mount(str(mountpoint))
        assert entry is not None and entry.fstype == "tmpfs", "the foreign mount was unmounted"
        assert (mountpoint / "theirs").read_text() == "someone else's tmpfs"
        assert_untouched(scenario, pv, claim_ref)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_mount_root_holding_a_foreign_mount_is_refused(scenario: Scenario) -> None:
    """Even a gluster mount of the very volume, named like a PV, is not ours without our
    record: the pass refuses the mount root (exit 2) and neither cleans it up nor wipes."""
    pv = scenario.released_volume("foreign", TENANT)
    claim_ref = scenario.pv(pv)["spec"]["claimRef"]
    foreign = scenario.mount_root / f"other-{pv}"
    scenario.gluster.fuse_mount(scenario.volumes[pv], foreign)
    try:
        result = scenario.run("--no-client-check")
        assert result.code == 2, result.stdout + result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert "did not make" in result.stderr and str(foreign) in result.stderr
        entry = mountinfo.find_mount(str(foreign))
        assert entry is not None and entry.fstype == "fuse.glusterfs"
        assert_untouched(scenario, pv, claim_ref)
    finally:
        scenario.gluster.fuse_unmount(foreign)


@pytest.mark.parametrize("root", ["/", "/mnt", "/var/lib/kubelet", "/var/lib/kubelet/pods/x"])
def test_a_mount_root_shared_with_the_system_is_refused(scenario: Scenario, root: str) -> None:
    result = scenario.run("--mount-root", root)
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "--mount-root" in result.stderr
