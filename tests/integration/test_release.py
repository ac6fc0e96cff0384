"""How a wiped PV goes back to the pool, as the PV controller's own Recycle leaves it, and how
`--mode recreate` finishes or reports what an earlier run left.

After its own recycle the controller calls `unbindVolume`: a PV it bound (annotation
`pv.kubernetes.io/bound-by-controller`) loses claimRef and that annotation; a PV an admin
pre-bound keeps claimRef's namespace and name and loses the uid, so it stays reserved.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from recycler_job.kube import CONFIGMAP, PV, Kube
from tests.integration.scenario import Scenario
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.objects import pvc, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]

BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
HOLD = "example.com/backup-hold"


@contextmanager
def controller_paused(plane: ControlPlane) -> Iterator[None]:
    """SIGSTOP the kube-controller-manager: the PV keeps the phase it had, so what our own
    rules do with a just-released PV is seen before the controller moves it to Available."""
    pid = plane.procs["kube-controller-manager"].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def claim_uid(scenario: Scenario, name: str) -> str:
    return str(scenario.plane.get_json("pvc", name, "-n", scenario.namespace)["metadata"]["uid"])


def bind_claim(scenario: Scenario, pv_name: str, claim: str) -> dict[str, Any]:
    """Create claim `claim` (without spec.volumeName) and wait until the controller binds
    `pv_name` to it; returns the bound PV."""
    scenario.plane.apply(pvc(claim, scenario.namespace))
    wait_for(lambda: scenario.phase(pv_name) == "Bound", what=f"{claim} to bind {pv_name}")
    pv = scenario.pv(pv_name)
    assert pv["spec"]["claimRef"]["name"] == claim
    assert pv["spec"]["claimRef"]["uid"] == claim_uid(scenario, claim)
    return pv


# ---- release mode --------------------------------------------------------------------------


def test_release_of_a_pv_the_controller_bound_drops_claim_ref_and_annotation(
    scenario: Scenario,
) -> None:
    pv = scenario.released_volume("relctl", {"f": "x"})
    assert BOUND_BY_CONTROLLER in scenario.pv(pv)["metadata"]["annotations"]
    result = scenario.run()
    assert result.code == 0, result.stderr
    after = scenario.pv(pv)
    assert "claimRef" not in after["spec"]
    assert BOUND_BY_CONTROLLER not in after["metadata"].get("annotations", {})
    wait_for(lambda: scenario.phase(pv) == "Available", what="Available")
    # any claim may have it now, by volumeName
    scenario.plane.apply(pvc(f"any-{pv}", scenario.namespace, volume_name=pv))
    wait_for(lambda: scenario.phase(pv) == "Bound", what="another claim to bind")


def test_release_of_a_prebound_pv_keeps_the_reservation(
    scenario: Scenario, control_plane: ControlPlane
) -> None:
    pv = scenario.released_volume("relpre", {"f": "x"}, prebound=True)
    before = scenario.pv(pv)
    reserved = before["spec"]["claimRef"]["name"]
    assert BOUND_BY_CONTROLLER not in before["metadata"].get("annotations", {})
    assert before["spec"]["claimRef"].get("uid")
    with controller_paused(control_plane):
        result = scenario.run()
        assert result.code == 0, result.stderr
        after = scenario.pv(pv)
        ref = after["spec"]["claimRef"]
        assert (ref["namespace"], ref["name"]) == (scenario.namespace, reserved)
        assert "uid" not in ref and "resourceVersion" not in ref
        assert after["status"]["phase"] == "Failed"  # the controller has not seen it yet
        # Released but still Failed: a reservation, not a volume to wipe again.
        scenario.gluster.write_files(scenario.volumes[pv], {"written-after": "keep"})
        again = scenario.run()
        assert again.code == 0, again.stderr
        assert again.volume(pv)["outcome"] == "skipped"
        assert "reserved for claim" in again.volume(pv)["reason"]
        assert scenario.listing(pv) == ["written-after"]
    wait_for(lambda: scenario.phase(pv) == "Available", what="Available, still reserved")
    # a claim of another name that asks for the PV does not get it; one of the reserved name does
    other = f"other-{pv}"
    scenario.plane.apply(pvc(other, scenario.namespace, volume_name=pv))
    try:
        bound = bind_claim(scenario, pv, reserved)
        assert bound["spec"]["claimRef"]["uid"] != before["spec"]["claimRef"]["uid"]
        status = scenario.plane.get_json("pvc", other, "-n", scenario.namespace)["status"]
        assert status.get("phase") == "Pending"
    finally:
        scenario.plane.run_kubectl("delete", "pvc", other, "-n", scenario.namespace, "--wait=false")


# ---- recreate mode -------------------------------------------------------------------------


def test_recreate_of_a_prebound_pv_carries_the_reservation(scenario: Scenario) -> None:
    pv = scenario.released_volume(
        "recpre",
        {"f": "x"},
        prebound=True,
        annotations={PROVISIONED_BY: "kubernetes.io/glusterfs"},
    )
    before = scenario.pv(pv)
    reserved = before["spec"]["claimRef"]["name"]
    result = scenario.run("--mode", "recreate")
    assert result.code == 0, result.stderr
    after = wait_for(
        lambda: scenario.pv(pv) if scenario.phase(pv) == "Available" else None,
        what="re-created PV Available",
    )
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    ref = after["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"]) == (scenario.namespace, reserved)
    assert "uid" not in ref and "resourceVersion" not in ref
    assert after["metadata"]["annotations"][PROVISIONED_BY] == "kubernetes.io/glusterfs"
    assert scenario.listing(pv) == []
    bind_claim(scenario, pv, reserved)


def test_a_record_stuck_on_a_foreign_finalizer_is_reported_and_the_pass_goes_on(
    scenario: Scenario, kube: Kube
) -> None:
    """The admin's finalizer holds the deleted PV: that volume fails, the others recycle, the
    record is kept (exit 1, never 3), and once the finalizer goes the PV is re-created with
    the admin's finalizer and `provisioned-by`."""
    held = scenario.released_volume(
        "held",
        {"f": "x"},
        finalizers=[HOLD],
        annotations={PROVISIONED_BY: "kubernetes.io/glusterfs"},
    )
    first_other = scenario.released_volume("free1", {"f": "x"})
    try:
        first = scenario.run("--mode", "recreate")
        assert first.code == 1, first.stderr
        assert first.volume(held)["outcome"] == "failed"
        assert "still being deleted" in first.volume(held)["error"]
        assert HOLD in first.volume(held)["error"]
        assert first.volume(first_other)["outcome"] == "recycled"
        record = kube.get(CONFIGMAP, f"{scenario.lease}-recreate", "default")
        assert held in record["data"]

        # the next pass reports the record and still recycles what it can
        second_other = scenario.released_volume("free2", {"f": "x"})
        second = scenario.run("--mode", "recreate")
        assert second.code == 1, second.stderr
        failed = [v for v in second.report["volumes"] if v["pv"] == held]
        assert len(failed) == 1 and failed[0]["outcome"] == "failed"
        assert failed[0]["decision"] == "replay"
        assert HOLD in failed[0]["error"]
        assert second.volume(second_other)["outcome"] == "recycled"
        assert f"pv/{held}" in second.stdout

        # the finalizer's owner lets go: the next pass re-creates the PV from the record
        scenario.plane.run_kubectl(
            "patch",
            "pv",
            held,
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        wait_for(lambda: kube.get_or_none(PV, held) is None, what="the deletion to complete")
        third = scenario.run("--mode", "recreate")
        assert third.code == 0, third.stderr
        assert any(line.startswith(f"{held}: re-created") for line in third.report["replayed"])
        recreated = kube.get(PV, held)
        assert HOLD in recreated["metadata"]["finalizers"]
        assert recreated["metadata"]["annotations"][PROVISIONED_BY] == "kubernetes.io/glusterfs"
        assert "claimRef" not in recreated["spec"]
        assert scenario.listing(held) == []
    finally:
        current = kube.get_or_none(PV, held)
        if current is not None and HOLD in (current["metadata"].get("finalizers") or []):
            finalizers = [f for f in current["metadata"]["finalizers"] if f != HOLD]
            patch = json.dumps({"metadata": {"finalizers": finalizers}})
            scenario.plane.run_kubectl("patch", "pv", held, "--type=merge", "-p", patch)


def test_a_record_whose_create_is_refused_is_reported_and_the_pass_goes_on(
    scenario: Scenario, kube: Kube
) -> None:
    pv = scenario.released_volume("refused-ok", {"f": "x"})
    gone = f"refused-{scenario.unique}"
    # A copy the API server rejects (422: no capacity): it stays unreplayable.
    invalid = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": gone},
        "spec": {"glusterfs": {"endpoints": "glusterfs-cluster", "path": "x"}},
    }
    kube.create(
        CONFIGMAP,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{scenario.lease}-recreate", "namespace": "default"},
            "data": {gone: json.dumps({"uid": "uid-of-a-deleted-pv", "pv": invalid})},
        },
        "default",
    )
    result = scenario.run("--mode", "recreate")
    assert result.code == 1, result.stderr
    refused = result.volume(gone)
    assert refused["outcome"] == "failed" and refused["decision"] == "replay"
    assert "Invalid" in refused["error"]
    assert result.volume(pv)["outcome"] == "recycled"
    assert scenario.listing(pv) == []
    assert gone in kube.get(CONFIGMAP, f"{scenario.lease}-recreate", "default")["data"]
    assert kube.get_or_none(PV, gone) is None
