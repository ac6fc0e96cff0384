"""The name a real glusterd lists for our gfapi client is the one `client_list_name()` predicts.

The client check subtracts our own connection from `volume status VOL client-list` by that
name; a wrong prediction would count our own client as a tenant's (or hide a tenant's). The
driver runs here as a script with a long name, as the image's entrypoint does: the process name
is the script's file name cut to 15 bytes, not argv[0] and not the interpreter's.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_gfapi import (
    NOBODY,
    REPO,
    SETPRIV,
    _env,
    scratch,
    spec_for,
)
from tests.sandbox.gluster import GlusterServer
from tests.sandbox.gluster_fixtures import VolumeFactory

pytestmark = pytest.mark.gluster
__all__ = ["scratch"]  # the fixture, shared with test_gfapi

SCRIPT = "grt-client-name-probe"  # 21 bytes: the kernel keeps 15 as the process name


def _next_event(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            event: dict[str, object] = json.loads(line)
            return event
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"driver ended early: {err}")


def test_gluster_lists_our_client_under_the_predicted_name(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    script = scratch / SCRIPT
    script.write_text(
        f"#!{REPO / '.venv/bin/python'}\n"
        "import sys\n"
        "from tests.integration.gfapi_driver import main\n"
        "sys.exit(main(sys.argv))\n"
    )
    script.chmod(0o755)
    os.chown(script, NOBODY, NOBODY)
    go = scratch / "go"
    spec = spec_for(volume, scratch, op="hold", pause_file=str(go))
    proc = subprocess.Popen(
        [*SETPRIV, str(script), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd="/",
    )
    try:
        connected = _next_event(proc)
        assert connected["event"] == "connected"
        predicted = str(connected["client_name"])
        gluster_server.wait_clients(volume, {predicted: 1})
        assert predicted == "gfapi." + SCRIPT[:15]  # the file name, cut: not argv[0]
        go.touch()
        assert _next_event(proc)["closed"]
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
