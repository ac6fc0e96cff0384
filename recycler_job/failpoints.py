"""Named points where tests can make a real run pause or die, to prove crash safety.

Set GLUSTER_RECYCLER_FAILPOINTS="after-delete=kill,before-wipe=sleep:5". Unset (always, in
production) every point is a no-op. Actions: `kill` (SIGKILL to this process, like an OOM kill
or a node loss), `sleep:SECONDS`.
"""

from __future__ import annotations

import logging
import os
import signal
import time

ENV = "GLUSTER_RECYCLER_FAILPOINTS"
log = logging.getLogger(__name__)


def _parse(text: str) -> dict[str, str]:
    points = {}
    for item in text.split(","):
        name, _, action = item.strip().partition("=")
        if name:
            points[name] = action
    return points


def hit(name: str) -> None:
    """Run the action configured for point `name`, if any (unset: one dictionary lookup)."""
    text = os.environ.get(ENV)
    if not text:
        return
    action = _parse(text).get(name)
    if not action:
        return
    log.warning("failpoint %s: %s", name, action)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
