"""Mount a volume, verify the mount, unmount it, and clean up what a killed run left."""

import contextlib
import errno
import logging
import os
import signal
import stat
from collections.abc import Sequence

from recycler_job import names, tls
from recycler_job.gluster import client_cache, mountinfo, probe
from recycler_job.gluster.errors import GlusterError, MountError
from recycler_job.gluster.hosts import check_hosts, expected_sources, mount_source_and_options
from recycler_job.gluster.mountinfo import MountEntry
from recycler_job.gluster.process import run
from recycler_job.gluster.records import (
    FSTYPE,
    RECORD_DIR,
    is_own_mount,
    remove_record,
    write_record,
)
from recycler_job.sources.glusterfs import GlusterSource

log = logging.getLogger(__name__)

# The inode number gluster gives the root of a mount (the root GFID ...0001), also for
# subdirectory mounts.
ROOT_INODE = 1
# How many stacked mounts `unmount` peels off one mountpoint before giving up.
_MAX_STACK = 8


def mountpoint_for(mount_root: str, pv_name: str) -> str:
    """The mountpoint used for PV `pv_name`: `<mount_root>/<pv_name>`.

    PV names are DNS subdomains; anything else (a `/`, `..`, ...) is refused with
    MountError, so the path can never leave `mount_root`.
    """
    if not names.is_dns1123_subdomain(pv_name):
        raise MountError(f"refusing PV name {pv_name!r} as a mountpoint name")
    root = os.path.abspath(mount_root)
    path = os.path.join(root, pv_name)
    if os.path.dirname(path) != root:
        raise MountError(f"mountpoint for {pv_name!r} would leave {root}")
    return path


def verify_mounted(
    mountpoint: str,
    hosts: Sequence[str],
    source: GlusterSource,
    *,
    read_only: bool | None = None,
    timeout: float = 30.0,
) -> MountEntry:
    """Check that `mountpoint` is right now the gluster mount of `source`; MountError if not.

    The mount on top at `mountpoint` (mountinfo) must be `fuse.glusterfs`, its source
    exactly `<one of hosts>:/<volume[/subdir]>`, its root `/`; with `read_only` given, it
    must be mounted `ro` (True) or `rw` (False). `lstat(mountpoint)` must answer within
    `timeout`, on the mount's own device, which differs from the parent directory's,
    with gluster's root inode; `statvfs(mountpoint)` must answer (the client is alive).
    """
    path = probe.canonical(mountpoint)
    entry = probe.find_mount(path)
    if entry is None:
        raise MountError(f"nothing is mounted on {path}")
    if entry.fstype != FSTYPE:
        raise MountError(f"{path} is a {entry.fstype} mount of {entry.source}, not {FSTYPE}")
    expected = expected_sources(hosts, source)
    if entry.source not in expected:
        raise MountError(f"{path} is a mount of {entry.source}, expected {' or '.join(expected)}")
    if entry.root != "/":
        raise MountError(f"{path} mounts {entry.root} of {entry.source}, not its root")
    if read_only is not None and entry.read_only != read_only:
        mode = "read-only" if entry.read_only else "read-write"
        raise MountError(f"{path} is mounted {mode}, expected the opposite")
    st = probe.lstat(path, timeout)
    parent = probe.lstat(os.path.dirname(path), timeout)
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(f"{path} is not a directory")
    if st.st_dev == parent.st_dev:
        raise MountError(f"{path} is on the same device as its parent: not mounted")
    if st.st_dev != entry.device:
        raise MountError(
            f"{path} is on device {os.major(st.st_dev)}:{os.minor(st.st_dev)}, "
            f"mountinfo says {entry.major}:{entry.minor}"
        )
    if st.st_ino != ROOT_INODE:
        raise MountError(f"{path} has inode {st.st_ino}, not the gluster root inode")
    probe.statvfs(path, timeout)
    return entry


