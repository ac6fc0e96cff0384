"""A real GlusterFS server for tests: glusterd on this machine, scratch volumes, FUSE mounts.

Installs nothing: glusterfs-server and glusterfs-client must be there (see
`tests/sandbox/requirements.py`), and the caller must be root with /dev/fuse.

    with GlusterServer() as server:
        server.ensure_running()
        volume = server.create_volume("grt-demo", subdir="pv/data")
        server.write_files(volume, {"pv/data/a.txt": b"hello"})
        print(volume.hosts, volume.name, volume.path)   # what Endpoints and a PV need

Bricks live in a temporary directory; the volume is created with `force` (bricks on the
root file system) on this machine's hostname (gluster refuses a literal loopback
address for bricks, not a name that resolves to one). Clients reach glusterd through
`GlusterServer.address`, a non-loopback address when the machine has one, because
Kubernetes Endpoints refuse loopback addresses.

`close()` (or leaving the `with` block) unmounts what is left of the harness's mounts
and of its volumes, stops and deletes every volume it created, and removes the bricks.
glusterd is left running: other sessions may use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from recycler_job.gluster import mountinfo
from recycler_job.gluster.clients import client_report
from recycler_job.gluster.parse import parse_client_list
from recycler_job.sources.glusterfs import GlusterSource
from tests.sandbox.objects import wait_for

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class GlusterSandboxError(RuntimeError):
    """The sandbox gluster server could not do what a test asked."""


# Held while glusterd is being started (GlusterServer.ensure_running).
_START_LOCK = os.path.join(tempfile.gettempdir(), "grt-glusterd-start.lock")


def new_volume_name(prefix: str = "grt") -> str:
    """A fresh volume name, `grt-<12 hex digits>`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# The environment of every command the sandbox runs (`run_command`), taken when this module
# is imported, before any test runs. The volume reaper runs commands in a thread while the
# next test may change `os.environ` (`monkeypatch.setenv("PATH", ...)` to fake binaries):
# read then, it would run a test's fake `gluster` for the sandbox, and a child started with
# vfork, as CPython starts it, would execute with the `environ` array glibc is reallocating
# in the other thread (`[Errno 14] Bad address`).
_ENV: Mapping[str, str] = dict(os.environ)


def _binary(name: str) -> str:
    """`name` on the sandbox's PATH (`_ENV`, not the test's), else in an sbin directory."""
    found = shutil.which(name, path=_ENV.get("PATH", os.defpath))
    if found:
        return found
    for directory in _SBIN:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise GlusterSandboxError(f"{name} not found")


