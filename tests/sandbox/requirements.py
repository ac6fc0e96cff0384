"""When a real component is missing: skip with the reason on a laptop, fail loudly in CI."""

import os
import shutil
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(reason: str) -> None:
    """Skip the test outside CI; fail it in CI (CI=true), where nothing may be silently skipped."""
    if in_ci():
        pytest.fail(f"sandbox component missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def gluster_unavailable_reason() -> str | None:
    """Why real gluster FUSE tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root for glusterd and FUSE mounts"
    if not Path("/dev/fuse").exists():
        return "needs /dev/fuse"
    for binary in ("glusterd", "gluster", "mount.glusterfs"):
        if shutil.which(binary) is None and not Path(f"/sbin/{binary}").exists():
            return f"{binary} not installed (run `make setup`)"
    return None


def netns_unavailable_reason() -> str | None:
    """Why the chroot servers of the version matrix cannot run here, or None when they can."""
    for binary in ("ip", "unshare", "nsenter", "chroot", "debootstrap"):
        if shutil.which(binary) is None and not Path(f"/sbin/{binary}").exists():
            return f"{binary} not installed (run `make setup`)"
    return None
