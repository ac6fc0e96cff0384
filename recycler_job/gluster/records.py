"""The mark of a mount made by this tool, so that only our own mounts are ever unmounted.

A record file `<mount root>/RECORD_DIR/<name>`, written before `mount` runs, names the mount
source. Only a `fuse.glusterfs` mount at `<mount root>/<name>` whose record names its source
is ours. (The leading dot keeps the directory apart from mountpoints: PV names never start
with one.)
"""

import contextlib
import json
import os
import threading

from recycler_job import names
from recycler_job.gluster import mountinfo
from recycler_job.gluster.errors import MountError
from recycler_job.gluster.mountinfo import MountEntry

FSTYPE = "fuse.glusterfs"
RECORD_DIR = ".gluster-recycler-mounts"


def _record_path(mountpoint: str) -> str:
    parent, name = os.path.split(mountpoint)
    return os.path.join(parent, RECORD_DIR, name)


def write_record(mountpoint: str, mount_source: str) -> None:
    """Mark `mountpoint` as ours before mounting: a killed run's mount stays recognisable."""
    record = _record_path(mountpoint)
    body = json.dumps({"source": mount_source, "pid": os.getpid()}).encode()
    for attempt in range(3):  # a parallel volume's cleanup may rmdir the empty directory
        try:
            os.makedirs(os.path.dirname(record), mode=0o700, exist_ok=True)
            temporary = f"{record}.{os.getpid()}.{threading.get_ident()}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            os.replace(temporary, record)
            return
        except FileNotFoundError:
            if attempt == 2:
                raise
        except OSError as exc:
            raise MountError(f"cannot write mount record {record}: {exc.strerror or exc}") from exc


def _recorded_source(mountpoint: str) -> str | None:
    """The source our record for `mountpoint` names; None when there is no valid record."""
    try:
        fd = os.open(_record_path(mountpoint), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = json.loads(os.read(fd, 65536))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, str) else None


def remove_record(mountpoint: str) -> None:
    record = _record_path(mountpoint)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(record))  # only when no other record is left


def is_own_mount(entry: MountEntry, mount_root: str) -> bool:
    """True when `entry` carries this tool's mark: a `fuse.glusterfs` mount directly in
    `mount_root`, named like a PV, whose record (written before mounting) names its source.
    """
    root = os.path.realpath(mount_root)
    parent, name = os.path.split(entry.mount_point)
    if parent != root or entry.fstype != FSTYPE or not names.is_dns1123_subdomain(name):
        return False
    return _recorded_source(entry.mount_point) == entry.source


def foreign_mounts(mount_root: str) -> list[MountEntry]:
    """Every mount below `mount_root` that this tool did not make (see `is_own_mount`).

    A mount root that holds them is refused: it is not a directory of our own, and
    unmounting or wiping there could hit someone else's data. Raises MountError when
    mountinfo cannot be read.
    """
    root = os.path.realpath(mount_root)
    try:
        below = mountinfo.mounts_below(root)
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc
    return [entry for entry in below if not is_own_mount(entry, root)]
