"""The sandbox is real: the control plane behaves as the PV controller and API really do."""

from __future__ import annotations

import json
import subprocess

import pytest

from recycler_job.api_errors import Conflict
from recycler_job.config import load_config
from recycler_job.kube import LEASE, PV, Kube
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.objects import gluster_pv, pvc, wait_for

pytestmark = pytest.mark.cluster


def phase(plane: ControlPlane, name: str) -> str:
    return str(plane.get_json("pv", name).get("status", {}).get("phase", ""))


def test_recycle_pv_binds_then_fails_with_the_controllers_own_message(
    control_plane: ControlPlane, unique: str
) -> None:
    name = f"smoke-recycle-{unique}"
    control_plane.apply(gluster_pv(name, "vol-smoke"))
    control_plane.apply(pvc(f"c-{unique}", volume_name=name))
    wait_for(lambda: phase(control_plane, name) == "Bound", what="PV to bind")
    control_plane.run_kubectl("delete", "pvc", f"c-{unique}", "--wait=false")
    wait_for(lambda: phase(control_plane, name) == "Failed", what="PV to fail recycling")
    status = control_plane.get_json("pv", name)["status"]
    # Our default accepted messages must contain exactly what this controller writes.
    defaults = load_config([], {}).failed_messages
    assert status["message"] in defaults, status
    assert status["message"] == "No recycler plugin found for the volume!"
    # Beta (on by default) from 1.29; before, the program falls back to its first-seen mark.
    assert bool(status.get("lastPhaseTransitionTime")) == control_plane.at_least(29), status

    def recorded() -> bool:
        # The controller's event recorder writes asynchronously, after the status update.
        events = control_plane.get_json(
            "events", "-n", "default", f"--field-selector=involvedObject.name={name}"
        )
        return any(e["reason"] == "VolumeFailedRecycle" for e in events["items"])

    wait_for(recorded, what="the controller's VolumeFailedRecycle Event")


def test_retain_pv_goes_released(control_plane: ControlPlane, unique: str) -> None:
    name = f"smoke-retain-{unique}"
    control_plane.apply(gluster_pv(name, "vol-smoke", policy="Retain"))
    control_plane.apply(pvc(f"c-{unique}", volume_name=name))
    wait_for(lambda: phase(control_plane, name) == "Bound", what="PV to bind")
    control_plane.run_kubectl("delete", "pvc", f"c-{unique}", "--wait=false")
    wait_for(lambda: phase(control_plane, name) == "Released", what="PV to be Released")


def test_pv_without_claim_ref_becomes_available(control_plane: ControlPlane, unique: str) -> None:
    name = f"smoke-avail-{unique}"
    control_plane.apply(gluster_pv(name, "vol-smoke", policy="Retain"))
    control_plane.apply(pvc(f"c-{unique}", volume_name=name))
    wait_for(lambda: phase(control_plane, name) == "Bound", what="PV to bind")
    control_plane.run_kubectl("delete", "pvc", f"c-{unique}", "--wait=false")
    wait_for(lambda: phase(control_plane, name) == "Released", what="PV to be Released")
    control_plane.run_kubectl(
        "patch", "pv", name, "--type=merge", "-p", json.dumps({"spec": {"claimRef": None}})
    )
    wait_for(lambda: phase(control_plane, name) == "Available", what="PV to be Available")


def test_stale_resource_version_gets_409_on_lease_update(kube: Kube, unique: str) -> None:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": f"smoke-{unique}", "namespace": "default"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30},
    }
    first = kube.create(LEASE, body, "default")
    kube.replace(LEASE, {**first, "spec": {**first["spec"], "holderIdentity": "b"}}, "default")
    with pytest.raises(Conflict):
        kube.replace(LEASE, {**first, "spec": {**first["spec"], "holderIdentity": "c"}}, "default")


def test_delete_with_stale_resource_version_gets_409(
    control_plane: ControlPlane, kube: Kube, unique: str
) -> None:
    name = f"smoke-del-{unique}"
    created = kube.create(PV, gluster_pv(name, "vol-smoke"))
    meta = created["metadata"]
    control_plane.run_kubectl("label", "pv", name, "touched=yes")
    with pytest.raises(Conflict):
        kube.delete(PV, name, uid=meta["uid"], resource_version=meta["resourceVersion"])
    assert kube.get_or_none(PV, name) is not None
    with pytest.raises(Conflict):
        kube.delete(
            PV,
            name,
            uid="00000000-0000-0000-0000-000000000000",
            resource_version=kube.get(PV, name)["metadata"]["resourceVersion"],
        )
    assert kube.get_or_none(PV, name) is not None


def test_service_account_kubeconfig_is_denied_what_its_role_lacks(
    control_plane: ControlPlane, unique: str
) -> None:
    ns = f"sa-{unique}"
    control_plane.run_kubectl("create", "namespace", ns)
    control_plane.run_kubectl("create", "serviceaccount", "reader", "-n", ns)
    control_plane.run_kubectl(
        "create", "role", "read-cm", "-n", ns, "--verb=get,list", "--resource=configmaps"
    )
    control_plane.run_kubectl(
        "create",
        "rolebinding",
        "read-cm",
        "-n",
        ns,
        "--role=read-cm",
        f"--serviceaccount={ns}:reader",
    )
    config = control_plane.service_account_kubeconfig(ns, "reader")
    allowed = control_plane.run_kubectl("get", "configmaps", "-n", ns, kubeconfig=config)
    assert allowed.returncode == 0
    denied = control_plane.run_kubectl("get", "secrets", "-n", ns, kubeconfig=config, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    denied_pv = control_plane.run_kubectl("get", "pv", kubeconfig=config, check=False)
    assert denied_pv.returncode != 0 and "forbidden" in denied_pv.stderr.lower()


def test_sandbox_leaves_no_process_behind() -> None:
    plane = ControlPlane()
    plane.start()
    pids = [p.pid for p in plane.procs.values()]
    workdir = plane.workdir
    plane.stop()
    alive = subprocess.run(
        ["ps", "-o", "pid=", "-p", ",".join(map(str, pids))],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert alive == []
    assert not workdir.exists()
