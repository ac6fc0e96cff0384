"""Events aggregate like client-go's recorder: a repeated failure counts up one Event."""

from __future__ import annotations

from tests.integration.scenario import Scenario


def test_same_failure_three_runs_is_one_event_with_count_3(scenario: Scenario) -> None:
    pv = scenario.released_volume("evinuse", {"live": "data"})
    with scenario.gluster.mounted(scenario.volumes[pv]):
        for _ in range(3):
            result = scenario.run()
            assert result.code == 1
            assert "client" in result.volume(pv)["error"].lower()
    failed = [e for e in scenario.events(pv) if e["reason"] == "RecycleFailed"]
    assert len(failed) == 1, [(e["metadata"]["name"], e["message"]) for e in failed]
    event = failed[0]
    assert event["count"] == 3
    assert event["lastTimestamp"] >= event["firstTimestamp"]
    assert event["reportingComponent"] == "gluster-recycler"
    assert event["action"] == "Recycle"
    assert scenario.listing(pv) == ["live"]
