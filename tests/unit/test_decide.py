"""Every decision rule, both ways; max-volumes capping; min-age and first-seen clock edges."""

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from recycler_job.config import load_config
from recycler_job.decide import (
    APPUIO_FAILED_AT_ANNOTATION,
    FIRST_SEEN_ANNOTATION,
    SKIP_ANNOTATION,
    Action,
    DecideSettings,
    Decision,
    decide,
    decide_all,
    first_seen_value,
    parse_first_seen,
)
from recycler_job.selector import parse_selector
from recycler_job.snapshot import ClusterSnapshot
from tests.unit.builders import NO_PLUGIN, OLD_NO_PLUGIN, make_pv, make_pvc

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=UTC)  # one hour after make_pv's transition time
BASE = DecideSettings(
    phases=frozenset({"Failed"}),
    failed_messages=(NO_PLUGIN, OLD_NO_PLUGIN),
    reclaim_policies=frozenset({"Recycle"}),
    selector=None,
    min_age=60.0,
    max_volumes=None,
)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def seen(moment: datetime, claim_uid: str = "uid-old-1234567890") -> str:
    """A first-seen value written for make_pv's claim (or `claim_uid`)."""
    return f"{iso(moment)};claim={claim_uid}"


def run(
    pv: dict[str, Any],
    claims: list[dict[str, Any]] | None = None,
    now: datetime = NOW,
    **settings: Any,
) -> Decision:
    snapshot = ClusterSnapshot.build([pv], claims or [])
    return decide(pv, snapshot, replace(BASE, **settings), now)


