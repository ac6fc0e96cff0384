"""The cluster view's pure logic: slim records, applying events, relists, and the wipes it stops.

No API server here: events are applied as the watch threads apply them, and the few requests
the view makes itself (a relist, the proof's `limit=1` lists) come from a small stand-in.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from recycler_job import view as view_module
from recycler_job.api_errors import ApiStatus, KubeError
from recycler_job.decide import Action, DecideSettings, decide
from recycler_job.kube import LEASE, PV, PVC, Listed, ResourceKind
from recycler_job.snapshot import ClusterSnapshot
from recycler_job.view import ClusterView, NotCurrent, slim_claim, slim_pv, version_number
from tests.unit.builders import NO_PLUGIN, make_pv, make_pvc

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SETTINGS = DecideSettings(
    phases=frozenset({"Failed", "Released"}),
    failed_messages=(NO_PLUGIN,),
    reclaim_policies=frozenset({"Recycle"}),
    selector=None,
    min_age=60.0,
    max_volumes=None,
)


def pv(
    name: str = "pv-a", rv: str = "10", path: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    obj = make_pv(name, **kwargs)
    obj["metadata"]["resourceVersion"] = rv
    obj["metadata"]["managedFields"] = [{"manager": "kube-controller-manager"}]
    if path is not None:
        obj["spec"]["glusterfs"]["path"] = path
    return obj


def claim(name: str = "data", rv: str = "11", **kwargs: Any) -> dict[str, Any]:
    obj = make_pvc(name=name, **kwargs)
    obj["metadata"]["resourceVersion"] = rv
    return obj


class StandIn:
    """Answers the view's own requests: lists and `limit=1` versions, as told."""

    def __init__(self) -> None:
        self.lists: dict[ResourceKind, Listed] = {}
        self.versions: dict[ResourceKind, str] = {PV: "100", PVC: "100"}
        self.failures: list[KubeError] = []

    def list_collection(self, kind: ResourceKind, **kwargs: Any) -> Listed:
        keep = kwargs.get("keep") or (lambda item: item)
        listed = self.lists.get(kind, Listed([], 1, "1"))
        return Listed([keep(item) for item in listed.items], listed.pages, listed.resource_version)

    def collection_version(self, kind: ResourceKind) -> str:
        if self.failures:
            raise self.failures.pop(0)
        return self.versions[kind]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def loaded(
    pvs: list[dict[str, Any]],
    claims: list[dict[str, Any]],
    *,
    lease: tuple[str, str, str] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[ClusterView, StandIn]:
    kube = StandIn()
    kube.lists[PV] = Listed(pvs, 1, "20")
    kube.lists[PVC] = Listed(claims, 1, "20")
    if lease is not None:
        kube.lists[LEASE] = Listed([{"spec": {"holderIdentity": lease[2]}}], 1, "20")
    view = ClusterView(kube, lease=lease, monotonic=clock or Clock())  # type: ignore[arg-type]
    view.load()
    return view, kube


class Fired:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


def watched(view: ClusterView, record: dict[str, Any]) -> tuple[Fired, Any]:
    fired = Fired()
    context = view.watch_volume(record, SETTINGS, lambda: NOW, fired)
    context.__enter__()
    return fired, context


# ---- slim records ---------------------------------------------------------------------------


def test_slim_records_keep_only_what_the_rules_read() -> None:
    whole = pv(annotations={"gluster-recycler/skip": "no", "big": "x" * 1000}, labels={"a": "b"})
    slim = slim_pv(whole)
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["annotations"] == {"gluster-recycler/skip": "no"}
    assert slim["metadata"]["labels"] == {"a": "b"}
    assert "capacity" not in slim["spec"] and "accessModes" not in slim["spec"]
    assert set(slim["spec"]["claimRef"]) == {"namespace", "name", "uid"}
    assert slim_claim(claim(volume_name="pv-a")) == {
        "metadata": {"namespace": "default", "name": "data", "uid": "uid-new-0000000000",
                     "resourceVersion": "11"},
        "spec": {"volumeName": "pv-a"},
    }  # fmt: skip


@pytest.mark.parametrize(
    "record",
    [
        pv(),
        pv(phase="Bound", message=None),
        pv(policy="Retain"),
        pv(annotations={"gluster-recycler/skip": "yes"}),
        pv(labels={"tier": "gold"}),
        pv(deletion_timestamp="2024-01-01T00:00:00Z"),
        pv(
            last_transition=None,
            annotations={"gluster-recycler/first-seen": "2020-01-01T00:00:00Z"},
        ),
        pv(claim_uid=None),
        pv(source=None),
    ],
)
def test_decide_reads_a_slim_pv_as_it_reads_the_whole_one(record: dict[str, Any]) -> None:
    claims = [claim(name="data", uid="uid-old-1234567890"), claim(name="other", volume_name="x")]
    for claims_now in ([], claims):
        whole = decide(record, ClusterSnapshot.build([record], claims_now), SETTINGS, NOW)
        slim = decide(
            slim_pv(record),
            ClusterSnapshot.build([slim_pv(record)], [slim_claim(c) for c in claims_now]),
            SETTINGS,
            NOW,
        )
        assert (slim.action, slim.reason) == (whole.action, whole.reason)


def test_resource_versions_compare_only_as_etcd_integers() -> None:
    assert version_number("12345") == 12345
    assert version_number("") is None
    assert version_number("abc") is None
    assert version_number(None) is None


# ---- applying events ------------------------------------------------------------------------


def test_events_keep_the_indexes_that_decide_reads() -> None:
    view, _ = loaded([pv("pv-a", path="vol/a")], [])
    view.apply(PV, "ADDED", pv("pv-b", path="vol/a/b"))
    view.apply(PVC, "ADDED", claim("asks", volume_name="pv-a"))
    snap = view.snapshot()
    assert [use.pv for use in snap.pvs_on_volume("vol")] == ["pv-a", "pv-b"]
    assert [c["metadata"]["name"] for c in snap.claims_naming("pv-a")] == ["asks"]
    view.apply(PV, "MODIFIED", pv("pv-b", path="other/b"))
    view.apply(PVC, "MODIFIED", claim("asks", volume_name="pv-z"))
    snap = view.snapshot()
    assert [use.pv for use in snap.pvs_on_volume("vol")] == ["pv-a"]
    assert [use.pv for use in snap.pvs_on_volume("other")] == ["pv-b"]
    assert snap.claims_naming("pv-a") == []
    view.apply(PV, "DELETED", pv("pv-b", path="other/b"))
    view.apply(PVC, "DELETED", claim("asks", volume_name="pv-z"))
    snap = view.snapshot()
    assert snap.pvs_on_volume("other") == [] and snap.claims == {}
    assert all("managedFields" not in p["metadata"] for p in view.pvs())


def test_a_bookmark_moves_the_version_and_nothing_else() -> None:
    view, _ = loaded([pv()], [])
    before = view.snapshot()
    view.apply(PV, "BOOKMARK", {"metadata": {"resourceVersion": "77"}})
    assert view._kinds[PV].resource_version == "77"
    assert view.snapshot().pvs == before.pvs


def test_a_relist_replaces_what_the_view_held_and_reconsiders_every_wipe() -> None:
    record = pv("pv-a", path="vol/a")
    view, kube = loaded([record, pv("gone", path="x")], [claim("old", volume_name="zz")])
    fired, _ = watched(view, record)
    kube.lists[PV] = Listed([record, pv("pv-new", path="vol/a/b")], 1, "90")
    kube.lists[PVC] = Listed([], 1, "90")
    view._relist(view._kinds[PV])
    view._relist(view._kinds[PVC])
    assert sorted(p["metadata"]["name"] for p in view.pvs()) == ["pv-a", "pv-new"]
    assert view.claim_count() == 0
    assert view._kinds[PV].resource_version == "90" and view._kinds[PV].relists == 1
    assert fired.reasons and "overlaps pv/pv-new" in fired.reasons[0]


# ---- every rule on every change -------------------------------------------------------------


def test_each_change_that_touches_a_wiped_volume_stops_it() -> None:
    record = pv("pv-a", path="vol/a")
    changes: list[tuple[ResourceKind, str, dict[str, Any], str]] = [
        (PVC, "ADDED", claim("new", volume_name="pv-a"), "asks for this volume"),
        (PV, "MODIFIED", pv("pv-a", rv="12", path="vol/a"), "was modified"),
        (PV, "DELETED", pv("pv-a", path="vol/a"), "was deleted"),
        (PV, "ADDED", pv("pv-b", path="vol/a/b"), "overlaps pv/pv-b"),
        (PV, "ADDED", pv("pv-c", path="vol"), "overlaps pv/pv-c"),
        (PVC, "ADDED", claim("data", uid="uid-old-1234567890"), "still exists"),
    ]
    for kind, event, obj, reason in changes:
        view, _ = loaded([record], [])
        fired, _ = watched(view, record)
        assert fired.reasons == []
        view.apply(kind, event, obj)
        assert len(fired.reasons) == 1 and reason in fired.reasons[0], (reason, fired.reasons)


def test_changes_elsewhere_leave_the_wipe_alone() -> None:
    record = pv("pv-a", path="vol/a")
    view, _ = loaded([record, pv("pv-s", path="vol/s")], [])
    fired, context = watched(view, record)
    view.apply(PV, "ADDED", pv("pv-b", path="vol/ab"))  # a sibling, not a subdirectory
    view.apply(PV, "MODIFIED", pv("pv-s", rv="30", path="vol/s"))
    view.apply(PV, "ADDED", pv("pv-o", path="other/a"))
    view.apply(PVC, "ADDED", claim("mine", volume_name="pv-o"))
    view.apply(PVC, "ADDED", claim("data", namespace="elsewhere"))
    assert fired.reasons == []
    context.__exit__(None, None, None)
    view.apply(PVC, "ADDED", claim("late", volume_name="pv-a"))
    assert fired.reasons == []  # no longer wiped: nobody to tell


def test_the_lease_taken_by_another_holder_stops_every_wipe() -> None:
    lease = ("ns", "lock", "me")
    view, _ = loaded([pv("pv-a"), pv("pv-b")], [], lease=lease)
    first, first_context = watched(view, pv("pv-a"))
    second, second_context = watched(view, pv("pv-b"))
    view.apply(LEASE, "MODIFIED", {"spec": {"holderIdentity": "me"}})
    assert first.reasons == second.reasons == []
    view.apply(LEASE, "MODIFIED", {"spec": {"holderIdentity": "other"}})
    assert "Lease ns/lock is now held by other" in first.reasons[0]
    assert second.reasons == first.reasons
    first_context.__exit__(None, None, None)
    second_context.__exit__(None, None, None)


# ---- proven current, or stop ----------------------------------------------------------------


def running(view: ClusterView) -> None:
    """Mark the watches as running without starting threads (the tests drive the state)."""
    view._threads.append(threading.Thread(target=lambda: None))


def test_not_current_once_a_watch_is_silent_for_two_seconds() -> None:
    clock = Clock()
    record = pv()
    view, _ = loaded([record], [], clock=clock)
    assert view.not_current() == "its watches are not running"
    running(view)
    for state in view._kinds.values():
        state.heard_at = clock.now
    clock.now += view_module.STALE_AFTER_S - 0.1
    assert view.not_current() is None
    view.apply(PV, "BOOKMARK", {"metadata": {"resourceVersion": "30"}})
    clock.now += 0.5
    reason = view.not_current()
    assert reason is not None and "PersistentVolumeClaim watch" in reason


def test_not_current_once_a_broken_watch_is_not_resumed_in_time() -> None:
    """A failing watch (refused, reset) is given `RESUME_WITHIN_S` from its first failure,
    less than silence; a failure resumed in time, or any event, starts the count over."""
    clock = Clock()
    view, _ = loaded([pv()], [], clock=clock)
    running(view)
    for state in view._kinds.values():
        state.heard_at = clock.now
    claims = view._kinds[PVC]
    view._stop.set()  # _watch_failed's short pause returns at once
    view._watch_failed(claims, "cannot reach the API server")
    clock.now += view_module.RESUME_WITHIN_S - 0.1
    view._watch_failed(claims, "cannot reach the API server")  # still the first failure's count
    assert view.not_current() is None
    clock.now += 0.2
    reason = view.not_current()
    assert reason is not None and "PersistentVolumeClaim watch broke" in reason, reason
    assert "cannot reach the API server" in reason
    view.apply(PVC, "BOOKMARK", {"metadata": {"resourceVersion": "31"}})
    view.apply(PV, "BOOKMARK", {"metadata": {"resourceVersion": "31"}})
    assert view.not_current() is None


def test_the_proof_waits_for_the_watch_to_reach_the_version_read() -> None:
    clock = Clock()
    view, kube = loaded([pv()], [], clock=clock)
    running(view)
    kube.versions = {PV: "50", PVC: "60"}
    for state in view._kinds.values():
        state.heard_at = clock.now

    def deliver() -> None:
        view.apply(PV, "BOOKMARK", {"metadata": {"resourceVersion": "50"}})
        view.apply(PVC, "BOOKMARK", {"metadata": {"resourceVersion": "61"}})

    timer = threading.Timer(0.2, deliver)
    timer.start()
    view.prove_current()
    timer.join()
    assert view._kinds[PVC].resource_version == "61"


def test_a_quiet_collection_is_proven_by_a_watch_request_the_server_ended() -> None:
    clock = Clock()
    view, kube = loaded([pv()], [], clock=clock)
    running(view)
    kube.versions = {PV: "50", PVC: "60"}  # both beyond anything the watches reported
    for state in view._kinds.values():
        state.heard_at = clock.now
        state.clean_start = clock.now - 1  # started before the proof: proves nothing

    def server_ends_requests() -> None:
        for state in view._kinds.values():
            state.clean_start = clock.now  # started after the versions were read

    timer = threading.Timer(0.2, server_ends_requests)
    timer.start()
    view.prove_current()
    timer.join()


def test_the_proof_fails_when_the_watch_never_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view_module, "PROOF_TIMEOUT_S", 0.2)
    view, kube = loaded([pv()], [], clock=time.monotonic)
    running(view)
    kube.versions = {PV: "50", PVC: "60"}
    for state in view._kinds.values():
        state.heard_at = view.monotonic()
    with pytest.raises(NotCurrent, match="did not reach the versions read"):
        view.prove_current()


