"""`make demo`, the README's first command, as a user runs it: one real pass in a sandbox of
its own that recycles the two Recycle volumes and keeps the Retain one."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.integration.scenario import REPO
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]


def test_the_demo_recycles_its_volumes_and_keeps_the_retained_one(
    control_plane: ControlPlane, gluster_server: GlusterServer
) -> None:
    """The fixtures only make the test skip where the sandbox cannot run (the demo starts
    its own control plane and volumes)."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "exit code: 0" in out
    assert "3 PVs seen; 2 recycled, 0 failed, 1 skipped" in done.stdout + done.stderr
    after = out[out.index("after the pass") :]
    for name, phase in (("demo-web", "Available"), ("demo-db", "Available")):
        assert re.search(rf"^{name}\s+1Gi\s+RWX\s+Recycle\s+{phase}\b", after, re.M), after
        assert f"{name}: []" in after
    assert re.search(r"^demo-archive\s+1Gi\s+RWX\s+Retain\s+Released\b", after, re.M), after
    assert re.search(r"^demo-archive: \[.*'\.env'.*'index\.html'\]$", after, re.M), after
