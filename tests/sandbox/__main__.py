"""Keep one sandbox running for interactive use: `python -m tests.sandbox up|down|status`.

`up` starts the control plane (and glusterd when it is not running) and prints the admin
kubeconfig path; the processes keep running after this command exits. `down` stops them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from tests.sandbox.controlplane import ControlPlane

STATE_DIR = Path(os.environ.get("GRT_SANDBOX_DIR", "/tmp/gluster-recycler-sandbox"))
STATE_FILE = STATE_DIR / "state.json"


def up() -> int:
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        print(f"sandbox already up; export KUBECONFIG={state['kubeconfig']}")
        return 0
    plane = ControlPlane(workdir=STATE_DIR)
    plane.start()
    from tests.sandbox.gluster import GlusterServer

    GlusterServer().ensure_running()
    state = {
        "kubeconfig": str(plane.kubeconfig),
        "kubectl": str(plane.kubectl),
        "pids": {name: proc.pid for name, proc in plane.procs.items()},
    }
    STATE_FILE.write_text(json.dumps(state, indent=2))
    print(f"sandbox up: export KUBECONFIG={plane.kubeconfig}")
    print(f"kubectl: {plane.kubectl}")
    return 0


def down() -> int:
    if not STATE_FILE.exists():
        print("sandbox is not up")
        return 0
    state = json.loads(STATE_FILE.read_text())
    for pid in reversed(list(state["pids"].values())):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    print("sandbox down")
    return 0


def status() -> int:
    if not STATE_FILE.exists():
        print("sandbox is not up")
        return 1
    print(STATE_FILE.read_text())
    return 0


if __name__ == "__main__":
    commands = {"up": up, "down": down, "status": status}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print("usage: python -m tests.sandbox up|down|status", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(commands[sys.argv[1]]())