def test_a_rate_limit_is_retried_while_the_view_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recycler_job.view.time.sleep", lambda seconds: None)
    view, kube = loaded([pv()], [])
    running(view)
    too_many = KubeError(
        "list: too many requests",
        429,
        ApiStatus(429, "TooManyRequests", details={"retryAfterSeconds": 1}),
        transient=True,
    )
    unavailable = KubeError("list: unavailable", 503, ApiStatus(503), transient=True)
    kube.failures = [too_many, unavailable, too_many]
    for state in view._kinds.values():
        state.heard_at = view.monotonic()
    assert view.retrying("list", lambda: kube.collection_version(PV)) == "100"
    assert kube.failures == []


def test_a_rate_limit_with_a_view_that_is_not_current_stops() -> None:
    clock = Clock()
    view, kube = loaded([pv()], [], clock=clock)
    running(view)
    clock.now += 10  # no watch heard from since the load
    kube.failures = [KubeError("list: busy", 429, ApiStatus(429), transient=True)]
    with pytest.raises(NotCurrent, match="not heard from"):
        view.retrying("list", lambda: kube.collection_version(PV))


def test_a_refusal_is_not_retried() -> None:
    view, kube = loaded([pv()], [])
    running(view)
    kube.failures = [KubeError("list: invalid", 422, ApiStatus(422))]
    with pytest.raises(KubeError, match="invalid"):
        view.retrying("list", lambda: kube.collection_version(PV))


def test_decide_against_the_view_sees_every_pv_on_the_volume() -> None:
    record = pv("pv-a", path="vol/a")
    view, _ = loaded([record, pv("pv-b", path="vol/a/b")], [])
    assert view.decide(record, SETTINGS, NOW).action is Action.SKIP
    view.apply(PV, "DELETED", pv("pv-b", path="vol/a/b"))
    assert view.decide(record, SETTINGS, NOW).action is Action.RECYCLE