def run_command(
    argv: Sequence[str], *, timeout: float, capture: bool = True, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` with the sandbox's environment (`_ENV`), the output captured."""
    return subprocess.run(
        list(argv),
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=check,
        env=_ENV,
    )


@dataclass(frozen=True)
class GlusterVolumeHandle:
    """A scratch volume: what Endpoints (`hosts`) and a PV (`name`, `path`) need."""

    name: str
    hosts: tuple[str, ...]
    bricks: tuple[str, ...]
    subdir: str | None = None

    @property
    def path(self) -> str:
        """The PV's `spec.glusterfs.path`: `name` or `name/subdir`."""
        return f"{self.name}/{self.subdir}" if self.subdir else self.name

    def source(
        self,
        *,
        endpoints: str = "glusterfs-cluster",
        endpoints_namespace: str | None = None,
        read_only: bool = False,
        subdir: str | None = None,
    ) -> GlusterSource:
        """A GlusterSource for this volume (its subdir, or `subdir` when given)."""
        sub = self.subdir if subdir is None else subdir
        return GlusterSource(
            endpoints=endpoints,
            path=f"{self.name}/{sub}" if sub else self.name,
            endpoints_namespace=endpoints_namespace,
            read_only=read_only,
        )


class GlusterServer:
    """glusterd on this machine plus the scratch volumes and mounts a test session makes."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *, timeout: float = 120.0):
        self._requested_workdir = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None
        self.timeout = timeout
        self.volumes: dict[str, GlusterVolumeHandle] = {}
        self._mounts: set[str] = set()
        self._doomed: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reaper: threading.Thread | None = None
        self._reap_errors: list[str] = []
        self.started_glusterd = False
        self._address: str | None = None

    # ------------------------------------------------------------------ basics

    @property
    def workdir(self) -> Path:
        """Where bricks and the harness's own mountpoints live (created on first use)."""
        if self._workdir is None:
            if self._requested_workdir is not None:
                self._requested_workdir.mkdir(parents=True, exist_ok=True)
                self._workdir = self._requested_workdir
            else:
                self._workdir = Path(tempfile.mkdtemp(prefix="grt-gluster-"))
        return self._workdir

    @property
    def host(self) -> str:
        """The name bricks are created on: this machine's hostname when it resolves.

        (gluster refuses 127.0.0.1 and "localhost" for bricks, but not a hostname that
        resolves to a loopback address.)
        """
        name = socket.gethostname()
        try:
            socket.getaddrinfo(name, None)
        except OSError:
            return self.address
        return name

    @property
    def address(self) -> str:
        """An address clients reach glusterd at; not loopback when the machine has one."""
        if self._address is None:
            self._address = self._pick_address()
        return self._address

    def server_path(self, path: str) -> str:
        """`path` (on this machine) as glusterd sees it: the same here (see gluster_versions)."""
        return path

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host list for mounts and Endpoints."""
        return (self.address,)

    def _pick_address(self) -> str:
        candidates: list[str] = []
        for target in ("192.0.2.1", "10.255.255.255"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect((target, 9))  # UDP: picks a route, sends nothing
                except OSError:
                    continue
                candidates.append(probe.getsockname()[0])
        for candidate in [*candidates, socket.gethostname(), "127.0.0.1"]:
            if candidate.startswith("127.") and candidate != "127.0.0.1":
                continue
            answer = self.gluster("volume", "list", remote_host=candidate, check=False)
            if answer.returncode == 0:
                return candidate
        raise GlusterSandboxError("glusterd answers on no address of this machine")

    def gluster(
        self,
        *args: str,
        remote_host: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `gluster --mode=script args...`; GlusterSandboxError on failure if `check`."""
        argv = [_binary("gluster"), "--mode=script"]
        if remote_host:
            argv.append(f"--remote-host={remote_host}")
        argv += list(args)
        try:
            result = run_command(argv, timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise GlusterSandboxError(f"`gluster {' '.join(args)}` timed out") from exc
        if check and result.returncode != 0:
            raise GlusterSandboxError(
                f"`gluster {' '.join(args)}` failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result

    def _change(self, *args: str, done_when: str | None = None) -> None:
        """A volume change (create, set, start, delete), tried again a few times.

        glusterd refuses an operation while another one holds the volume's lock ("Another
        transaction is in progress", at times with nothing on stderr): the pass's own status
        calls, or a test worker beside this one. `done_when`: output that also means done."""
        for attempt in range(5):
            result = self.gluster(*args, check=False)
            output = f"{result.stderr} {result.stdout}".strip()
            if result.returncode == 0 or (done_when is not None and done_when in output):
                return
            time.sleep(0.5 * (attempt + 1))
        raise GlusterSandboxError(
            f"`gluster {' '.join(args)}` failed ({result.returncode}): {output}"
        )

    def ensure_running(self, timeout: float = 60.0) -> None:
        """Start glusterd unless it already answers; wait until `volume list` answers.

        Under a file lock: the test workers (pytest-xdist) share this machine's glusterd, and
        two of them must not both start one."""
        with open(_START_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._answers():
                return
            run_command([_binary("glusterd")], timeout=timeout, capture=False, check=True)
            self.started_glusterd = True
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._answers():
                    return
                time.sleep(0.5)
        raise GlusterSandboxError(f"glusterd did not answer within {timeout:g}s")

    def _answers(self) -> bool:
        try:
            return self.gluster("volume", "list", check=False, timeout=30).returncode == 0
        except GlusterSandboxError:
            return False

    # ----------------------------------------------------------------- volumes

    def create_volume(
        self,
        name: str,
        *,
        bricks: int = 1,
        replica: int | None = None,
        subdir: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> GlusterVolumeHandle:
        """Create, configure and start volume `name` with `bricks` bricks; wait until online.

        `replica` makes a replicated volume (all bricks on this machine, hence `force`).
        `subdir` (e.g. "pv/data") is created inside the volume through a FUSE mount.
        `options` are `gluster volume set` key/values, applied before the start.
        """
        if not _NAME.fullmatch(name):
            raise GlusterSandboxError(f"bad volume name {name!r}")
        if name in self.volumes:
            raise GlusterSandboxError(f"volume {name} already created")
        count = max(bricks, replica or 0)
        brick_dirs = tuple(str(self.workdir / "bricks" / name / f"b{i}") for i in range(count))
        for brick in brick_dirs:
            os.makedirs(brick)
        sub = subdir.strip("/") if subdir else ""
        handle = GlusterVolumeHandle(
            name=name, hosts=self.hosts, bricks=brick_dirs, subdir=sub or None
        )
        self.volumes[name] = handle  # from here on, close() cleans it up
        args = ["volume", "create", name]
        if replica:
            args += ["replica", str(replica)]
        args += [f"{self.host}:{self.server_path(brick)}" for brick in brick_dirs]
        args.append("force")
        self._change(*args)
        for key, value in (options or {}).items():
            self._change("volume", "set", name, key, value)
        self._change("volume", "start", name)
        self.wait_online(name)
        if handle.subdir:
            self.write_files(handle, {}, dirs=[handle.subdir])
        return handle

    def wait_online(self, name: str, timeout: float = 60.0) -> None:
        """Wait until every brick of `name` is online."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._brick_states(name)
            if states and all(states.values()):
                return
            if time.monotonic() > deadline:
                raise GlusterSandboxError(f"bricks of {name} not online: {states}")
            time.sleep(0.3)

    def _status_xml(self, name: str, *detail: str) -> ET.Element:
        result = self.gluster("volume", "status", name, *detail, "--xml")
        return ET.fromstring(result.stdout)

    def _brick_states(self, name: str) -> dict[str, bool]:
        root = self._status_xml(name)
        states: dict[str, bool] = {}
        for node in root.iter("node"):
            path = node.findtext("path") or ""
            if path.startswith("/"):
                states[f"{node.findtext('hostname')}:{path}"] = node.findtext("status") == "1"
        return states

    def brick_pids(self, volume: GlusterVolumeHandle | str) -> list[int]:
        """The pids of the online brick processes of `volume` (never glusterd's)."""
        root = self._status_xml(self._name(volume))
        return [
            int(node.findtext("pid") or 0)
            for node in root.iter("node")
            if (node.findtext("path") or "").startswith("/")
            and node.findtext("status") == "1"
            and int(node.findtext("pid") or 0) > 0
        ]

    @contextlib.contextmanager
    def bricks_frozen(
        self, volume: GlusterVolumeHandle | str, pids: Sequence[int] | None = None
    ) -> Iterator[list[int]]:
        """SIGSTOP the bricks of `volume` (a scratch volume of ours) for a `with` block;
        SIGCONT on every way out. `pids`: the bricks' pids, looked up beforehand when the
        freeze must land within a moment (a status call to a busy glusterd can take seconds)."""
        pids = list(pids) if pids is not None else self.brick_pids(volume)
        stopped: list[int] = []
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            yield pids
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def brick_connection_counts(self, name: str) -> list[int]:
        """How many client connections each brick of `name` has (gluster's XML status)."""
        root = self._status_xml(name, "clients")
        return [int(node.findtext("clientsStatus/clientCount") or 0) for node in root.iter("node")]

    def client_list(self, volume: GlusterVolumeHandle | str) -> dict[str, int]:
        """The named client processes of `volume` and their counts (`volume status VOL
        client-list`: `fuse`, `gfapi.<comm>`, gluster's daemons), parsed as the recycler
        parses it."""
        name = self._name(volume)
        return parse_client_list(self.gluster("volume", "status", name, "client-list").stdout, name)

    def wait_clients(
        self, volume: GlusterVolumeHandle | str, expected: Mapping[str, int], timeout: float = 10.0
    ) -> None:
        """Wait until `client_list(volume)` is `expected`. A client that has just connected
        can be listed twice: when two volfile answers race at its start (other volumes
        changing on this glusterd), it connects a second graph and leaves the first connected
        until its next request, and about 0.5 s after."""
        wanted = dict(expected)
        wait_for(
            lambda: self.client_list(volume) == wanted,
            timeout=timeout,
            interval=0.2,
            what=f"the clients of {self._name(volume)} to be {wanted}",
        )

    def wait_connections(self, name: str, at_least: int, timeout: float = 60.0) -> None:
        """Wait until every brick of `name` has `at_least` client connections."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.brick_connection_counts(name)
            if counts and min(counts) >= at_least:
                return
            if time.monotonic() > deadline:
                raise GlusterSandboxError(f"{name}: connections per brick {counts}")
            time.sleep(0.3)

    def brick_pid(self, volume: GlusterVolumeHandle | str, index: int) -> int:
        """The pid of the process serving brick `index` of `volume` (a harness volume); 0 when
        gluster reports it offline."""
        handle = self._handle(volume)
        for node in self._status_xml(handle.name).iter("node"):
            if node.findtext("path") == handle.bricks[index]:
                return int(node.findtext("pid") or 0) if node.findtext("status") == "1" else 0
        raise GlusterSandboxError(f"brick {index} of {handle.name} not in `volume status`")

    def kill_brick(self, volume: GlusterVolumeHandle | str, index: int) -> None:
        """SIGKILL the brick process of brick `index` of `volume` (started by glusterd for a
        volume of this harness) and wait until gluster reports it offline; `start_volume`
        brings it back."""
        pid = self.brick_pid(volume, index)
        if not pid:
            raise GlusterSandboxError(f"brick {index} of {self._name(volume)} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.brick_pid(volume, index):
            if time.monotonic() > deadline:
                raise GlusterSandboxError(f"brick {index} of {self._name(volume)} still online")
            time.sleep(0.2)

    def brick_paths(self, volume: GlusterVolumeHandle | str) -> list[str]:
        """The brick directories of `volume` on this machine."""
        return list(self._handle(volume).bricks)

    def profile_start(self, volume: GlusterVolumeHandle | str) -> None:
        """`gluster volume profile VOL start`, then zero the counts (`profile_fops` reads
        what came after)."""
        name = self._name(volume)
        self.gluster("volume", "profile", name, "start")
        self.profile_fops(name)

    def profile_fops(self, volume: GlusterVolumeHandle | str) -> dict[str, int]:
        """Fops each brick served since the last call (`profile info incremental`), summed
        over the bricks: {"LOOKUP": n, "UNLINK": n, ...}."""
        name = self._name(volume)
        result = self.gluster("volume", "profile", name, "info", "incremental", "--xml")
        root = ET.fromstring(result.stdout)
        intervals = list(root.iter("intervalStats")) or [root]
        counts: dict[str, int] = {}
        for interval in intervals:
            for fop in interval.iter("fop"):
                fop_name = fop.findtext("name") or "?"
                counts[fop_name] = counts.get(fop_name, 0) + int(fop.findtext("hits") or 0)
        return counts

    def stop_volume(self, volume: GlusterVolumeHandle | str) -> None:
        """`gluster volume stop --force`, tried again while glusterd is busy (`_change`); a
        volume that is not started is fine."""
        self._change(
            "volume", "stop", self._name(volume), "force", done_when="is not in the started state"
        )

    def start_volume(self, volume: GlusterVolumeHandle | str) -> None:
        """`gluster volume start --force` and wait until the bricks are online."""
        name = self._name(volume)
        self.gluster("volume", "start", name, "force")
        self.wait_online(name)

    def delete_volume(self, volume: GlusterVolumeHandle | str) -> None:
        """Unmount what is left mounted of it, stop it, delete it, remove its bricks."""
        name = self._name(volume)
        handle = self.volumes.get(name)
        self._unmount_where(lambda e: _source_volume(e.source) == name)
        self.stop_volume(name)
        self._change("volume", "delete", name, done_when="does not exist")
        if handle is not None:
            bricks_root = self.workdir / "bricks"
            for brick in handle.bricks:
                if Path(brick).is_relative_to(bricks_root):
                    shutil.rmtree(brick, ignore_errors=True)
            with contextlib.suppress(OSError):
                (bricks_root / name).rmdir()
            del self.volumes[name]

    def delete_volume_later(self, volume: GlusterVolumeHandle | str) -> None:
        """Unmount what is left mounted of `volume` now, stop and delete it in the background
        (`close()` waits for that and reports its errors): a test's teardown does not wait
        for glusterd to stop the bricks, the next test runs meanwhile. Volume operations
        lock only their own volume in glusterd, so the next test's are not held up."""
        name = self._name(volume)
        self._unmount_where(lambda e: _source_volume(e.source) == name)
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="volume-reaper", daemon=True)
            self._reaper.start()
        self._doomed.put(name)

    def _reap(self) -> None:
        while (name := self._doomed.get()) is not None:
            try:
                self.delete_volume(name)
            except (GlusterSandboxError, OSError) as exc:
                self._reap_errors.append(str(exc))

    def _wait_for_reaper(self) -> list[str]:
        """Let the background deletions finish; their errors."""
        if self._reaper is not None:
            self._doomed.put(None)
            self._reaper.join()
            self._reaper = None
        errors, self._reap_errors = self._reap_errors, []
        return errors

    # ------------------------------------------------------------------ mounts

    def fuse_mount(
        self,
        volume: GlusterVolumeHandle | str,
        mountpoint: str | os.PathLike[str] | None = None,
        *,
        subdir: str | None = None,
        read_only: bool = False,
        options: Sequence[str] = (),
    ) -> str:
        """Mount `volume` (or its `subdir`) with plain `mount -t glusterfs` (plus `-o options`);
        returns the path.

        `options` are more `-o` options (`acl`, to set POSIX ACLs through the mount).

        The mountpoint is created when missing (a fresh one under the workdir by default).
        Raises GlusterSandboxError when nothing got mounted.
        """
        handle = self._handle(volume)
        if mountpoint is None:
            mountpoint = tempfile.mkdtemp(prefix="mnt-", dir=self.workdir)
        path = os.path.realpath(mountpoint)
        os.makedirs(path, exist_ok=True)
        remote = f"/{handle.name}/{subdir.strip('/')}" if subdir else f"/{handle.name}"
        argv = [_binary("mount"), "-t", "glusterfs"]
        opts = [*(["ro"] if read_only else []), *options]
        if opts:
            argv += ["-o", ",".join(opts)]
        argv += [f"{handle.hosts[0]}:{remote}", path]
        result = run_command(argv, timeout=self.timeout)
        entry = mountinfo.find_mount(path)
        if result.returncode != 0 or entry is None or entry.fstype != "fuse.glusterfs":
            if entry is not None:
                self._unmount(path)
            raise GlusterSandboxError(
                f"mount {handle.name} on {path}: {(result.stderr or result.stdout).strip()}"
            )
        self._mounts.add(path)
        return path

    def fuse_unmount(self, mountpoint: str | os.PathLike[str]) -> None:
        """Unmount (lazily when busy) and rmdir a mount made by `fuse_mount`."""
        path = os.path.realpath(mountpoint)
        self._unmount(path)
        self._mounts.discard(path)
        with contextlib.suppress(OSError):
            os.rmdir(path)

    @contextlib.contextmanager
    def mounted(
        self,
        volume: GlusterVolumeHandle | str,
        mountpoint: str | os.PathLike[str] | None = None,
        *,
        subdir: str | None = None,
        read_only: bool = False,
        options: Sequence[str] = (),
    ) -> Iterator[str]:
        """`fuse_mount` for the length of a `with` block (a second client, for instance)."""
        path = self.fuse_mount(
            volume, mountpoint, subdir=subdir, read_only=read_only, options=options
        )
        try:
            yield path
        finally:
            self.fuse_unmount(path)

    def write_files(
        self,
        volume: GlusterVolumeHandle | str,
        files: Mapping[str, bytes | str],
        *,
        dirs: Iterable[str] = (),
    ) -> None:
        """Create `dirs` and write `files` (paths relative to the volume root) through FUSE."""
        with self.mounted(volume) as root:
            for rel in dirs:
                os.makedirs(_inside(root, rel), exist_ok=True)
            for rel, content in files.items():
                target = _inside(root, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                data = content.encode() if isinstance(content, str) else content
                with open(target, "wb") as f:
                    f.write(data)

    def unmount_below(self, root: str | os.PathLike[str]) -> list[str]:
        """Unmount (lazily when busy) every gluster mount below `root`; returns them."""
        prefix = os.path.realpath(root).rstrip("/") + "/"
        found = [
            e.mount_point
            for e in mountinfo.read()
            if e.fstype == "fuse.glusterfs" and e.mount_point.startswith(prefix)
        ]
        self._unmount_where(lambda e: e.mount_point.startswith(prefix))
        return found

    def _unmount(self, path: str) -> None:
        for _ in range(8):
            if mountinfo.find_mount(path) is None:
                return
            umount = _binary("umount")
            if run_command([umount, path], timeout=self.timeout).returncode != 0:
                run_command([umount, "-l", path], timeout=self.timeout)
        if mountinfo.find_mount(path) is not None:
            raise GlusterSandboxError(f"cannot unmount {path}")

    def _unmount_where(self, wanted: Callable[[mountinfo.MountEntry], bool]) -> None:
        for entry in reversed(mountinfo.read()):
            if entry.fstype == "fuse.glusterfs" and wanted(entry):
                self._unmount(entry.mount_point)
                self._mounts.discard(entry.mount_point)

    # --------------------------------------------------------------- teardown

    def close(self) -> None:
        """Unmount leftovers, stop and delete every volume created, remove the workdir."""
        errors = self._wait_for_reaper()
        for path in sorted(self._mounts, reverse=True):
            try:
                self.fuse_unmount(path)
            except GlusterSandboxError as exc:
                errors.append(str(exc))
        for name in list(self.volumes):
            try:
                self.delete_volume(name)
            except GlusterSandboxError as exc:
                errors.append(str(exc))
        if self._workdir is not None:
            root = str(self._workdir)
            try:
                self._unmount_where(lambda e: e.mount_point.startswith(root + "/"))
            except GlusterSandboxError as exc:
                errors.append(str(exc))
            if mountinfo.mounts_below(root):
                errors.append(f"mounts left below {root}; not removing it")
            elif self._requested_workdir is None:
                shutil.rmtree(root, ignore_errors=True)
            self._workdir = None
        if errors:
            raise GlusterSandboxError("; ".join(errors))

    def __enter__(self) -> GlusterServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- helpers

    def _handle(self, volume: GlusterVolumeHandle | str) -> GlusterVolumeHandle:
        if isinstance(volume, GlusterVolumeHandle):
            return volume
        if volume in self.volumes:
            return self.volumes[volume]
        return GlusterVolumeHandle(name=volume, hosts=self.hosts, bricks=())

    @staticmethod
    def _name(volume: GlusterVolumeHandle | str) -> str:
        return volume.name if isinstance(volume, GlusterVolumeHandle) else volume


def _source_volume(source: str) -> str:
    """The volume name in a mount source `host:/volume[/subdir]`."""
    remote = source.rsplit(":/", 1)[-1] if ":/" in source else ""
    return remote.strip("/").split("/", 1)[0]


def _inside(root: str, rel: str) -> str:
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise GlusterSandboxError(f"bad path inside a volume: {rel!r}")
    return os.path.join(root, *parts)


def connected_clients(hosts: Iterable[str], volume: str, *, timeout: float) -> list[str]:
    """The addresses of `volume`'s connections when a client other than gluster's own daemons
    is connected, else []: the client check as a list the tests can compare."""
    report = client_report(list(hosts), volume, timeout=timeout)
    return report.addresses if report.in_use else []
