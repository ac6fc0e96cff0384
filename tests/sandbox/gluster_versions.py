"""GlusterFS servers of other versions for the server-version matrix: glusterd 9.2 and 11.1.

Each runs from a Debian chroot of its suite (built once into the cache by
tests/sandbox/gluster_chroot.sh, like the control planes) inside a network namespace of its
own, joined to this machine by a veth pair, so the host's 10.3 client (CLI, FUSE, libgfapi)
talks to it over TCP as to a pool in a real cluster:

    with VersionedGlusterServer("9.2") as server:   # starts glusterd in its namespace
        volume = server.create_volume("grt-x", subdir="pv/data")
        cli.volume_info(volume.hosts, volume.name, timeout=30)

Address plan: slot N (1..63, taken with a lock file so that sessions running at the same time
never share one) gets 10.213.N.0/30, the host end 10.213.N.1, the namespace 10.213.N.2, and
the host name `grt-gfs-N` for that address in this machine's /etc/hosts and the chroot's. The
server also has its own UTS namespace with that host name, so the bricks report it in
`trusted.glusterfs.pathinfo` as a real server would. The link is point-to-point between this
machine and the namespace: nothing is routed anywhere else.

Everything the server writes (/var/lib/glusterd, its logs, /run, the bricks) lives in a
temporary state directory bind-mounted into the chroot inside the server's own mount
namespace; the cached chroot itself is never written to, and the bind mounts disappear with
the server's processes. The host's own glusterd (10.3) is not touched: other port space,
other working directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from tests.sandbox.gluster import GlusterSandboxError, GlusterServer, run_command

HOST_VERSION = "10.3"
"""The version of this machine's own glusterd (Debian 12), served by `GlusterServer`."""
SUITES = {"9.2": "bullseye", "11.1": "trixie"}
"""Server versions served from a chroot: version -> the Debian suite that ships it."""
VERSIONS = ("9.2", HOST_VERSION, "11.1")
"""Every server version of the matrix, oldest first."""

CHROOT_SCRIPT = Path(__file__).with_name("gluster_chroot.sh")
LOCK_DIR = Path("/run/grt-gluster-versions")
SLOTS = range(1, 64)
HOSTS_FILE = Path("/etc/hosts")
_TAG = "# grt-gluster-versions slot "