# (id, pv, claims, settings overrides, expected action, reason fragment)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any], Action, str]] = [
    ("eligible", make_pv(), [], {}, Action.RECYCLE, "claim is gone"),
    # source
    ("no source", make_pv(source=None), [], {}, Action.SKIP, "not a glusterfs volume"),
    (
        "nfs source",
        make_pv(source={"nfs": {"server": "x", "path": "/e"}}),
        [],
        {},
        Action.SKIP,
        "not a glusterfs volume",
    ),
    (
        "malformed glusterfs path",
        make_pv(source={"glusterfs": {"endpoints": "ep", "path": "vol/../other"}}),
        [],
        {},
        Action.SKIP,
        "not a glusterfs volume",
    ),
    # deletion
    (
        "being deleted",
        make_pv(deletion_timestamp="2024-01-01T00:30:00Z"),
        [],
        {},
        Action.SKIP,
        "being deleted",
    ),
    # skip annotation
    *[
        (
            f"skip annotation {value!r}",
            make_pv(annotations={SKIP_ANNOTATION: value}),
            [],
            {},
            Action.SKIP,
            f"annotated {SKIP_ANNOTATION}",
        )
        for value in ("true", "TRUE", " True ", "yes", "ture")
    ],
    *[
        (
            f"skip annotation off {value!r}",
            make_pv(annotations={SKIP_ANNOTATION: value}),
            [],
            {},
            Action.RECYCLE,
            "",
        )
        for value in ("false", "False", "", "0", "no")
    ],
    (
        "other annotation",
        make_pv(annotations={"example.com/skip": "true"}),
        [],
        {},
        Action.RECYCLE,
        "",
    ),
    # phase and Failed message
    ("phase Bound", make_pv(phase="Bound"), [], {}, Action.SKIP, "phase Bound is not one of"),
    ("phase missing", make_pv(phase=None), [], {}, Action.SKIP, "phase unknown"),
    (
        "Released not opted in",
        make_pv(phase="Released", message=None),
        [],
        {},
        Action.SKIP,
        "phase Released is not one of Failed",
    ),
    (
        "Released opted in",
        make_pv(phase="Released", message=None),
        [],
        {"phases": frozenset({"Released"})},
        Action.RECYCLE,
        "",
    ),
    (
        "Failed not opted in",
        make_pv(),
        [],
        {"phases": frozenset({"Released"})},
        Action.SKIP,
        "phase Failed is not one of Released",
    ),
    (
        "Failed other message",
        make_pv(message="Recycle failed: pod hung"),
        [],
        {},
        Action.SKIP,
        "failed for a reason not ours to fix: 'Recycle failed: pod hung'",
    ),
    ("Failed no message", make_pv(message=None), [], {}, Action.SKIP, "not ours to fix: ''"),
    ("Failed pre-1.3 message", make_pv(message=OLD_NO_PLUGIN), [], {}, Action.RECYCLE, ""),
    (
        "Failed message not in custom list",
        make_pv(),
        [],
        {"failed_messages": ("custom",)},
        Action.SKIP,
        "not ours to fix",
    ),
    # reclaim policy
    (
        "Retain not opted in",
        make_pv(policy="Retain"),
        [],
        {},
        Action.SKIP,
        "reclaim policy Retain is not one of Recycle",
    ),
    (
        "Retain opted in",
        make_pv(policy="Retain"),
        [],
        {"reclaim_policies": frozenset({"Retain"})},
        Action.RECYCLE,
        "",
    ),
    ("Delete not opted in", make_pv(policy="Delete"), [], {}, Action.SKIP, "Delete"),
    ("policy unset", make_pv(policy=None), [], {}, Action.SKIP, "reclaim policy unset"),
    # selector
    (
        "selector matches",
        make_pv(labels={"tier": "scratch"}),
        [],
        {"selector": parse_selector("tier=scratch")},
        Action.RECYCLE,
        "",
    ),
    (
        "selector does not match",
        make_pv(labels={"tier": "gold"}),
        [],
        {"selector": parse_selector("tier=scratch")},
        Action.SKIP,
        "labels do not match selector 'tier=scratch'",
    ),
    (
        "selector without labels",
        make_pv(),
        [],
        {"selector": parse_selector("tier")},
        Action.SKIP,
        "do not match",
    ),
    (
        "negative selector without labels",
        make_pv(),
        [],
        {"selector": parse_selector("!keep")},
        Action.RECYCLE,
        "",
    ),
    # claimRef and the claim
    ("no claimRef", make_pv(claim=None), [], {}, Action.SKIP, "no claimRef: already available"),
    (
        "claimRef without namespace",
        make_pv(claim=("", "data")),
        [],
        {},
        Action.SKIP,
        "claimRef has no namespace or name",
    ),
    (
        "claim still exists",
        make_pv(claim_uid="1234567890abcdef"),
        [make_pvc(uid="1234567890abcdef")],
        {},
        Action.SKIP,
        "claim default/data still exists (uid 12345678…)",
    ),
    (
        "claim re-created with another uid",
        make_pv(claim_uid="old"),
        [make_pvc(uid="new")],
        {},
        Action.RECYCLE,
        "",
    ),
    (
        "claimRef without uid, claim exists",
        make_pv(claim_uid=None),
        [make_pvc(uid="any")],
        {},
        Action.SKIP,
        "claimRef has no uid",
    ),
    (
        "claimRef without uid, claim gone: a reservation",
        make_pv(claim_uid=None),
        [],
        {},
        Action.SKIP,
        "reserved for claim default/data (claimRef without uid)",
    ),
    (
        "existing claim without uid",
        make_pv(claim_uid="old"),
        [make_pvc(uid=None)],
        {},
        Action.SKIP,
        "has no uid to compare",
    ),
    (
        "same claim name in another namespace",
        make_pv(claim_uid="old"),
        [make_pvc(namespace="other", uid="old")],
        {},
        Action.RECYCLE,
        "",
    ),
    # a claim asking for this volume by name
    (
        "claim names this volume",
        make_pv(name="pv-a"),
        [make_pvc(namespace="team", name="restore", volume_name="pv-a")],
        {},
        Action.SKIP,
        "claim team/restore asks for this volume",
    ),
    (
        "claim names another volume",
        make_pv(name="pv-a"),
        [make_pvc(namespace="team", name="restore", volume_name="pv-b")],
        {},
        Action.RECYCLE,
        "",
    ),
]


