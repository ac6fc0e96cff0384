"""The cluster view against a real API server: it follows changes and is proven current."""

from __future__ import annotations

import time

import pytest

from recycler_job.kube import Kube
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
