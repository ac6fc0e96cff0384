"""The cluster view against a real API server: it follows changes and is proven current."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from recycler_job.api_errors import Expired
from recycler_job.config import load_config
from recycler_job.decide import Action, DecideSettings
from recycler_job.kube import PV, PVC, Kube
from recycler_job.view import ClusterView
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.objects import gluster_pv, pvc, wait_for

pytestmark = [pytest.mark.cluster]


def test_the_view_follows_changes_and_is_proven_current(
    control_plane: ControlPlane, kube: Kube, unique: str
) -> None:
    view = ClusterView(kube)
    view.load()
    with view:
        control_plane.apply(gluster_pv(f"seen-{unique}", f"vol-{unique}/a", policy="Retain"))
        control_plane.apply(pvc(f"asks-{unique}", "default", volume_name=f"seen-{unique}"))
        wait_for(
            lambda: (
                any(p["metadata"]["name"] == f"seen-{unique}" for p in view.pvs())
                and bool(view.snapshot().claims_naming(f"seen-{unique}"))
            ),
            interval=0.05,
            timeout=5,
            what="the view to see the new PV and claim",
        )
        started = time.monotonic()
        view.prove_current()  # quiet collections: proven by requests the server ended
        print(f"\nproven current in {time.monotonic() - started:.2f}s")
        assert view.not_current() is None
    control_plane.run_kubectl("delete", "pvc", f"asks-{unique}", "--wait=false")
    control_plane.run_kubectl("delete", "pv", f"seen-{unique}", "--wait=false")


@pytest.fixture(scope="module")
def compacting_plane() -> Iterator[ControlPlane]:
    """A control plane whose watches are served by etcd itself (no watch cache) and whose
    etcd is compacted every second: a watch from a version a second old answers 410 Gone.

    Production servers answer 410 the same way when the version left the watch cache's
    window; the shared sandbox keeps a cache, so it cannot be made to forget on demand.
    """
    plane = ControlPlane(apiserver_args=("--watch-cache=false", "--etcd-compaction-interval=1s"))
    with plane:
        yield plane


def _expired(kube: Kube, version: str) -> bool:
    """Whether a watch from `version` is refused with 410 Gone now."""
    try:
        for _ in kube.watch(PV, resource_version=version, timeout_seconds=1):
            pass
    except Expired:
        return True
    return False


def test_a_relist_after_410_gone_loses_no_event(
    compacting_plane: ControlPlane, unique: str
) -> None:
    """The view lists, the cluster changes, etcd forgets the list's version; the watch then
    answers 410, the view lists again, and each change made in between is in it and stops the
    wipe of the volume it touches."""
    plane = compacting_plane
    kube = Kube.connect(str(plane.kubeconfig))
    volume = f"vol-{unique}"
    whole, nested = f"whole-{unique}", f"nested-{unique}"
    asked, doomed = f"asked-{unique}", f"doomed-{unique}"
    plane.apply(gluster_pv(whole, volume))
    plane.apply(pvc(f"gone-{unique}", "default", volume_name=whole))
    plane.apply(gluster_pv(asked, f"other-{unique}", policy="Retain"))
    plane.apply(gluster_pv(doomed, f"third-{unique}", policy="Retain"))
    wait_for(
        lambda: kube.get(PV, whole).get("status", {}).get("phase") == "Bound",
        what=f"pv/{whole} to bind",
    )
    plane.run_kubectl("delete", "pvc", f"gone-{unique}", "--wait=false")
    config = load_config(["--min-age", "0"], {}, namespace_file="/nonexistent")
    settings = DecideSettings.from_config(config)
    now = dt.datetime.now(dt.UTC)
    pv = wait_for(
        lambda: (p := kube.get(PV, whole)).get("status", {}).get("phase") == "Failed" and p,
        what=f"pv/{whole} to fail as a glusterfs PV without a recycler",
    )
    view = ClusterView(kube)
    view.load()
    listed_at = view._kinds[PV].resource_version
    assert view.decide(pv, settings, now).action is Action.RECYCLE

    # Changes the list has not seen: a PV inside the wiped volume, a claim, a deletion.
    plane.apply(gluster_pv(nested, f"{volume}/sub", policy="Retain"))
    plane.apply(pvc(f"asks-{unique}", "default", volume_name=asked))
    plane.run_kubectl("delete", "pv", doomed, "--wait=false")
    wait_for(
        lambda: _expired(kube, listed_at),
        timeout=30,
        interval=0.5,
        what=f"etcd to compact resourceVersion {listed_at} away",
    )

    fired: list[str] = []
    with view.watch_volume(pv, settings, lambda: now, fired.append):
        assert fired == []  # the view still holds what was listed
        started = time.monotonic()
        with view:
            wait_for(lambda: fired, interval=0.05, timeout=10, what="the relist to stop the wipe")
            stopped = time.monotonic() - started
            view.prove_current()
    names = {p["metadata"]["name"] for p in view.pvs()}
    print(f"\n410 -> relist -> wipe stopped after {stopped:.2f}s: {fired[0]}")
    assert view._kinds[PV].relists >= 1
    assert view._kinds[PVC].relists >= 1
    assert nested in names
    assert doomed not in names
    assert view.snapshot().claims_naming(asked)
    assert nested in fired[0]