@pytest.mark.parametrize(
    ("pv", "claims", "overrides", "action", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rules(
    pv: dict[str, Any],
    claims: list[dict[str, Any]],
    overrides: dict[str, Any],
    action: Action,
    fragment: str,
) -> None:
    decision = run(pv, claims, **overrides)
    assert decision.action is action, decision.reason
    assert fragment in decision.reason
    assert decision.pv_name == pv["metadata"]["name"]
    assert decision.mark_first_seen is False


def test_safety_rules_come_before_the_claim_rule() -> None:
    """The reason names the first failing rule, cheapest and safest first."""
    pv = make_pv(annotations={SKIP_ANNOTATION: "true"}, policy="Retain", claim_uid="u")
    decision = run(pv, [make_pvc(uid="u")])
    assert decision.action is Action.SKIP
    assert SKIP_ANNOTATION in decision.reason


def test_deleted_non_gluster_pv_reports_the_source() -> None:
    decision = run(make_pv(source=None, deletion_timestamp="2024-01-01T00:00:00Z"))
    assert decision.reason == "not a glusterfs volume"


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(make_pv(), now=NOW.replace(tzinfo=None))


# --- age: lastPhaseTransitionTime, then the first-seen annotation ---

# (id, lastPhaseTransitionTime, first-seen annotation, min_age, action, mark, reason fragment)
AGE_CASES: list[tuple[str, str | None, str | None, float, Action, bool, str]] = [
    (
        "transition old enough",
        iso(NOW - timedelta(seconds=61)),
        None,
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "transition exactly min-age",
        iso(NOW - timedelta(seconds=60)),
        None,
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "transition a microsecond short",
        iso(NOW - timedelta(seconds=59, microseconds=999999)),
        None,
        60,
        Action.WAIT,
        False,
        "too young",
    ),
    (
        "transition too young",
        iso(NOW - timedelta(seconds=15)),
        None,
        60,
        Action.WAIT,
        False,
        "in its phase 15s ago, 45s left of min-age 60s",
    ),
    (
        "transition in the future (clock skew)",
        iso(NOW + timedelta(seconds=30)),
        None,
        60,
        Action.WAIT,
        False,
        "0s ago, 90s left",
    ),
    (
        "transition with offset",
        "2024-01-01T01:59:00+01:00",  # 00:59 UTC: one minute ago
        None,
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "transition with nanoseconds",
        "2024-01-01T00:58:59.123456789Z",
        None,
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "young transition beats an old first-seen",
        iso(NOW - timedelta(seconds=10)),
        seen(NOW - timedelta(days=3)),
        60,
        Action.WAIT,
        False,
        "in its phase",
    ),
    (
        "first-seen old enough",
        None,
        seen(NOW - timedelta(minutes=5)),
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "first-seen of an earlier claim is re-marked",
        None,
        seen(NOW - timedelta(days=3), claim_uid="uid-of-an-earlier-claim"),
        60,
        Action.WAIT,
        True,
        "is not for the claim in claimRef (uid uid-old-…): re-marking",
    ),
    (
        "first-seen naming no claim is re-marked",
        None,
        iso(NOW - timedelta(days=3)),
        60,
        Action.WAIT,
        True,
        "re-marking first-seen",
    ),
    (
        "first-seen with an empty claim is re-marked",
        None,
        iso(NOW - timedelta(days=3)) + ";claim=",
        60,
        Action.WAIT,
        True,
        "re-marking first-seen",
    ),
    (
        "first-seen with unknown fields keeps its claim",
        None,
        iso(NOW - timedelta(minutes=5)) + ";by=admin; claim=uid-old-1234567890",
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "first-seen with an unparseable time and the right claim",
        None,
        "yesterday;claim=uid-old-1234567890",
        60,
        Action.WAIT,
        True,
        "unparseable",
    ),
    (
        "first-seen too young",
        None,
        seen(NOW - timedelta(seconds=20)),
        60,
        Action.WAIT,
        False,
        "first seen 20s ago, 40s left",
    ),
    ("no timestamps", None, None, 60, Action.WAIT, True, "marking first-seen"),
    (
        "unparseable first-seen",
        None,
        "yesterday",
        60,
        Action.WAIT,
        True,
        "unparseable gluster-recycler/first-seen 'yesterday'",
    ),
    (
        "naive first-seen is unparseable",
        None,
        "2024-01-01T00:00:00",
        60,
        Action.WAIT,
        True,
        "unparseable",
    ),
    (
        "date-only first-seen is unparseable",
        None,
        "2024-01-01",
        60,
        Action.WAIT,
        True,
        "unparseable",
    ),
    (
        "unparseable transition falls back to first-seen",
        "garbage",
        seen(NOW - timedelta(minutes=5)),
        60,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "unparseable transition, no first-seen",
        "garbage",
        None,
        60,
        Action.WAIT,
        True,
        "marking first-seen",
    ),
    ("min-age 0 needs no timestamp", None, None, 0, Action.RECYCLE, False, ""),
    (
        "min-age 0 ignores a future transition",
        iso(NOW + timedelta(hours=1)),
        None,
        0,
        Action.RECYCLE,
        False,
        "",
    ),
    (
        "long min-age",
        iso(NOW - timedelta(hours=1)),
        None,
        7200,
        Action.WAIT,
        False,
        "3600s left of min-age 7200s",
    ),
]


@pytest.mark.parametrize(
    ("transition", "first_seen", "min_age", "action", "mark", "fragment"),
    [case[1:] for case in AGE_CASES],
    ids=[case[0] for case in AGE_CASES],
)
def test_age(
    transition: str | None,
    first_seen: str | None,
    min_age: float,
    action: Action,
    mark: bool,
    fragment: str,
) -> None:
    annotations = {FIRST_SEEN_ANNOTATION: first_seen} if first_seen is not None else None
    pv = make_pv(last_transition=transition, annotations=annotations)
    decision = run(pv, min_age=min_age)
    assert decision.action is action, decision.reason
    assert decision.mark_first_seen is mark
    assert fragment in decision.reason


def test_age_is_checked_last() -> None:
    """A PV we would skip anyway is not stamped with first-seen."""
    decision = run(make_pv(last_transition=None, policy="Retain"))
    assert decision.action is Action.SKIP
    assert decision.mark_first_seen is False


# --- decide_all ---


def snapshot_of(*pvs: dict[str, Any]) -> ClusterSnapshot:
    return ClusterSnapshot.build(list(pvs), [])


def test_decide_all_sorts_by_name() -> None:
    snap = snapshot_of(make_pv("pv-c"), make_pv("pv-a", policy="Retain"), make_pv("pv-b"))
    decisions = decide_all(snap, BASE, NOW)
    assert [d.pv_name for d in decisions] == ["pv-a", "pv-b", "pv-c"]
    assert [d.action for d in decisions] == [Action.SKIP, Action.RECYCLE, Action.RECYCLE]


def test_decide_all_caps_eligible_volumes() -> None:
    snap = snapshot_of(
        make_pv("pv-d"),
        make_pv("pv-a"),
        make_pv("pv-b", policy="Retain"),  # skipped: does not count towards the cap
        make_pv("pv-c"),
        make_pv("pv-e", last_transition=None),  # waiting: does not count either
    )
    decisions = decide_all(snap, replace(BASE, max_volumes=2), NOW)
    by_name = {d.pv_name: d for d in decisions}
    assert by_name["pv-a"].action is Action.RECYCLE
    assert by_name["pv-b"].action is Action.SKIP
    assert by_name["pv-c"].action is Action.RECYCLE
    assert by_name["pv-d"].action is Action.WAIT
    assert by_name["pv-d"].reason == "max-volumes reached (2 per run)"
    assert by_name["pv-e"].action is Action.WAIT
    assert by_name["pv-e"].mark_first_seen is True


@pytest.mark.parametrize(("cap", "recycled"), [(None, 3), (1, 1), (3, 3), (10, 3)])
def test_decide_all_cap_counts(cap: int | None, recycled: int) -> None:
    snap = snapshot_of(make_pv("pv-1"), make_pv("pv-2"), make_pv("pv-3"))
    decisions = decide_all(snap, replace(BASE, max_volumes=cap), NOW)
    assert sum(d.action is Action.RECYCLE for d in decisions) == recycled
    assert sum(d.action is Action.WAIT for d in decisions) == 3 - recycled


def test_decide_all_empty() -> None:
    assert decide_all(snapshot_of(), BASE, NOW) == []


def test_decide_all_uses_the_snapshot_claims() -> None:
    pv = make_pv("pv-a", claim_uid="u")
    snap = ClusterSnapshot.build([pv], [make_pvc(uid="u")])
    assert decide_all(snap, BASE, NOW)[0].action is Action.SKIP


def test_settings_from_config() -> None:
    config = load_config(
        [
            "--phases=Failed,Released",
            "--reclaim-policies=Recycle,Retain",
            "--selector=tier=scratch",
            "--min-age=5m",
            "--max-volumes=3",
            "--failed-messages=a|b",
        ],
        {},
        namespace_file="/nonexistent",
    )
    settings = DecideSettings.from_config(config)
    assert settings.phases == frozenset({"Failed", "Released"})
    assert settings.reclaim_policies == frozenset({"Recycle", "Retain"})
    assert settings.failed_messages == ("a", "b")
    assert settings.min_age == 300
    assert settings.max_volumes == 3
    assert settings.selector is not None
    assert settings.selector.matches({"tier": "scratch"})
    assert not settings.selector.matches({"tier": "gold"})


def test_settings_from_config_without_selector() -> None:
    config = load_config([], {}, namespace_file="/nonexistent")
    assert DecideSettings.from_config(config).selector is None


# --- PVs sharing a gluster volume ---


def gluster_source(path: str) -> dict[str, Any]:
    return {"glusterfs": {"endpoints": "glusterfs-cluster", "path": path}}


# (id, path of the PV decided on, path of the other PV, expected action)
SHARED_CASES: list[tuple[str, str, str, Action]] = [
    ("root vs subdir", "shared", "shared/sub", Action.SKIP),
    ("subdir vs root", "shared/sub", "shared", Action.SKIP),
    ("equal paths", "shared/sub", "shared/sub", Action.SKIP),
    ("slashes do not matter", "/shared/", "shared", Action.SKIP),
    ("doubled slashes", "shared/a", "shared//a/", Action.SKIP),
    ("deeper descendant", "shared/a", "shared/a/b/c", Action.SKIP),
    ("dot-dot in the other path", "shared/a", "shared/b/../a", Action.SKIP),
    ("siblings a/b vs a/bc", "shared/a/b", "shared/a/bc", Action.RECYCLE),
    ("sibling subdirs", "shared/x", "shared/y", Action.RECYCLE),
    ("other volume", "shared", "sharedx", Action.RECYCLE),
    ("volume names are exact", "shared", "Shared", Action.RECYCLE),
]


@pytest.mark.parametrize(
    ("mine", "other", "action"),
    [case[1:] for case in SHARED_CASES],
    ids=[case[0] for case in SHARED_CASES],
)
def test_pv_sharing_a_gluster_volume_path_is_not_recycled(
    mine: str, other: str, action: Action
) -> None:
    pv = make_pv("pv-a", source=gluster_source(mine))
    # The other PV is Bound, Retain and outside any selector: it still counts.
    other_pv = make_pv(
        "pv-other",
        phase="Bound",
        policy="Retain",
        labels={"team": "x"},
        source=gluster_source(other),
    )
    snapshot = ClusterSnapshot.build([pv, other_pv], [])
    settings = replace(BASE, selector=parse_selector("team!=x"))
    decision = decide(pv, snapshot, settings, NOW)
    assert decision.action is action, decision.reason
    if action is Action.SKIP:
        assert "pv/pv-other" in decision.reason
        assert "overlaps" in decision.reason


def test_shared_volume_sees_pvs_outside_the_decided_list() -> None:
    """The runner lists every PV; the recheck indexes the fresh list through `others`."""
    pv = make_pv("pv-a", source=gluster_source("vol/a"))
    other = make_pv("pv-b", source=gluster_source("vol"), phase="Bound")
    decision = decide(pv, ClusterSnapshot.build([pv], [], others=[other]), BASE, NOW)
    assert decision.action is Action.SKIP
    assert "pv/pv-b" in decision.reason
    alone = decide(pv, ClusterSnapshot.build([pv], [], others=[pv]), BASE, NOW)
    assert alone.action is Action.RECYCLE, alone.reason


def test_shared_volume_index_is_fast_on_10000_pvs() -> None:
    """Indexing by volume keeps the rule O(PVs on that volume), not O(PVs in the cluster)."""
    pvs = [make_pv(f"pv-{i:05d}", source=gluster_source(f"vol-{i}")) for i in range(10_000)]
    snapshot = ClusterSnapshot.build(pvs, [])
    started = time.perf_counter()
    decisions = decide_all(snapshot, BASE, NOW)
    elapsed = time.perf_counter() - started
    assert all(d.action is Action.RECYCLE for d in decisions)
    assert elapsed < 2.0, f"decide_all on 10,000 PVs took {elapsed:.2f}s"


# --- first-seen belongs to one claim; a claimRef without uid is a reservation ---


def test_first_seen_value_names_the_claim_and_parses_back() -> None:
    pv = make_pv(claim_uid="u-1")
    value = first_seen_value(pv, NOW)
    assert value == "2024-01-01T01:00:00Z;claim=u-1"
    assert parse_first_seen(value) == (NOW, "u-1")
    assert parse_first_seen(None) == (None, None)
    assert parse_first_seen("2024-01-01T01:00:00Z") == (NOW, None)


def test_first_seen_clock_runs_for_its_claim_only() -> None:
    """Marked for claim u-1, released by hand and rebound: the deletion of claim u-2 waits
    the whole min-age again although the old stamp is days old."""
    marked_at = NOW - timedelta(days=3)
    first = make_pv(claim_uid="u-1", last_transition=None)
    assert run(first, now=marked_at).mark_first_seen is True
    stamp = first_seen_value(first, marked_at)
    stamped = make_pv(
        claim_uid="u-1", last_transition=None, annotations={FIRST_SEEN_ANNOTATION: stamp}
    )
    assert run(stamped).action is Action.RECYCLE
    rebound = make_pv(
        claim_uid="u-2", last_transition=None, annotations={FIRST_SEEN_ANNOTATION: stamp}
    )
    decision = run(rebound)
    assert decision.action is Action.WAIT
    assert decision.mark_first_seen is True
    restamped = make_pv(
        claim_uid="u-2",
        last_transition=None,
        annotations={FIRST_SEEN_ANNOTATION: first_seen_value(rebound, NOW)},
    )
    assert run(restamped, now=NOW + timedelta(seconds=59)).action is Action.WAIT
    assert run(restamped, now=NOW + timedelta(seconds=60)).action is Action.RECYCLE


@pytest.mark.parametrize("min_age", [0.0, 60.0])
def test_a_reservation_is_never_eligible(min_age: float) -> None:
    """claimRef without uid and no claim: how an admin pre-binds, and what a release of a
    pre-bound PV leaves while the controller has not yet made it Available."""
    for phase in ("Failed", "Released"):
        pv = make_pv(claim_uid=None, phase=phase)
        decision = run(pv, min_age=min_age, phases=frozenset({"Failed", "Released"}))
        assert decision.action is Action.SKIP
        assert decision.reason.startswith("reserved for claim default/data")
        assert decision.mark_first_seen is False


# --- the appuio fork's appuio.ch/failed-at annotation (docs/upgrade.md) ---


def _failed_at(moment: datetime) -> str:
    """The fork's `date -Is` format: seconds and a numeric offset."""
    return moment.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="seconds")


def test_failed_at_is_the_first_seen_time_of_a_pv_we_never_marked() -> None:
    old = make_pv(
        last_transition=None,
        annotations={APPUIO_FAILED_AT_ANNOTATION: _failed_at(NOW - timedelta(seconds=61))},
    )
    decision = run(old)
    assert decision.action is Action.RECYCLE
    young = make_pv(
        last_transition=None,
        annotations={APPUIO_FAILED_AT_ANNOTATION: _failed_at(NOW - timedelta(seconds=30))},
    )
    decision = run(young)
    assert decision.action is Action.WAIT
    assert decision.mark_first_seen is False, "failed-at already is the clock"
    assert "failed-at" in decision.reason


@pytest.mark.parametrize("transition", [True, False])
def test_a_later_failed_at_only_postpones(transition: bool) -> None:
    """The phase transition (or our first-seen) is an hour old, the fork saw it 30 s ago."""
    annotations = {APPUIO_FAILED_AT_ANNOTATION: _failed_at(NOW - timedelta(seconds=30))}
    if not transition:
        annotations[FIRST_SEEN_ANNOTATION] = seen(NOW - timedelta(hours=1))
    pv = make_pv(
        last_transition=iso(NOW - timedelta(hours=1)) if transition else None,
        annotations=annotations,
    )
    assert run(pv).action is Action.WAIT
    assert run(pv, now=NOW + timedelta(seconds=31)).action is Action.RECYCLE


def test_failed_at_does_not_bypass_a_first_seen_of_another_claim() -> None:
    pv = make_pv(
        claim_uid="u-2",
        last_transition=None,
        annotations={
            FIRST_SEEN_ANNOTATION: seen(NOW - timedelta(days=3), "u-1"),
            APPUIO_FAILED_AT_ANNOTATION: _failed_at(NOW - timedelta(days=3)),
        },
    )
    decision = run(pv)
    assert decision.action is Action.WAIT
    assert decision.mark_first_seen is True
