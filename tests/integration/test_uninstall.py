"""scripts/uninstall.sh on the sandbox: it never deletes the record of a PV being re-created.

The manifests are installed under a namespace and name suffix of the test's own (a kustomization
over manifests/), so the shared install of test_manifests.py is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.scenario import RECYCLER, REPO, run_pass
from tests.sandbox.controlplane import ControlPlane

pytestmark = pytest.mark.cluster
SCRIPT = REPO / "scripts" / "uninstall.sh"


def _install(plane: ControlPlane, tmp_path: Path, unique: str) -> tuple[str, Path]:
    ns = f"uninst-{unique}"
    base = os.path.relpath(REPO / "manifests", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        # bases: the kustomize of kubectl 1.21 (v2.0.3) takes directories only there.
        f"namespace: {ns}\nnameSuffix: -{unique}\nbases:\n  - {base}\n"
    )
    plane.run_kubectl("apply", "-k", str(tmp_path))
    return ns, tmp_path


def _uninstall(
    plane: ControlPlane, ns: str, kdir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECTL": str(plane.kubectl), "KUBECONFIG": str(plane.kubeconfig)}
    return subprocess.run(
        ["bash", str(SCRIPT), "--namespace", ns, "--kustomize-dir", str(kdir), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _exists(plane: ControlPlane, *args: str) -> bool:
    found = plane.run_kubectl("get", *args, "--ignore-not-found", "-o", "name").stdout
    return bool(found.strip())


def _suspended(plane: ControlPlane, ns: str, unique: str) -> bool:
    cronjob = plane.get_json("cronjob", f"gluster-recycler-{unique}", "-n", ns)
    return cronjob["spec"].get("suspend") is True


def test_uninstall_refuses_while_a_pv_is_recorded_then_removes_everything(
    control_plane: ControlPlane, tmp_path: Path, unique: str
) -> None:
    (tmp_path / "k").mkdir()
    ns, kdir = _install(control_plane, tmp_path / "k", unique)
    pv = f"grt-uninst-{unique}"
    clean = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv, "labels": {"grt-uninst": unique}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Recycle",
            "glusterfs": {"endpoints": "glusterfs-cluster", "path": "vol"},
        },
    }
    record = json.dumps({"uid": "gone-uid", "recordedAt": "2026-12-05T00:00:00Z", "pv": clean})
    control_plane.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "gluster-recycler-recreate", "namespace": ns},
            "data": {pv: record},
        }
    )
    refused = _uninstall(control_plane, ns, kdir)
    assert refused.returncode == 1, refused.stderr
    assert "records PVs being re-created" in refused.stderr and pv in refused.stderr
    assert "kubectl create job --from=cronjob/gluster-recycler" in refused.stderr
    assert _suspended(control_plane, ns, unique), "the CronJob was not suspended first"
    for kind, name in (
        ("configmap", "gluster-recycler-recreate"),
        ("configmap", f"gluster-recycler-config-{unique}"),
        ("cronjob", f"gluster-recycler-{unique}"),
    ):
        assert _exists(control_plane, kind, name, "-n", ns), f"{kind}/{name} was deleted"
    assert _exists(control_plane, "clusterrole", f"gluster-recycler:job-{unique}")

    # One pass replays the record: the PV is created again and the record emptied.
    try:
        pass_ = run_pass(
            [
                *RECYCLER,
                "--kubeconfig",
                str(control_plane.kubeconfig),
                "--lease-namespace",
                ns,
                "--selector",
                f"grt-uninst={unique}-none",
                "--mount-root",
                str(tmp_path / "m"),
            ]
        )
        assert pass_.returncode == 0, pass_.stderr
        assert _exists(control_plane, "pv", pv), "the record was not replayed"
        done = _uninstall(control_plane, ns, kdir)
        assert done.returncode == 0, done.stderr
        assert not _exists(control_plane, "clusterrole", f"gluster-recycler:job-{unique}")
        assert not _exists(control_plane, "cronjob", f"gluster-recycler-{unique}", "-n", ns)
        assert not _exists(control_plane, "namespace", ns)
    finally:
        control_plane.run_kubectl("delete", "pv", pv, "--ignore-not-found", check=False)


def test_uninstall_waits_for_an_active_job_and_gives_up_without_deleting(
    control_plane: ControlPlane, tmp_path: Path, unique: str
) -> None:
    """The sandbox has no kubelet: a Job's pod never ends, the Job stays active."""
    ns, kdir = _install(control_plane, tmp_path, unique)
    job = f"running-{unique}"
    control_plane.run_kubectl(
        "create", "job", f"--from=cronjob/gluster-recycler-{unique}", job, "-n", ns
    )
    try:
        started = time.monotonic()
        refused = _uninstall(control_plane, ns, kdir, "--timeout", "1")
        assert time.monotonic() - started >= 1, "it gave up without waiting"
        assert refused.returncode == 1, refused.stderr
        assert "Jobs still active" in refused.stderr and job in refused.stderr
        assert _suspended(control_plane, ns, unique)
        assert _exists(control_plane, "cronjob", f"gluster-recycler-{unique}", "-n", ns)
        control_plane.run_kubectl("delete", "job", job, "-n", ns, "--wait=true")
        done = _uninstall(control_plane, ns, kdir, "--timeout", "10")
        assert done.returncode == 0, done.stderr
        assert not _exists(control_plane, "namespace", ns)
    finally:
        control_plane.run_kubectl(
            "delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False
        )
