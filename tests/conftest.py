"""Shared fixtures: the real control plane and the real GlusterFS server (tests/sandbox)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from recycler_job.kube import Kube
from tests.sandbox.controlplane import ControlPlane, SandboxError
from tests.sandbox.requirements import missing

pytest_plugins = ["tests.sandbox.gluster_fixtures"]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One real etcd + kube-apiserver + kube-controller-manager for the whole session."""
    plane = ControlPlane()
    try:
        plane.start()
    except (SandboxError, OSError) as exc:
        missing(f"control plane could not start: {exc}")
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    """Our own adapter, as the admin."""
    return Kube.connect(str(control_plane.kubeconfig))


@pytest.fixture
def unique() -> str:
    """A short unique suffix for cluster-scoped object names."""
    return uuid.uuid4().hex[:8]
