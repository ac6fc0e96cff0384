"""The libgfapi transport against the real glusterd, run as uid 65534 without capabilities.

Trees are prepared as root through FUSE (GlusterServer.mounted) and inspected on the bricks;
the code under test always runs in tests/integration/gfapi_driver.py under
``setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recycler_job.gluster.parse import parse_volume_info
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.gluster_fixtures import VolumeFactory

pytestmark = pytest.mark.gluster

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
SETPRIV = [
    "setpriv",
    f"--reuid={NOBODY}",
    f"--regid={NOBODY}",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory uid 65534 can write (gfapi and CLI logs, pause files)."""
    path = Path(tempfile.mkdtemp(prefix="grt-gfapi-"))
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _argv(spec: dict[str, Any]) -> list[str]:
    return [
        *SETPRIV,
        str(REPO / ".venv/bin/python"),
        "-m",
        "tests.integration.gfapi_driver",
        json.dumps(spec),
    ]


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}


def run_driver(spec: dict[str, Any], timeout: float = 600) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        _argv(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd="/",
        check=False,
    )
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    results = [x for x in lines if x.get("event") == "result"]
    assert results, f"driver said nothing useful: {done.stdout}\n{done.stderr}"
    result = results[-1]
    assert result["uid"] == NOBODY and result["euid"] == NOBODY
    return done.returncode, result


class Driver:
    """A driver running in the background whose JSON lines the test reads one by one."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            _argv(spec),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd="/",
        )

    def next_event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"driver ended early: {err}")
            if line.startswith("{"):
                event: dict[str, Any] = json.loads(line)
                return event

    def finish(self, timeout: float = 120) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def spec_for(
    volume: GlusterVolumeHandle, scratch: Path, op: str = "wipe", **extra: Any
) -> dict[str, Any]:
    return {
        "op": op,
        "volume": volume.name,
        "hosts": list(volume.hosts),
        "log_file": str(scratch / "gfapi.log"),
        **extra,
    }


def brick_listing(volume: GlusterVolumeHandle) -> list[str]:
    """Everything on the bricks except gluster's own .glusterfs metadata (bytes paths)."""
    out: set[str] = set()
    for brick in volume.bricks:
        base = os.fsencode(brick)
        for dirpath, dirnames, filenames in os.walk(base):
            if dirpath == base and b".glusterfs" in dirnames:
                dirnames.remove(b".glusterfs")
            for name in dirnames + filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), base)
                out.add(os.fsdecode(rel))
    return sorted(out)


