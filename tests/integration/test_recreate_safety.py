"""`--mode recreate` never loses a PV and never creates one it did not write.

A DELETE whose reply is lost (the proxy in tests/sandbox/apiproxy.py carries it out and
withholds the answer) is not sent again, and the PV is re-created from the record, which is
dropped only after the create. A record forged in the ConfigMap is reported and kept, never
created.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from recycler_job.failpoints import ENV as FAILPOINTS
from recycler_job.kube import CONFIGMAP, LEASE, PV, TIMEOUT_ENV, Kube
from tests.integration.scenario import Scenario
from tests.sandbox.apiproxy import ApiProxy
from tests.sandbox.objects import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]


def _records(kube: Kube, scenario: Scenario) -> dict[str, str]:
    cm = kube.get_or_none(CONFIGMAP, f"{scenario.lease}-recreate", "default") or {}
    return dict(cm.get("data") or {})


def _expire_lease(kube: Kube, scenario: Scenario) -> None:
    """A killed run still holds the Lease: let the next run take it at once."""
    lease = kube.get(LEASE, scenario.lease, "default")
    lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"
    kube.replace(LEASE, lease, "default")


def test_a_delete_whose_reply_is_lost_is_not_resent_and_the_pv_comes_back(
    scenario: Scenario, kube: Kube, tmp_path: Path
) -> None:
    pv = scenario.released_volume(
        "lost", {"f": "x"}, labels={"team": "d"}, annotations={"note": "keep"}
    )
    before = kube.get(PV, pv)
    with ApiProxy(scenario.plane, pv, hold_seconds=10) as proxy:
        first = scenario.run(
            "--mode",
            "recreate",
            kubeconfig=proxy.kubeconfig(tmp_path / "proxy.kubeconfig"),
            # the client gives up on the withheld reply after 3 s; killed right after the
            # create, so the record must still be there
            env={TIMEOUT_ENV: "3", FAILPOINTS: "after-create=kill"},
        )
    assert first.code == -signal.SIGKILL, first.stderr
    assert proxy.deletes == ["dry-run", "delete"], "the DELETE was sent again"
    assert "but the PV was deleted; re-creating it" in first.stderr
    recreated = kube.get(PV, pv)
    assert recreated["metadata"]["uid"] != before["metadata"]["uid"]
    assert recreated["metadata"]["labels"]["team"] == "d"
    assert recreated["metadata"]["annotations"]["note"] == "keep"
    assert recreated["spec"]["glusterfs"] == before["spec"]["glusterfs"]
    assert pv in _records(kube, scenario), "the record went before the create was known to be done"

    _expire_lease(kube, scenario)
    second = scenario.run("--mode", "recreate")
    assert second.code == 0, second.stderr
    assert f"{pv}: already re-created; record dropped" in second.report["replayed"]
    assert _records(kube, scenario) == {}
    assert kube.get(PV, pv)["metadata"]["uid"] == recreated["metadata"]["uid"]
    wait_for(lambda: scenario.phase(pv) == "Available", what="re-created PV Available")
    assert scenario.listing(pv) == []


def test_a_forged_hostpath_record_is_kept_and_never_created(scenario: Scenario, kube: Kube) -> None:
    name = f"forged-{scenario.unique}"
    forged = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"grt-test": scenario.unique}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": "/"},
            "claimRef": {"namespace": "default", "name": "mine", "uid": "0" * 8},
        },
    }
    uid = "4b0b7d2e-0000-4000-8000-000000000001"
    kube.create(
        CONFIGMAP,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{scenario.lease}-recreate", "namespace": "default"},
            "data": {name: json.dumps({"uid": uid, "pv": forged})},
        },
        "default",
    )
    try:
        result = scenario.run()
        assert result.code == 1, result.stderr
        assert kube.get_or_none(PV, name) is None, "a forged record was replayed"
        assert name in _records(kube, scenario)
        (line,) = [x for x in result.report["replayed"] if x.startswith(f"{name}:")]
        assert "record refused" in line and "hostPath" in line, line
        assert result.volume(name)["outcome"] == "failed"
    finally:
        if kube.get_or_none(PV, name) is not None:
            scenario.plane.run_kubectl("delete", "pv", name, "--wait=false")
