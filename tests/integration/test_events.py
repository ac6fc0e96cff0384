"""Events aggregate like client-go's recorder: a repeated failure counts up one Event."""

from __future__ import annotations

from tests.integration.scenario import Scenario
from tests.integration.test_recycle import shipped_rbac_for
from tests.sandbox.controlplane import ControlPlane


def test_same_event_three_runs_is_one_event_with_count_3(scenario: Scenario) -> None:
    pv = scenario.released_volume("evinuse", {"live": "data"})
    with scenario.gluster.mounted(scenario.volumes[pv]):
        for _ in range(3):
            result = scenario.run()
            assert result.code == 0, result.stderr
            assert result.volume(pv)["outcome"] == "busy"
    failed = [e for e in scenario.events(pv) if e["reason"] == "VolumeInUse"]
    assert len(failed) == 1, [(e["metadata"]["name"], e["message"]) for e in failed]
    event = failed[0]
    assert event["count"] == 3
    assert event["lastTimestamp"] >= event["firstTimestamp"]
    assert event["reportingComponent"] == "gluster-recycler"
    assert event["action"] == "Recycle"
    assert scenario.listing(pv) == ["live"]


def test_a_cluster_role_without_get_on_events_still_records_them(
    scenario: Scenario, control_plane: ControlPlane
) -> None:
    """An upgrade that keeps the ClusterRole of a release before aggregation (events: create
    only): every run's Event is still recorded, one object each, and the pass is not hurt."""
    pv = scenario.released_volume("evold", {"live": "data"})
    ns = f"evold-{scenario.unique}"
    control_plane.run_kubectl("create", "namespace", ns)
    control_plane.run_kubectl("create", "serviceaccount", "r", "-n", ns)
    shipped_rbac_for(scenario, ns, "r", event_verbs=["create"])
    kubeconfig = control_plane.service_account_kubeconfig(ns, "r")
    with scenario.gluster.mounted(scenario.volumes[pv]):
        for _ in range(2):
            result = scenario.run(kubeconfig=kubeconfig)
            assert result.code == 0, result.stderr
            assert result.volume(pv)["outcome"] == "busy"
    failed = [e for e in scenario.events(pv) if e["reason"] == "VolumeInUse"]
    assert len(failed) == 2, [(e["metadata"]["name"], e.get("count")) for e in failed]
    assert len({e["metadata"]["name"] for e in failed}) == 2
    assert scenario.listing(pv) == ["live"]