def local_digest(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            key = str(p.relative_to(path))
            out[key] = (
                hashlib.sha256(p.read_bytes()).hexdigest()
                if stat.S_ISREG(st.st_mode)
                else oct(st.st_mode)
            )
    return out


def make_chain(root: str, levels: int) -> None:
    """A chain of ``levels`` directories, made through fds.

    (A brick stores the tree under real paths, so gluster itself refuses chains whose path
    on the brick would exceed PATH_MAX: ESTALE at about 130 levels of 30-character names.)
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(levels):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            os.close(os.open(f".f{level}", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def write(path: str | bytes, data: bytes = b"x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def outside() -> Iterator[Path]:
    """Local files that symlinks in the volume point at: world-writable, so a process as 65534
    *could* delete them if it ever reached them."""
    path = Path(tempfile.mkdtemp(prefix="grt-outside-"))
    path.chmod(0o777)
    write(str(path / "precious"), b"precious")
    write(str(path / "dir" / "a"), b"a" * 4096)
    for p in (path / "precious", path / "dir", path / "dir" / "a"):
        p.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_hostile_tree_as_nobody(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path, outside: Path
) -> None:
    volume = gluster_volume()
    before = local_digest(outside)
    with gluster_server.mounted(volume) as root:
        write(f"{root}/.hidden", b"12345")
        write(f"{root}/.config/.inner", b"1")
        write(f"{root}/-rf", b"1")
        write(f"{root}/new\nline", b"1")
        write(os.fsencode(root) + b"/\xff\xfe-latin1-\xe9", b"1")
        write(os.fsencode(root) + b"/bad\x80dir/\xc3(", b"1")
        write(f"{root}/ro/sub/f", b"1")
        os.chmod(f"{root}/ro/sub", 0o500)
        os.chmod(f"{root}/ro", 0o000)
        write(f"{root}/zero", b"1")
        os.chmod(f"{root}/zero", 0o000)
        os.symlink(str(outside), f"{root}/to-outside")
        os.symlink(str(outside / "precious"), f"{root}/to-precious")
        os.makedirs(f"{root}/in")
        os.symlink(str(outside / "dir"), f"{root}/in/to-dir")
        os.symlink("/", f"{root}/in/slash")
        os.symlink("../..", f"{root}/in/up")
        make_chain(root, 300)
    rc, result = run_driver(spec_for(volume, scratch, workers=8))
    assert rc == 0, result
    assert brick_listing(volume) == []
    assert local_digest(outside) == before
    assert result["stats"]["files"] == 8 + 5 + 300  # regular files, symlinks, the chain
    assert result["stats"]["dirs"] == 1 + 1 + 2 + 1 + 300  # .config, bad dir, ro/sub, in, chain
    assert result["closed"] and result["fini"] == 0


def test_subdir_pv_keeps_siblings_and_never_follows_links(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    """Symlinks inside the PV point at its siblings (in gfapi's terms, ``/`` is the volume
    root): following any of them would wipe another tenant's data."""
    volume = gluster_volume(subdir="pv/data")
    with gluster_server.mounted(volume) as root:
        write(f"{root}/pv/data/a/b/c", b"tenant")
        write(f"{root}/pv/data/.dot", b"tenant")
        write(f"{root}/pv/other/keep", b"sibling")
        write(f"{root}/keep-root", b"other tenant")
        os.symlink("/", f"{root}/pv/data/slash")
        os.symlink("../..", f"{root}/pv/data/a/up")
        os.symlink("../other", f"{root}/pv/data/to-sibling")
        os.symlink("/pv/other", f"{root}/pv/data/a/to-sibling-abs")
    rc, result = run_driver(spec_for(volume, scratch, subdir="pv/data"))
    assert brick_listing(volume) == ["keep-root", "pv", "pv/data", "pv/other", "pv/other/keep"]
    assert rc == 0, result
    assert result["stats"]["files"] == 6


def test_subdir_pv_that_is_a_symlink_is_refused(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    with gluster_server.mounted(volume) as root:
        write(f"{root}/real/keep", b"x")
        os.symlink("real", f"{root}/pv")
    rc, result = run_driver(spec_for(volume, scratch, subdir="pv"))
    assert rc == 3
    assert "symlink" in result["error"]["message"]
    assert brick_listing(volume) == ["pv", "real", "real/keep"]


def test_fifty_thousand_files_in_one_directory(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    rc, result = run_driver(
        spec_for(volume, scratch, op="populate", tree={"flat": 50_000, "side": 10})
    )
    assert rc == 0, result
    assert len(brick_listing(volume)) == 50_000 + 10 + 2
    rc, result = run_driver(spec_for(volume, scratch, workers=8))
    assert rc == 0, result
    assert result["stats"]["files"] == 50_010
    assert result["stats"]["dirs"] == 2
    assert brick_listing(volume) == []
    print(f"peak RSS of the wiping process: {result['peak_rss_kib'] / 1024:.0f} MiB")
    # 44 MiB measured here: the listing is streamed, not held (bench/wipe.py checks that the
    # peak stays flat from 10,000 to 200,000 files)
    assert result["peak_rss_kib"] < 128 * 1024


@pytest.mark.parametrize("internal_op", ["off", "on"])
def test_trashcan_root_pv(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path, internal_op: str
) -> None:
    volume = gluster_volume(
        options={"features.trash": "on", "features.trash-internal-op": internal_op}
    )
    with gluster_server.mounted(volume) as root:
        for _ in range(50):
            if os.path.isdir(f"{root}/.trashcan"):
                break
            time.sleep(0.1)
        write(f"{root}/deleted-by-tenant", b"old secret")
        os.unlink(f"{root}/deleted-by-tenant")
        write(f"{root}/a/b/c", b"secret")
        write(f"{root}/.dot", b"s")
        assert any(n.startswith("deleted-by-tenant") for n in os.listdir(f"{root}/.trashcan"))
    rc, result = run_driver(spec_for(volume, scratch))
    assert rc == 0, result
    expected = [".trashcan"] + ([".trashcan/internal_op"] if internal_op == "on" else [])
    assert brick_listing(volume) == expected


def test_trashcan_subdir_pv(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    """What the wipe of a subdir PV unlinks lands in ``.trashcan/<subdir>``: purged too; the
    trash of other paths stays."""
    volume = gluster_volume(subdir="pv/data", options={"features.trash": "on"})
    with gluster_server.mounted(volume) as root:
        write(f"{root}/pv/data/x/y", b"secret")
        write(f"{root}/pv/data/z", b"secret")
        write(f"{root}/other/old", b"sibling trash")
        os.unlink(f"{root}/other/old")
    rc, result = run_driver(spec_for(volume, scratch, subdir="pv/data"))
    assert rc == 0, result
    left = brick_listing(volume)
    assert [p for p in left if "pv/data/" in p or p.endswith("pv/data")] == ["pv/data"]
    assert any(p.startswith(".trashcan/other/old") for p in left), left


def test_volume_id_matches_cli(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    rc, result = run_driver(spec_for(volume, scratch, op="volume-id"))
    assert rc == 0, result
    info = gluster_server.gluster("volume", "info", volume.name, "--xml").stdout
    assert result["volume_id"] == parse_volume_info(info, volume.name).volume_id
    assert result["cli_volume_id"] == result["volume_id"]


def test_failover_to_second_host(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    spec = spec_for(volume, scratch, op="volume-id")
    spec["hosts"] = ["glusterd.invalid", *volume.hosts]  # .invalid never resolves (RFC 6761)
    rc, result = run_driver(spec)
    assert rc == 0, result
    assert result["volume_id"]


def _fill(
    gluster_server: GlusterServer, volume: GlusterVolumeHandle, dirs: int, files: int
) -> None:
    with gluster_server.mounted(volume) as root:
        for d in range(dirs):
            os.makedirs(f"{root}/d{d:02d}")
            for i in range(files):
                write(f"{root}/d{d:02d}/f{i}")


def test_volume_stopped_during_wipe(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    _fill(gluster_server, volume, 20, 50)
    go = scratch / "go"
    # 1,000 entries cost about 2,000 stop checks (listing, then unlink): 700 is mid-wipe.
    driver = Driver(spec_for(volume, scratch, pause_after=700, pause_file=str(go)))
    try:
        assert driver.next_event()["event"] == "paused"
        gluster_server.stop_volume(volume)
        stopped_at = time.monotonic()
        go.touch()
        result = driver.next_event()
        raised_after = time.monotonic() - stopped_at
        rc = driver.finish()
    finally:
        driver.kill()
        gluster_server.start_volume(volume)
    assert rc == 3, result
    assert result["error"]["type"] == "WipeError"
    assert result["error"]["errno"] in (errno.ENOTCONN, errno.EIO, errno.ESTALE), result
    assert raised_after < 30, raised_after
    assert 0 < result["stats"]["files"] < 1000
    assert result["closed"]


def test_sigterm_mid_wipe_returns_promptly_and_frees_glfs(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    _fill(gluster_server, volume, 10, 50)
    go = scratch / "never"
    driver = Driver(spec_for(volume, scratch, pause_after=100, pause_file=str(go), linger=5))
    try:
        assert driver.next_event()["event"] == "paused"
        gluster_server.wait_clients(volume, {"gfapi.python": 1})
        driver.proc.send_signal(signal.SIGTERM)
        result = driver.next_event()
        clients_after = gluster_server.client_list(volume)  # the process still lingers
        rc = driver.finish()
    finally:
        driver.kill()
    assert rc == 4, result
    assert result["error"]["type"] == "WipeInterrupted"
    assert result["closed"] and result["fini"] == 0
    assert result["seconds_after_sigterm"] < 20  # glfs_fini alone takes ~10 s in gluster 10.3
    assert clients_after == {}
    assert len(brick_listing(volume)) > 400


def test_client_list_shows_our_gfapi_client(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    """A gfapi client is ``gfapi.<process name>`` in client-list, an address:port in
    ``clients`` like any other; it is gone once glfs_fini ran."""
    volume = gluster_volume()
    go = scratch / "go"
    driver = Driver(spec_for(volume, scratch, op="hold", pause_file=str(go), linger=5))
    try:
        connected = driver.next_event()
        assert connected["event"] == "connected"
        assert connected["client_name"] == "gfapi.python"
        gluster_server.wait_clients(volume, {"gfapi.python": 1})
        assert gluster_server.brick_connection_counts(volume.name) == [1]
        clients = gluster_server.gluster("volume", "status", volume.name, "clients").stdout
        assert any(":" in line.split()[0] for line in clients.splitlines()[6:7]), clients
        with gluster_server.mounted(volume) as mountpoint:
            os.listdir(mountpoint)  # a request: see GlusterServer.wait_clients
            gluster_server.wait_clients(volume, {"gfapi.python": 1, "fuse": 1})
        go.touch()
        result = driver.next_event()
        assert result["closed"]
        assert gluster_server.client_list(volume) == {}
        assert gluster_server.brick_connection_counts(volume.name) == [0]
        assert driver.finish() == 0
    finally:
        driver.kill()


def test_root_squash_is_a_clear_error_and_no_half_wipe(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    """Under root squashing a wipe could remove what the anonymous uid may remove (here the
    root's files and ``open/``) and then fail on ``closed/``: the probe refuses first."""
    volume = gluster_volume()
    with gluster_server.mounted(volume) as root:
        os.chmod(root, 0o777)
        write(f"{root}/top", b"1")
        os.chmod(f"{root}/top", 0o666)
        write(f"{root}/open/f", b"1")
        os.chmod(f"{root}/open", 0o777)
        write(f"{root}/closed/f", b"1")
    before = brick_listing(volume)
    gluster_server.gluster("volume", "set", volume.name, "server.root-squash", "on")
    rc, result = run_driver(spec_for(volume, scratch))
    assert rc == 5, result
    assert result["error"]["type"] == "WipeRootSquashed"
    assert "root-squash" in result["error"]["message"]
    assert brick_listing(volume) == before


def test_large_files_of_one_directory_go_to_several_workers(
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The brick frees a large file's blocks inside its unlink: batches close at
    _UNLINK_BATCH_BYTES so that the large files of one directory are unlinked in parallel
    (not 128 names to one worker, as for small files)."""
    from recycler_job.wipe import gfapi_handles

    volume = gluster_volume()
    with gluster_server.mounted(volume) as mnt:
        os.mkdir(os.path.join(mnt, "big"))
        for i in range(4):  # sparse: the size counts, no data needs writing
            with open(os.path.join(mnt, "big", f"f{i}"), "wb") as f:
                f.truncate(40 << 20)  # more than the 32 MiB a batch may hold
        for i in range(3):
            with open(os.path.join(mnt, "big", f"small{i}"), "wb") as f:
                f.write(b"x")
    batches: list[list[bytes]] = []
    original = gfapi_handles._GfapiEngine.unlink_batch

    def recording(self: Any, node: Any, batch: list[tuple[bytes, int]], counts: Any) -> None:
        batches.append(sorted(name for name, _ in batch))
        original(self, node, batch, counts)

    monkeypatch.setattr(gfapi_handles._GfapiEngine, "unlink_batch", recording)
    with gfapi_handles.open_volume(
        volume.name, list(volume.hosts), log_file=str(scratch / "gfapi.log")
    ) as vol:
        stats = vol.wipe("big", workers=4)
    assert stats.files == 7
    large = [b for b in batches if any(n.startswith(b"f") for n in b)]
    assert len(large) == 4, batches  # one batch per large file
    assert sorted(n for b in batches for n in b if n.startswith(b"f")) == [
        b"f0",
        b"f1",
        b"f2",
        b"f3",
    ]
    assert brick_listing(volume) == ["big"]  # the PV directory itself stays


def test_a_gfapi_wipe_waits_for_the_budget_it_shares_with_the_other_volumes(
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    scratch: Path,
) -> None:
    """The pass's budget reaches the gfapi wipe: while another volume's wipe holds every slot,
    this one removes nothing, and a stop still ends it; once the slot is free it goes on."""
    import threading

    from recycler_job.wipe import engine as wipe_engine
    from recycler_job.wipe import gfapi_handles

    volume = gluster_volume()
    with gluster_server.mounted(volume) as mnt:
        os.makedirs(os.path.join(mnt, "pv", "d"))
        for name in ("pv/f", "pv/d/g"):
            with open(os.path.join(mnt, name), "wb") as f:
                f.write(b"x")
    budget = wipe_engine.WorkerBudget(1)
    budget.acquire(lambda: None)  # the other volume's wipe
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with gfapi_handles.open_volume(
        volume.name, list(volume.hosts), log_file=str(scratch / "gfapi.log")
    ) as vol:
        with pytest.raises(wipe_engine.WipeInterrupted):
            vol.wipe("pv", workers=2, stop=stop, budget=budget)
        assert brick_listing(volume) == ["pv", "pv/d", "pv/d/g", "pv/f"]  # nothing removed
        budget.release()
        stats = vol.wipe("pv", workers=2, budget=budget)
    assert (stats.files, stats.dirs) == (2, 1)
    assert brick_listing(volume) == ["pv"]  # the PV directory itself stays


# ---- the trash by its configured name, the old tenant's xattrs, bounded glfs_init ----------


def test_renamed_trash_of_a_subdir_pv_is_purged(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    """features.trash-dir .Trash: what the wipe unlinks lands in `.Trash/<subdir>`: purged."""
    volume = gluster_volume(
        subdir="pv/data", options={"features.trash": "on", "features.trash-dir": ".Trash"}
    )
    with gluster_server.mounted(volume) as root:
        write(f"{root}/pv/data/x/y", b"secret")
        write(f"{root}/pv/data/old", b"deleted earlier")
        os.unlink(f"{root}/pv/data/old")
        write(f"{root}/other/old", b"sibling trash")
        os.unlink(f"{root}/other/old")
    rc, result = run_driver(spec_for(volume, scratch, subdir="pv/data"))
    assert rc == 0, result
    left = brick_listing(volume)
    assert not [p for p in left if p.startswith(".Trash/pv/")], left
    assert any(p.startswith(".Trash/pv") for p in left)  # the trash did hold it
    assert any(p.startswith(".Trash/other/old") for p in left), left


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_tenant_entry_named_trashcan_with_trash_off_is_removed(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path, kind: str
) -> None:
    """With the trash off, `.trashcan` at the root is an ordinary entry: unlinked, never
    followed (the symlink points at the volume root)."""
    volume = gluster_volume()
    with gluster_server.mounted(volume) as root:
        write(f"{root}/keep-me-not", b"x")
        if kind == "file":
            write(f"{root}/.trashcan", b"tenant file")
        else:
            os.symlink("/", f"{root}/.trashcan")
    rc, result = run_driver(spec_for(volume, scratch))
    assert rc == 0, result
    assert brick_listing(volume) == []


def _tenant_attrs(gluster_server: GlusterServer, volume: GlusterVolumeHandle, rel: str) -> None:
    with gluster_server.mounted(volume, options=["acl"]) as root:
        path = os.path.join(root, rel)
        write(f"{path}/f", b"x")
        os.setxattr(path, "user.secret", b"old tenant")
        subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx", path], check=True)
        subprocess.run(["setfacl", "-m", "u:4321:rx", path], check=True)
        assert {"user.secret", "system.posix_acl_default", "system.posix_acl_access"} <= set(
            os.listxattr(path)
        )


def brick_xattrs(path: str) -> set[str]:
    return set(os.listxattr(path))


@pytest.mark.parametrize("subdir", [None, "pv/data"])
def test_old_tenants_xattrs_and_acls_of_the_pv_directory_are_removed(
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    scratch: Path,
    subdir: str | None,
) -> None:
    volume = gluster_volume(subdir=subdir)
    _tenant_attrs(gluster_server, volume, subdir or "")
    rc, result = run_driver(spec_for(volume, scratch, subdir=subdir))
    assert rc == 0, result
    on_brick = brick_xattrs(os.path.join(volume.bricks[0], subdir or ""))
    assert not [n for n in on_brick if n.startswith(("user.", "system.posix_acl"))], on_brick
    assert "trusted.gfid" in on_brick  # gluster's own stay


def test_glfs_init_against_a_frozen_brick_is_given_up_within_the_bound(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    with gluster_server.bricks_frozen(volume):
        started = time.monotonic()
        rc, result = run_driver(spec_for(volume, scratch, op="volume-id", timeout=3), timeout=60)
        took = time.monotonic() - started
    assert rc == 3, result
    assert "no answer within 3 s" in result["error"]["message"], result
    assert result["error"]["errno"] == errno.ETIMEDOUT
    assert took < 3 + 7, took  # the bound, plus starting Python and exiting


def test_sigterm_during_a_frozen_glfs_init_exits_4_promptly(
    gluster_server: GlusterServer, gluster_volume: VolumeFactory, scratch: Path
) -> None:
    volume = gluster_volume()
    with gluster_server.bricks_frozen(volume):
        driver = Driver(spec_for(volume, scratch, op="volume-id", timeout=600))
        try:
            time.sleep(3)  # inside glfs_init by now, waiting for the frozen brick
            assert driver.proc.poll() is None
            sent = time.monotonic()
            driver.proc.send_signal(signal.SIGTERM)
            result = driver.next_event()
            rc = driver.finish(timeout=30)
            took = time.monotonic() - sent
        finally:
            driver.kill()
    assert rc == 4, result
    assert result["error"]["type"] == "WipeInterrupted", result
    assert took < 10, took
