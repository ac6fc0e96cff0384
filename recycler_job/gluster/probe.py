"""Looking at a mount path: mountinfo, and calls that a hung FUSE mount cannot block forever."""

import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from recycler_job.gluster import mountinfo
from recycler_job.gluster.errors import MountError
from recycler_job.gluster.mountinfo import MountEntry

_T = TypeVar("_T")


def canonical(path: str) -> str:
    """`path` made absolute with symlinks in its parent resolved, as mountinfo shows it.

    The last component is not looked at, so a hung mount cannot block this.
    """
    absolute = os.path.abspath(path)
    parent, name = os.path.split(absolute)
    return os.path.join(os.path.realpath(parent), name) if name else absolute


def find_mount(mountpoint: str) -> MountEntry | None:
    try:
        return mountinfo.find_mount(mountpoint)
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc


def bounded(call: Callable[[str], _T], path: str, timeout: float) -> _T:
    """`call(path)`, giving up after `timeout` s (a hung FUSE mount blocks it forever).

    The call runs in a daemon thread, which cannot keep the process from exiting.
    Raises MountError on timeout or OSError.
    """
    outcome: list[_T | OSError] = []

    def target() -> None:
        try:
            outcome.append(call(path))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=target, name="gluster-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise MountError(f"{path} did not answer within {timeout:g}s")
    result = outcome[0]
    if isinstance(result, OSError):
        raise MountError(f"{path}: {result.strerror or result}")
    return result


def lstat(path: str, timeout: float) -> os.stat_result:
    return bounded(os.lstat, path, timeout)


def statvfs(path: str, timeout: float) -> os.statvfs_result:
    # statfs always reaches the FUSE client process (stat may be answered from the
    # kernel's attribute cache), so it shows whether the mount is alive.
    return bounded(os.statvfs, path, timeout)


def read_xattr(path: str, name: str, timeout: float) -> str | None:
    """The xattr `name` of `path` as text; None when it is absent (ENODATA) or unsupported."""

    def read(target: str) -> bytes | None:
        try:
            return os.getxattr(target, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                return None
            raise

    value = bounded(read, path, timeout)
    return None if value is None else value.decode("utf-8", "replace").rstrip("\x00")
