"""Fixtures for whole-pass tests: a Scenario joins the control plane and the gluster server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.scenario import Scenario
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer
from tests.sandbox.gluster_fixtures import VolumeFactory


@pytest.fixture
def scenario(
    control_plane: ControlPlane,
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    unique: str,
    tmp_path: Path,
) -> Scenario:
    """A fresh label, lease and mount root on the shared sandbox."""
    return Scenario(control_plane, gluster_server, gluster_volume, unique, tmp_path)
