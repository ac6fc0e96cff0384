"""`--min-age` through the `gluster-recycler/first-seen` annotation, whole passes.

API servers before 1.28 have no `status.lastPhaseTransitionTime`; there the annotation is the
only clock, and these tests run (the 1.25 sandbox, `K8S_VERSION=1.25`). A server that sets the
field makes the annotation path unreachable (it even re-adds the field when a status patch
removes it): there they are skipped, and tests/unit/test_decide.py covers the rules while
test_options.py covers the annotation's write against the real API.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from recycler_job.clock import format_time
from recycler_job.decide import FIRST_SEEN_ANNOTATION, parse_first_seen
from tests.integration.scenario import Scenario
from tests.sandbox.objects import pvc, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]

MIN_AGE = 600  # long enough that no run of a test reaches it by the clock


def skip_if_server_sets_phase_times(scenario: Scenario, pv: str) -> None:
    if "lastPhaseTransitionTime" in scenario.pv(pv).get("status", {}):
        pytest.skip(
            "the API server sets status.lastPhaseTransitionTime (1.28+): first-seen is never "
            "used; run with K8S_VERSION=1.25"
        )


def first_seen(scenario: Scenario, pv: str) -> tuple[datetime, str]:
    value = scenario.pv(pv)["metadata"].get("annotations", {}).get(FIRST_SEEN_ANNOTATION)
    when, claim = parse_first_seen(value)
    assert when is not None and claim is not None, value
    return when, claim


def age_past_min_age(scenario: Scenario, pv: str) -> datetime:
    """Move the first-seen stamp back past min-age, its claim uid unchanged (what the clock
    would do in MIN_AGE seconds; the next run reads only the annotation); the new stamp."""
    when, claim = first_seen(scenario, pv)
    older = when - timedelta(seconds=MIN_AGE + 1)
    value = f"{format_time(older)};claim={claim}"
    patch = json.dumps({"metadata": {"annotations": {FIRST_SEEN_ANNOTATION: value}}})
    scenario.plane.run_kubectl("patch", "pv", pv, "--type=merge", "-p", patch)
    assert first_seen(scenario, pv) == (older, claim)
    return older


def test_first_run_records_an_early_run_waits_a_later_run_recycles(scenario: Scenario) -> None:
    pv = scenario.released_volume("grace", {"f": "x"})
    skip_if_server_sets_phase_times(scenario, pv)
    claim_uid = scenario.pv(pv)["spec"]["claimRef"]["uid"]

    first = scenario.run("--min-age", str(MIN_AGE))
    assert first.code == 0, first.stderr
    assert first.volume(pv)["outcome"] == "waiting"
    assert "marking first-seen" in first.volume(pv)["reason"]
    when, claim = first_seen(scenario, pv)
    assert claim == claim_uid

    early = scenario.run("--min-age", str(MIN_AGE))
    assert early.code == 0, early.stderr
    assert early.volume(pv)["outcome"] == "waiting"
    assert "too young: first seen" in early.volume(pv)["reason"]
    assert first_seen(scenario, pv) == (when, claim)  # waiting does not restart the clock
    assert scenario.listing(pv) == ["f"]

    age_past_min_age(scenario, pv)
    later = scenario.run("--min-age", str(MIN_AGE))
    assert later.code == 0, later.stderr
    assert later.volume(pv)["outcome"] == "recycled"
    assert scenario.listing(pv) == []
    assert FIRST_SEEN_ANNOTATION not in scenario.pv(pv)["metadata"].get("annotations", {})


def test_a_first_seen_of_an_earlier_claim_does_not_shorten_the_wait(scenario: Scenario) -> None:
    pv = scenario.released_volume("regrace", {"old": "x"})
    skip_if_server_sets_phase_times(scenario, pv)
    first = scenario.run("--min-age", str(MIN_AGE))
    assert first.code == 0, first.stderr
    old_when, old_claim = first_seen(scenario, pv)

    # An admin releases the PV by hand (our annotation stays), a new claim binds it, writes
    # and is deleted again: the data is the new claim's, its deletion just happened.
    patch = json.dumps({"spec": {"claimRef": None}})
    scenario.plane.run_kubectl("patch", "pv", pv, "--type=merge", "-p", patch)
    wait_for(lambda: scenario.phase(pv) == "Available", what="the manual release")
    claim = f"second-{pv}"
    scenario.plane.apply(pvc(claim, scenario.namespace, volume_name=pv))
    wait_for(lambda: scenario.phase(pv) == "Bound", what="the second claim to bind")
    scenario.gluster.write_files(scenario.volumes[pv], {"new": "second claim's data"})
    new_uid = scenario.pv(pv)["spec"]["claimRef"]["uid"]
    assert new_uid != old_claim
    scenario.plane.run_kubectl("delete", "pvc", claim, "-n", scenario.namespace, "--wait=false")
    wait_for(lambda: scenario.phase(pv) == "Failed", what="the second release")
    # Still there after the release and the rebind; made old enough.
    assert first_seen(scenario, pv) == (old_when, old_claim)
    old_when = age_past_min_age(scenario, pv)

    stale = scenario.run("--min-age", str(MIN_AGE))
    assert stale.code == 0, stale.stderr
    assert stale.volume(pv)["outcome"] == "waiting"
    assert "is not for the claim in claimRef" in stale.volume(pv)["reason"]
    assert scenario.listing(pv) == ["new", "old"]
    when, claim_uid = first_seen(scenario, pv)
    assert claim_uid == new_uid and when > old_when + timedelta(seconds=MIN_AGE)

    age_past_min_age(scenario, pv)
    later = scenario.run("--min-age", str(MIN_AGE))
    assert later.code == 0, later.stderr
    assert later.volume(pv)["outcome"] == "recycled"
    assert scenario.listing(pv) == []