def _remove_dir(path: str) -> bool:
    """rmdir `path` when it is an empty directory; never recursive. True when removed."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            log.warning("left %s in place: the directory is not empty", path)
        else:
            log.warning("left %s in place: %s", path, exc.strerror or exc)
        return False
    return True


def _kill_fuse_daemons(mountpoint: str) -> None:
    """SIGKILL the glusterfs client processes serving exactly `mountpoint`.

    Used after a mount timed out: the daemonised glusterfs is out of the killed `mount`'s
    process group and could otherwise finish mounting after we gave up.
    """
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [os.fsdecode(a) for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "glusterfs" and argv[-1] == mountpoint:
            log.warning("killing glusterfs process %d left by a timed-out mount", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _detach(path: str, timeout: float) -> None:
    """Lazily unmount everything stacked on `path`; MountError when that fails."""
    for _ in range(_MAX_STACK):
        entry = probe.find_mount(path)
        if entry is None:
            return
        result = run("umount", ["-l", path], timeout=timeout)
        after = probe.find_mount(path)
        if after is not None and after.mount_id == entry.mount_id:
            raise MountError(f"lazy unmount of {path} failed: {result.message()}")
    if probe.find_mount(path) is not None:
        raise MountError(f"{path} is still mounted after {_MAX_STACK} unmounts")


def _discard(path: str, timeout: float) -> None:
    """After a failed mount: detach whatever got mounted and rmdir the empty mountpoint.

    Only called once `path` was found unmounted before our `mount` ran.
    """
    try:
        _detach(path, timeout)
    except MountError as exc:
        log.error("cleanup after a failed mount: %s", exc)
        return
    _remove_dir(path)
    remove_record(path)


def mount_volume(
    hosts: Sequence[str],
    source: GlusterSource,
    mountpoint: str,
    *,
    timeout: float,
) -> MountEntry:
    """Mount `source` read-write on `mountpoint` (created if missing) and verify it; MountError
    if not.

    The client check (clients.ensure_not_in_use) is the caller's, before this: our own mount
    counts as a client. A mountpoint that already
    has something mounted on it is refused and left alone. `mount` is killed after
    `timeout` s. Before `mount` runs, a record naming the source is written to
    `<parent>/RECORD_DIR/<name>`: the mark by which `unmount` and `cleanup_stale_mounts`
    know the mount is ours. On every failure nothing of ours stays mounted and the
    mountpoint is removed when empty; files that were in it are never touched.
    """
    valid = check_hosts(hosts)
    path = probe.canonical(mountpoint)
    if probe.find_mount(path) is not None:
        raise MountError(f"{path} is already a mountpoint; not mounting over it")
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError as exc:
        raise MountError(f"cannot create mountpoint {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(f"mountpoint {path} exists and is not a directory")

    mount_source, options = mount_source_and_options(valid, source)
    # One brick fop per removed file: see gluster/client_cache.py.
    options.append(client_cache.fuse_mount_option(source.volume))
    try:
        write_record(path, mount_source)
    except BaseException:
        _remove_dir(path)
        raise
    args = ["-t", "glusterfs"]
    if options:
        args += ["-o", ",".join(options)]
    args += [mount_source, path]
    # With TLS files, `glusterfs` itself: mount.glusterfs passes on one xlator-option only.
    tls_args = tls.fuse_command(valid, source.volume, source.subdir, path, read_only=False)
    if tls_args is not None:
        tls_args[-1:-1] = client_cache.fuse_args(source.volume)  # before the mountpoint
    program, args = ("glusterfs", tls_args) if tls_args is not None else ("mount", args)
    try:
        result = run(program, args, timeout=timeout)
    except BaseException:
        _discard(path, timeout)
        raise
    why = tls.explain(tls.fuse_log_file(path)) if tls_args is not None else None
    hint = f"; {why}" if why else ""
    if result.timed_out:
        _kill_fuse_daemons(path)
        _discard(path, timeout)
        raise MountError(f"mount of {mount_source} on {path} timed out after {timeout:g}s{hint}")
    if result.exit_code != 0:
        _discard(path, timeout)
        raise MountError(
            f"mount of {mount_source} on {path} failed (exit {result.exit_code}): "
            f"{result.message()}{hint}"
        )
    try:
        return verify_mounted(path, valid, source, read_only=False, timeout=timeout)
    except BaseException as exc:
        _discard(path, timeout)
        if isinstance(exc, MountError):
            if tls_args is not None:
                why = tls.explain(tls.fuse_log_file(path))
                hint = f"; {why}" if why else ""
            raise MountError(f"mount of {mount_source} exited 0 but: {exc}{hint}") from exc
        raise


def unmount(mountpoint: str, *, timeout: float, mount_id: int | None = None) -> None:
    """Unmount our mount at `mountpoint`, then rmdir it when empty and drop its record.

    Only a mount of ours is ever unmounted: the one with `mount_id` (from the `MountEntry`
    `mount_volume` returned) when given, else one carrying our mark (`is_own_mount`).
    Anything else found there (a foreign mount, or one stacked on top of ours) is left in
    place: MountError when ours is still below it, a warning when ours is gone.
    `umount` first; when that fails (busy) or hangs, `umount -l` (lazy detach). Not being
    mounted is not an error. Raises MountError when our mount stays in place.
    """
    path = probe.canonical(mountpoint)

    def ours(entry: MountEntry) -> bool:
        if mount_id is not None:
            return entry.mount_id == mount_id
        return is_own_mount(entry, os.path.dirname(path))

    for _ in range(_MAX_STACK):
        entry = probe.find_mount(path)
        if entry is None:
            break
        if not ours(entry):
            if mount_id is not None and _mounted_at(path, mount_id):
                raise MountError(
                    f"{path}: a {entry.fstype} mount of {entry.source} was not made by this run "
                    "and is on top of ours; both left in place"
                )
            log.warning(
                "left %s mounted: %s of %s was not made by this run",
                path,
                entry.fstype,
                entry.source,
            )
            return
        result = run("umount", [path], timeout=timeout)
        after = probe.find_mount(path)
        if after is None or after.mount_id != entry.mount_id:
            continue
        why = "timed out" if result.timed_out else result.message()
        log.warning("umount %s: %s; detaching it lazily", path, why)
        lazy = run("umount", ["-l", path], timeout=timeout)
        after = probe.find_mount(path)
        if after is not None and after.mount_id == entry.mount_id:
            raise MountError(f"cannot unmount {path}: {why}; lazy unmount: {lazy.message()}")
    else:
        if probe.find_mount(path) is not None:
            raise MountError(f"{path} is still mounted after {_MAX_STACK} unmounts")
    _remove_dir(path)
    remove_record(path)


def _mounted_at(path: str, mount_id: int) -> bool:
    """True when mount `mount_id` is still on `path` (perhaps below another mount)."""
    try:
        return any(e.mount_id == mount_id and e.mount_point == path for e in mountinfo.read())
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc


def cleanup_stale_mounts(mount_root: str, *, timeout: float = 60.0) -> list[str]:
    """Undo what a killed run left below `mount_root`; returns the paths cleaned up.

    Every mount below `mount_root` that carries our mark (`is_own_mount`) is lazily
    unmounted and its record dropped; every other mount there (another tool's, an
    admin's, even a `fuse.glusterfs` one) is reported and left alone. Then every empty
    directory directly in `mount_root` is removed with rmdir. A directory that still holds
    files is left in place and reported (logged as a warning), never removed recursively.
    Records whose mountpoint is no longer mounted are dropped. Returned: each unmounted
    mountpoint and each removed directory, once.
    """
    root = os.path.realpath(mount_root)
    if root == "/":
        raise GlusterError("refusing to clean up mounts below /")
    if not os.path.isdir(root):
        return []
    cleaned: list[str] = []
    try:
        stale = mountinfo.mounts_below(root)
    except (OSError, mountinfo.MountinfoError) as exc:
        raise MountError(f"cannot read mountinfo: {exc}") from exc
    for entry in stale:
        if not is_own_mount(entry, root):
            log.warning(
                "left %s (%s from %s) mounted: not made by gluster-recycler",
                entry.mount_point,
                entry.fstype,
                entry.source,
            )
            continue
        result = run("umount", ["-l", entry.mount_point], timeout=timeout)
        after = probe.find_mount(entry.mount_point)
        if after is not None and after.mount_id == entry.mount_id:
            log.error(
                "cannot unmount %s left by an earlier run: %s",
                entry.mount_point,
                result.message(),
            )
            continue
        log.warning("unmounted %s (%s) left by an earlier run", entry.mount_point, entry.source)
        if entry.mount_point not in cleaned:
            cleaned.append(entry.mount_point)
    with os.scandir(root) as children:
        names = sorted(child.name for child in children if child.name != RECORD_DIR)
    records = os.path.join(root, RECORD_DIR)
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(records)):
            if probe.find_mount(os.path.join(root, name)) is None:
                remove_record(os.path.join(root, name))
    for name in names:
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            log.warning("left %s in place: not a directory", path)
            continue
        if probe.find_mount(path) is not None:
            log.warning("left %s in place: still mounted", path)
            continue
        if _remove_dir(path) and path not in cleaned:
            cleaned.append(path)
    return cleaned