def build_chroot(suite: str, *, timeout: float = 1200.0) -> Path:
    """The chroot of `suite`, built into the cache when missing (gluster_chroot.sh)."""
    done = subprocess.run(
        ["bash", str(CHROOT_SCRIPT), suite],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise GlusterSandboxError(f"chroot of {suite}: {done.stderr.strip()}")
    return Path(done.stdout.strip().splitlines()[-1])


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise GlusterSandboxError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _edit_hosts(slot: int, line: str | None) -> None:
    """Drop this slot's line from /etc/hosts and add `line` (tagged) when given.

    Rewritten in place (the file may be a bind mount), under a lock shared by all sessions.
    """
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / "hosts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(HOSTS_FILE, "r+") as f:
            kept = [x for x in f.read().splitlines() if not x.endswith(f"{_TAG}{slot}")]
            if line is not None:
                kept.append(f"{line} {_TAG}{slot}")
            f.seek(0)
            f.write("\n".join(kept) + "\n")
            f.truncate()


def _kill_namespace(netns: str, timeout: float = 10.0) -> None:
    """SIGCONT, SIGTERM, then SIGKILL every process in `netns`; wait until none is left."""
    if netns not in _ip("netns", "list", check=False).stdout.split():
        return
    deadline = time.monotonic() + timeout
    sig = signal.SIGTERM
    while True:
        pids = [int(p) for p in _ip("netns", "pids", netns, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a frozen brick left stopped ignores SIGTERM
                os.kill(pid, sig)
        if time.monotonic() > deadline:
            if sig == signal.SIGKILL:
                raise GlusterSandboxError(f"processes {pids} in {netns} do not exit")
            sig, deadline = signal.SIGKILL, time.monotonic() + timeout
        time.sleep(0.2)


class VersionedGlusterServer(GlusterServer):
    """glusterd `version` from its Debian chroot, in a network namespace of its own.

    `gluster()` runs the server's own CLI inside its namespaces (what an admin on that server
    would type); the code under test uses the host's CLI with `--remote-host`, over the veth.
    """

    def __init__(self, version: str, *, timeout: float = 120.0) -> None:
        if version not in SUITES:
            raise GlusterSandboxError(f"no chroot for gluster {version}; have {sorted(SUITES)}")
        self.version = version
        self.suite = SUITES[version]
        self._state = Path(tempfile.mkdtemp(prefix=f"grt-gluster-{version}-"))
        super().__init__(self._state / "work", timeout=timeout)
        self.root: Path | None = None
        self.slot: int | None = None
        self._lock: IO[str] | None = None
        self._glusterd: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ names

    @property
    def netns(self) -> str:
        return f"grt-gfs-{self.slot}"

    @property
    def host(self) -> str:
        """The server's host name (its UTS name, resolving to its address here and there)."""
        return f"grt-gfs-{self.slot}"

    @property
    def address(self) -> str:
        return f"10.213.{self.slot}.2"

    def server_path(self, path: str) -> str:
        """A path below the state's `work` directory as the chroot sees it (`/work/...`)."""
        rel = Path(path).relative_to(self._state / "work")
        return str(Path("/work") / rel)

    # ---------------------------------------------------------------- start

    def ensure_running(self, timeout: float = 60.0) -> None:
        """Start glusterd in its namespace (once); wait until it answers over the veth."""
        if self._glusterd is not None:
            return
        self.root = build_chroot(self.suite)
        built = (self.root / ".glusterfs-version").read_text().strip()
        if not built.startswith(self.version + "-"):
            raise GlusterSandboxError(f"{self.root} holds glusterfs {built}, not {self.version}")
        self._take_slot()
        self._make_link()
        self._start_glusterd()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._glusterd is not None and self._glusterd.poll() is not None:
                raise GlusterSandboxError(
                    f"glusterd {self.version} exited: {self._tail('glusterd.out')}"
                )
            answer = super().gluster("volume", "list", remote_host=self.address, check=False)
            if answer.returncode == 0:
                return
            time.sleep(0.5)
        raise GlusterSandboxError(f"glusterd {self.version} did not answer within {timeout:g}s")

    def _take_slot(self) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        for slot in SLOTS:
            lock = open(LOCK_DIR / f"slot-{slot}.lock", "w")  # noqa: SIM115 -- held until close
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._lock, self.slot = lock, slot
            self._remove_link()  # whatever a killed session left in this slot
            return
        raise GlusterSandboxError("every sandbox gluster slot is taken")

    def _veth(self, end: str) -> str:
        return f"grtv{self.slot}{end}"

    def _make_link(self) -> None:
        host_end, ns_end = self._veth("h"), self._veth("n")
        _ip("netns", "add", self.netns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", self.netns)
        _ip("addr", "add", f"10.213.{self.slot}.1/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        inside = ("netns", "exec", self.netns, "ip")
        _ip(*inside, "addr", "add", f"{self.address}/30", "dev", ns_end)
        _ip(*inside, "link", "set", ns_end, "up")
        _ip(*inside, "link", "set", "lo", "up")
        _edit_hosts(self.slot or 0, f"{self.address} {self.host}")

    def _start_glusterd(self) -> None:
        """glusterd -N (foreground) in new UTS and mount namespaces, chrooted, in the netns."""
        assert self.root is not None
        state = self._state
        shutil.copytree(self.root / "var/lib/glusterd", state / "glusterd", symlinks=True)
        for sub in ("log", "run", "work"):
            (state / sub).mkdir(exist_ok=True)
        (state / "hosts").write_text(
            f"127.0.0.1 localhost\n{self.address} {self.host}\n", encoding="ascii"
        )
        for mountpoint in ("work", "proc", "sys", "dev", "run"):
            (self.root / mountpoint).mkdir(exist_ok=True)
        (self.root / "etc/hosts").touch()  # minbase has none; the bind mount needs a file
        root = str(self.root)
        binds = [
            (state / "glusterd", "var/lib/glusterd"),
            (state / "log", "var/log/glusterfs"),
            (state / "run", "run"),
            (state / "work", "work"),
            (state / "hosts", "etc/hosts"),
        ]
        script = [
            "set -e",
            f"hostname {self.host}",
            f"mount -t proc proc {root}/proc",
            f"mount -t sysfs sysfs {root}/sys",
            f"mount --rbind /dev {root}/dev",
            *[f"mount --bind {src} {root}/{dst}" for src, dst in binds],
            f"exec chroot {root} /usr/sbin/glusterd -N --log-level=INFO",
        ]
        out = open(state / "glusterd.out", "wb")  # noqa: SIM115 -- handed to the process
        with out:
            self._glusterd = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "unshare", "--uts", "--mount",
                 "--propagation", "private", "sh", "-c", "\n".join(script)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.started_glusterd = True

    def _tail(self, name: str) -> str:
        try:
            return (self._state / name).read_text(errors="replace").strip()[-2000:]
        except OSError as exc:
            return str(exc)

    # ---------------------------------------------------------------- the CLI

    def gluster(
        self,
        *args: str,
        remote_host: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The server's own `gluster --mode=script args...`, run in its namespaces and root
        (`remote_host`, when given, is handed to it as is)."""
        if self._glusterd is None or self._glusterd.poll() is not None:
            raise GlusterSandboxError(f"glusterd {self.version} is not running")
        argv = ["nsenter", f"--target={self._glusterd.pid}", "--mount", "--net", "--uts"]
        argv += ["--root", "--wd=/", "gluster", "--mode=script"]
        if remote_host:
            argv.append(f"--remote-host={remote_host}")
        argv += list(args)
        try:
            result = run_command(argv, timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise GlusterSandboxError(f"`gluster {' '.join(args)}` timed out") from exc
        if check and result.returncode != 0:
            raise GlusterSandboxError(
                f"`gluster {' '.join(args)}` ({self.version}) failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result

    # --------------------------------------------------------------- teardown

    def _remove_link(self) -> None:
        """Every step is tried even when one before failed; the first failure is raised."""
        errors: list[str] = []
        try:
            _kill_namespace(self.netns)
            if self.netns in _ip("netns", "list", check=False).stdout.split():
                _ip("netns", "del", self.netns)
        except GlusterSandboxError as exc:
            errors.append(str(exc))
        # Deleting the namespace destroys the pair, asynchronously: "no such device" is done.
        gone = _ip("link", "del", self._veth("h"), check=False)
        if gone.returncode != 0 and "Cannot find device" not in gone.stderr:
            errors.append(f"ip link del {self._veth('h')}: {gone.stderr.strip()}")
        _edit_hosts(self.slot or 0, None)
        if errors:
            raise GlusterSandboxError("; ".join(errors))

    def close(self) -> None:
        """Unmount this machine's mounts of its volumes, end every process of the server,
        remove the namespace, the link, the hosts entry and the state directory."""
        errors = self._wait_for_reaper()
        for path in sorted(self._mounts, reverse=True):
            try:
                self.fuse_unmount(path)
            except GlusterSandboxError as exc:
                errors.append(str(exc))
        try:
            self.unmount_below(self._state)
        except GlusterSandboxError as exc:
            errors.append(str(exc))
        self.volumes.clear()  # they go with the server's state
        if self.slot is not None:
            try:
                self._remove_link()
            except (GlusterSandboxError, OSError) as exc:
                errors.append(str(exc))
        if self._glusterd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._glusterd.wait(10)
            self._glusterd = None
        if self._lock is not None:
            self._lock.close()  # releases the slot
            self._lock = None
        self._workdir = None
        from recycler_job.gluster import mountinfo

        if mountinfo.mounts_below(str(self._state)):
            errors.append(f"mounts left below {self._state}; not removing it")
        else:
            shutil.rmtree(self._state, ignore_errors=True)
        if errors:
            raise GlusterSandboxError("; ".join(errors))
