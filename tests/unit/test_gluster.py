"""gluster.py without a gluster server: mount options, output parsing (samples captured from
glusterfs 10.3), the client check against a fake `gluster`, verification, naming, cleanup.

Fake `gluster` and `mount` commands are shell scripts put first on PATH.
"""

from __future__ import annotations

import errno
import os
import stat
import textwrap
import threading
import time
from pathlib import Path

import pytest

from recycler_job import gluster
from recycler_job.gluster import GlusterError, MountError, VolumeInUse
from recycler_job.mountinfo import MountEntry
from recycler_job.sources.glusterfs import GlusterSource

# --------------------------------------------------------------------------------------
# `gluster volume status VOL clients` / `client-list`, captured from glusterfs 10.3
# (single node, bricks on host "vm"). Whitespace exactly as printed.

ONE_BRICK_NO_CLIENTS = (
    "Client connections for volume grt-sample1\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample1/b0\n"
    "Clients connected : 0\n"
    "----------------------------------------------\n"
    "\n"
)

ONE_BRICK_NO_CLIENTS_LIST = (
    "Client connections for volume grt-sample1\n"
    "\n"
    "total clients for volume grt-sample1 : 0 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

ONE_BRICK_FUSE = (
    "Client connections for volume grt-sample1\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample1/b0\n"
    "Clients connected : 1\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49138                                             "
    "2052            1476          100000\n"
    "----------------------------------------------\n"
    "\n"
)

ONE_BRICK_FUSE_LIST = (
    "Client connections for volume grt-sample1\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "fuse                                                           1\n"
    "\n"
    "total clients for volume grt-sample1 : 1 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

REPLICA_SHD = (
    "Client connections for volume grt-sample2\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b0\n"
    "Clients connected : 1\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49147                                             "
    "4004            4288          100000\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b1\n"
    "Clients connected : 1\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49139                                             "
    "4004            4288          100000\n"
    "----------------------------------------------\n"
    "\n"
)

REPLICA_SHD_LIST = (
    "Client connections for volume grt-sample2\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "glustershd                                                     1\n"
    "\n"
    "total clients for volume grt-sample2 : 1 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

REPLICA_SHD_TWO_FUSE = (
    "Client connections for volume grt-sample2\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b0\n"
    "Clients connected : 3\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49147                                             "
    "4740            5060          100000\n"
    "127.0.0.1:49129                                             "
    "3192            2296          100000\n"
    "127.0.0.1:49127                                             "
    "2636            2248          100000\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b1\n"
    "Clients connected : 3\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49139                                             "
    "4740            5060          100000\n"
    "127.0.0.1:49128                                             "
    "3248            2296          100000\n"
    "127.0.0.1:49126                                             "
    "2692            2248          100000\n"
    "----------------------------------------------\n"
    "\n"
)

REPLICA_SHD_TWO_FUSE_LIST = (
    "Client connections for volume grt-sample2\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "glustershd                                                     1\n"
    "fuse                                                           2\n"
    "\n"
    "total clients for volume grt-sample2 : 3 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

REPLICA_BRICK_OFFLINE = (
    "Client connections for volume grt-exp2\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-exp/r1\n"
    "Clients connected : 3\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49137                                             "
    "5168            5832          100000\n"
    "127.0.0.1:49132                                             "
    "7620            5548          100000\n"
    "127.0.0.1:49127                                             "
    "2612            2292          100000\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-exp/r2\n"
    "Brick is offline\n"
    "----------------------------------------------\n"
    "\n"
)

QUOTA_BITROT_FUSE_LIST = (
    "Client connections for volume grt-exp1\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "fuse                                                           1\n"
    "quotad                                                         1\n"
    "scrub                                                          1\n"
    "bitd                                                           1\n"
    "\n"
    "total clients for volume grt-exp1 : 2 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

# --------------------------------------------------------------------------------------
# helpers


def source(path: str = "vol_a", read_only: bool = False) -> GlusterSource:
    return GlusterSource(
        endpoints="glusterfs-cluster", path=path, endpoints_namespace=None, read_only=read_only
    )


def write_script(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text("#!/bin/bash\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


class FakeGluster:
    """A `gluster` on PATH answering per (remote host, last argument) from files."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp_path / "fake-gluster"
        self.log = self.dir / "calls.log"
        write_script(
            self.dir / "bin",
            "gluster",
            f"""\
            echo "$*" >> {self.log}
            host=""
            for a in "$@"; do
                case "$a" in --remote-host=*) host="${{a#--remote-host=}}";; esac
            done
            f="{self.dir}/$host.${{@: -1}}"
            [ -f "$f.sleep" ] && sleep "$(cat "$f.sleep")"
            [ -f "$f.out" ] && cat "$f.out"
            [ -f "$f.err" ] && cat "$f.err" >&2
            if [ -f "$f.rc" ]; then exit "$(cat "$f.rc")"; fi
            echo "Connection failed. Please check if gluster daemon is operational."
            exit 1
            """,
        )
        monkeypatch.setenv("PATH", f"{self.dir / 'bin'}:{os.environ['PATH']}")

    def answer(
        self,
        host: str,
        what: str,
        *,
        out: str = "",
        err: str = "",
        rc: int = 0,
        sleep: float | None = None,
    ) -> None:
        base = self.dir / f"{host}.{what}"
        Path(f"{base}.out").write_text(out)
        Path(f"{base}.err").write_text(err)
        Path(f"{base}.rc").write_text(str(rc))
        if sleep is not None:
            Path(f"{base}.sleep").write_text(str(sleep))

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_gluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGluster:
    return FakeGluster(tmp_path, monkeypatch)


def fake_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """Put a fake `mount` first on PATH; returns the file its arguments are logged to."""
    log = tmp_path / "mount-calls.log"
    bin_dir = tmp_path / "fake-bin"
    write_script(bin_dir, "mount", f'echo "$*" >> {log}\n' + textwrap.dedent(body))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def entry(**changes: object) -> MountEntry:
    fields: dict[str, object] = {
        "mount_id": 300,
        "parent_id": 22,
        "major": 0,
        "minor": 51,
        "root": "/",
        "mount_point": "/var/lib/recycler/pv-a",
        "mount_options": ("rw", "relatime"),
        "optional_fields": (),
        "fstype": "fuse.glusterfs",
        "source": "10.0.0.5:/vol_a",
        "super_options": ("rw", "user_id=0"),
    }
    fields.update(changes)
    return MountEntry(**fields)  # type: ignore[arg-type]


def stat_result(dev: int, ino: int, mode: int = stat.S_IFDIR | 0o755) -> os.stat_result:
    return os.stat_result((mode, ino, dev, 2, 0, 0, 4096, 0, 0, 0))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# --------------------------------------------------------------------------------------
# mount source and options


@pytest.mark.parametrize(
    ("hosts", "backup"),
    [
        (["10.0.0.1"], None),
        (["10.0.0.1", "10.0.0.2"], "backup-volfile-servers=10.0.0.2"),
        (["10.0.0.1", "10.0.0.2", "10.0.0.3"], "backup-volfile-servers=10.0.0.2:10.0.0.3"),
        (
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "gluster-4.example.com"],
            "backup-volfile-servers=10.0.0.2:10.0.0.3:gluster-4.example.com",
        ),
    ],
)
def test_mount_options_for_one_to_four_hosts(hosts: list[str], backup: str | None) -> None:
    src, options = gluster.mount_source_and_options(hosts, source(), read_only=False)
    assert src == "10.0.0.1:/vol_a"
    assert options == ([backup] if backup else [])
    if backup:
        # every host but the first, each exactly once
        assert backup.split("=", 1)[1].split(":") == hosts[1:]


def test_read_only_adds_ro_and_subdir_goes_into_the_source() -> None:
    src, options = gluster.mount_source_and_options(
        ["a", "b", "c"], source("vol_a/sub/dir"), read_only=True
    )
    assert src == "a:/vol_a/sub/dir"
    assert options == ["backup-volfile-servers=b:c", "ro"]


def test_ipv6_backup_servers_are_bracketed_and_duplicates_dropped() -> None:
    src, options = gluster.mount_source_and_options(
        ["fd00::1", "fd00::2", "[fd00::3]", "fd00::2"], source(), read_only=False
    )
    assert src == "fd00::1:/vol_a"
    assert options == ["backup-volfile-servers=[fd00::2]:[fd00::3]"]


@pytest.mark.parametrize(
    "bad",
    ["", " ", "a,ro", "a b", "a/b", "a:b", "a=b", "-o", "a;b", "x" * 254, "a\\nb"],
)
def test_hosts_that_could_break_the_options_are_refused(bad: str) -> None:
    with pytest.raises(GlusterError, match="invalid gluster host"):
        gluster.mount_source_and_options(["10.0.0.1", bad], source(), read_only=False)


def test_no_host_is_an_error() -> None:
    with pytest.raises(GlusterError, match="no gluster host"):
        gluster.mount_source_and_options([], source(), read_only=False)


def test_expected_sources_name_every_host() -> None:
    assert gluster.expected_sources(["a", "b"], source("v/s")) == ["a:/v/s", "b:/v/s"]


# --------------------------------------------------------------------------------------
# parsing


def test_parse_one_brick_without_clients() -> None:
    bricks = gluster.parse_volume_clients(ONE_BRICK_NO_CLIENTS, "grt-sample1")
    assert bricks == [
        gluster.BrickClients(
            brick="vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample1/b0",
            online=True,
            connections=(),
        )
    ]
    assert gluster.parse_client_list(ONE_BRICK_NO_CLIENTS_LIST, "grt-sample1") == {}


def test_parse_one_fuse_client() -> None:
    bricks = gluster.parse_volume_clients(ONE_BRICK_FUSE, "grt-sample1")
    assert [b.connections for b in bricks] == [("127.0.0.1:49138",)]
    assert gluster.parse_client_list(ONE_BRICK_FUSE_LIST, "grt-sample1") == {"fuse": 1}


def test_parse_replica_with_self_heal_daemon_and_two_fuse_clients() -> None:
    bricks = gluster.parse_volume_clients(REPLICA_SHD_TWO_FUSE, "grt-sample2")
    assert [len(b.connections) for b in bricks] == [3, 3]
    assert bricks[1].connections[0] == "127.0.0.1:49139"
    kinds = gluster.parse_client_list(REPLICA_SHD_TWO_FUSE_LIST, "grt-sample2")
    assert kinds == {"glustershd": 1, "fuse": 2}


def test_parse_offline_brick() -> None:
    bricks = gluster.parse_volume_clients(REPLICA_BRICK_OFFLINE, "grt-exp2")
    assert [(b.brick, b.online, len(b.connections)) for b in bricks] == [
        ("vm:/tmp/grt-exp/r1", True, 3),
        ("vm:/tmp/grt-exp/r2", False, 0),
    ]


def test_parse_daemons_missing_from_the_total() -> None:
    kinds = gluster.parse_client_list(QUOTA_BITROT_FUSE_LIST, "grt-exp1")
    assert kinds == {"fuse": 1, "quotad": 1, "scrub": 1, "bitd": 1}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Volume grt-sample1 does not exist\n",
        ONE_BRICK_FUSE.replace("grt-sample1\n", "grt-other\n", 1),  # another volume
        ONE_BRICK_FUSE.replace("Clients connected : 1", "Clients connected : 2"),
        ONE_BRICK_FUSE.replace("Clients connected : 1\n", ""),
        ONE_BRICK_FUSE.replace("127.0.0.1:49138 ", "something odd here "),
        "Client connections for volume grt-sample1\n---\n",  # no brick
        "Client connections for volume grt-sample1\nClients connected : 0\n",
    ],
)
def test_unexpected_clients_output_is_an_error(text: str) -> None:
    with pytest.raises(GlusterError):
        gluster.parse_volume_clients(text, "grt-sample1")


@pytest.mark.parametrize(
    "text",
    [
        "",
        REPLICA_SHD_LIST.replace("grt-sample2\n", "grt-other\n", 1),
        REPLICA_SHD_LIST.split("\ntotal", maxsplit=1)[0],  # truncated
        REPLICA_SHD_LIST.replace("glustershd     ", "glustershd  x  "),
    ],
)
def test_unexpected_client_list_output_is_an_error(text: str) -> None:
    with pytest.raises(GlusterError):
        gluster.parse_client_list(text, "grt-sample2")


# --------------------------------------------------------------------------------------
# the client check, against a fake gluster


def test_self_heal_daemon_alone_is_not_a_client(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=REPLICA_SHD)
    fake_gluster.answer("h1", "client-list", out=REPLICA_SHD_LIST)
    assert gluster.connected_clients(["h1"], "grt-sample2", timeout=5) == []
    gluster.ensure_not_in_use(["h1"], "grt-sample2", timeout=5)
    calls = fake_gluster.calls()
    assert calls[0].split() == [
        "--mode=script",
        "--remote-host=h1",
        "--timeout=5",
        "volume",
        "status",
        "grt-sample2",
        "clients",
    ]
    assert calls[1].endswith("volume status grt-sample2 client-list")


def test_fuse_clients_are_reported(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=REPLICA_SHD_TWO_FUSE)
    fake_gluster.answer("h1", "client-list", out=REPLICA_SHD_TWO_FUSE_LIST)
    assert gluster.connected_clients(["h1"], "grt-sample2", timeout=5) == ["127.0.0.1"]
    with pytest.raises(VolumeInUse, match="2 fuse client") as caught:
        gluster.ensure_not_in_use(["h1"], "grt-sample2", timeout=5)
    assert "\n" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_a_volume_without_connections_skips_the_client_list(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=ONE_BRICK_NO_CLIENTS)
    assert gluster.connected_clients(["h1"], "grt-sample1", timeout=5) == []
    assert len(fake_gluster.calls()) == 1


def test_connections_gluster_cannot_name_count_as_clients(fake_gluster: FakeGluster) -> None:
    # Three connections on each brick but only one named (self-heal) client process.
    fake_gluster.answer("h1", "clients", out=REPLICA_SHD_TWO_FUSE)
    fake_gluster.answer("h1", "client-list", out=REPLICA_SHD_LIST)
    with pytest.raises(VolumeInUse, match="2 unidentified"):
        gluster.ensure_not_in_use(["h1"], "grt-sample2", timeout=5)


def test_daemons_only_client_kinds() -> None:
    report = gluster.ClientReport(
        volume="v",
        bricks=(gluster.BrickClients("h:/b", True, ("1.2.3.4:1", "1.2.3.5:2", "[fd00::9]:3")),),
        kinds={"quotad": 1, "bitd": 1, "scrub": 1},
    )
    assert not report.in_use
    assert report.addresses == ["1.2.3.4", "1.2.3.5", "fd00::9"]
    assert gluster.ClientReport("v", report.bricks, {"gfapi": 1, "quotad": 2}).in_use
    assert gluster.ClientReport("v", report.bricks, {"something-new": 1, "quotad": 2}).in_use


def test_offline_brick_is_an_error_not_a_pass(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=REPLICA_BRICK_OFFLINE)
    with pytest.raises(GlusterError, match="offline") as caught:
        gluster.connected_clients(["h1"], "grt-exp2", timeout=5)
    assert not isinstance(caught.value, VolumeInUse)


def test_hosts_are_tried_in_order_until_one_answers(fake_gluster: FakeGluster) -> None:
    # h1 has no answer configured: the fake prints gluster's "Connection failed" and exits 1
    fake_gluster.answer("h2", "clients", out=ONE_BRICK_FUSE)
    fake_gluster.answer("h2", "client-list", out=ONE_BRICK_FUSE_LIST)
    fake_gluster.answer("h3", "clients", out=ONE_BRICK_NO_CLIENTS)
    assert gluster.connected_clients(["h1", "h2", "h3"], "grt-sample1", timeout=5) == ["127.0.0.1"]
    hosts = [c.split()[1] for c in fake_gluster.calls()]
    assert hosts == ["--remote-host=h1", "--remote-host=h2", "--remote-host=h1", "--remote-host=h2"]


def test_no_host_answering_is_an_error(fake_gluster: FakeGluster) -> None:
    with pytest.raises(GlusterError, match="no gluster host answered") as caught:
        gluster.connected_clients(["h1", "h2"], "grt-sample1", timeout=5)
    assert "h1: Connection failed" in str(caught.value)
    assert "h2: Connection failed" in str(caught.value)


def test_unknown_volume_is_final_and_an_error(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", err="Volume grt-nope does not exist\n", rc=1)
    fake_gluster.answer("h2", "clients", out=ONE_BRICK_NO_CLIENTS)
    with pytest.raises(GlusterError, match="grt-nope does not exist") as caught:
        gluster.connected_clients(["h1", "h2"], "grt-nope", timeout=5)
    assert not isinstance(caught.value, VolumeInUse)
    assert len(fake_gluster.calls()) == 1


def test_a_hanging_host_is_given_up_on(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=ONE_BRICK_NO_CLIENTS, sleep=30)
    fake_gluster.answer("h2", "clients", out=ONE_BRICK_NO_CLIENTS)
    started = time.monotonic()
    assert gluster.connected_clients(["h1", "h2"], "grt-sample1", timeout=1) == []
    assert time.monotonic() - started < 10


def test_missing_gluster_binary_is_a_gluster_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GlusterError, match="not found"):
        gluster.connected_clients(["h1"], "v", timeout=5)


# --------------------------------------------------------------------------------------
# mountpoint naming


def test_mountpoint_for_a_pv_name(tmp_path: Path) -> None:
    assert gluster.mountpoint_for("/var/lib/recycler/", "pv-a.b-1") == "/var/lib/recycler/pv-a.b-1"
    assert gluster.mountpoint_for("/var/lib/../lib/recycler", "pv") == "/var/lib/recycler/pv"


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../etc",
        "a/b",
        "/abs",
        "pv/../../x",
        "PV-Upper",
        "-pv",
        "pv-",
        "a..b",
        "pv\x00",
        "pv name",
        "x" * 254,
    ],
)
def test_mountpoint_for_refuses_names_that_are_not_dns_subdomains(name: str) -> None:
    with pytest.raises(MountError):
        gluster.mountpoint_for("/var/lib/recycler", name)


# --------------------------------------------------------------------------------------
# verification


@pytest.fixture
def mounted_world(monkeypatch: pytest.MonkeyPatch):
    """verify_mounted against a made-up mountinfo entry and stat results."""
    world = {
        "entry": entry(mount_point="/var/lib/recycler/pv-a"),
        "stat": stat_result(dev=os.makedev(0, 51), ino=1),
        "parent": stat_result(dev=os.makedev(259, 2), ino=1234),
    }

    def fake_find(path: str) -> MountEntry | None:
        assert path == "/var/lib/recycler/pv-a"
        return world["entry"]  # type: ignore[return-value]

    def fake_lstat(path: str, timeout: float) -> os.stat_result:
        return world["parent" if path == "/var/lib/recycler" else "stat"]  # type: ignore[return-value]

    monkeypatch.setattr(gluster, "_find", fake_find)

    def fake_statvfs(path: str, timeout: float) -> os.statvfs_result:
        if world.get("dead"):
            raise MountError(f"{path}: Transport endpoint is not connected")
        return os.statvfs("/")

    monkeypatch.setattr(gluster, "_lstat", fake_lstat)
    monkeypatch.setattr(gluster, "_statvfs", fake_statvfs)
    monkeypatch.setattr(gluster, "_canonical", lambda p: p)
    return world


def test_verify_accepts_the_right_mount(mounted_world: dict[str, object]) -> None:
    found = gluster.verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.9", "10.0.0.5"], source())
    assert found is mounted_world["entry"]
    gluster.verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.5"], source(), read_only=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entry": None}, "nothing is mounted"),
        ({"entry": entry(fstype="nfs4")}, "not fuse.glusterfs"),
        ({"entry": entry(source="10.0.0.5:/vol_b")}, "expected 10.0.0.5:/vol_a"),
        ({"entry": entry(source="10.0.0.6:/vol_a")}, "expected"),
        ({"entry": entry(source="10.0.0.5:/vol_a/sub")}, "expected"),
        ({"entry": entry(source="10.0.0.5:vol_a")}, "expected"),
        ({"entry": entry(root="/sub")}, "not its root"),
        ({"entry": entry(mount_options=("ro",))}, "read-only"),
        ({"stat": stat_result(dev=os.makedev(259, 2), ino=1)}, "same device"),
        ({"stat": stat_result(dev=os.makedev(0, 52), ino=1)}, "mountinfo says 0:51"),
        ({"stat": stat_result(dev=os.makedev(0, 51), ino=77)}, "root inode"),
        ({"stat": stat_result(dev=os.makedev(0, 51), ino=1, mode=stat.S_IFLNK)}, "not a dir"),
        ({"dead": True}, "not connected"),
    ],
)
def test_verify_refuses(
    mounted_world: dict[str, object], change: dict[str, object], message: str
) -> None:
    mounted_world.update(change)
    with pytest.raises(MountError, match=message):
        gluster.verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.5"], source(), read_only=False)


def test_verify_read_only_wants_ro(mounted_world: dict[str, object]) -> None:
    with pytest.raises(MountError, match="read-write"):
        gluster.verify_mounted("/var/lib/recycler/pv-a", ["10.0.0.5"], source(), read_only=True)


def test_verify_on_a_plain_directory(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "keep.txt").write_text("data")
    with pytest.raises(MountError, match="nothing is mounted"):
        gluster.verify_mounted(str(plain), ["10.0.0.5"], source())
    assert (plain / "keep.txt").read_text() == "data"


def test_lstat_gives_up_on_a_hung_call(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(path: str) -> os.stat_result:
        release.wait(10)
        raise OSError(errno.EIO, "answered too late")

    monkeypatch.setattr(os, "lstat", hang)
    started = time.monotonic()
    try:
        with pytest.raises(MountError, match=r"did not answer within 0\.2s"):
            gluster._lstat("/x", 0.2)
        assert time.monotonic() - started < 2
    finally:
        release.set()


# --------------------------------------------------------------------------------------
# mount_volume with a fake `mount` (no root needed)


def test_mount_exiting_zero_without_mounting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    mountpoint = tmp_path / "root" / "pv-a"
    mountpoint.mkdir(parents=True)
    (mountpoint / "keep.txt").write_text("data")
    with pytest.raises(MountError, match="exited 0 but: nothing is mounted"):
        gluster.mount_volume(["h1", "h2", "h3"], source("vol_a/sub"), str(mountpoint), timeout=5)
    assert (mountpoint / "keep.txt").read_text() == "data"
    assert calls.read_text().split() == [
        "-t",
        "glusterfs",
        "-o",
        "backup-volfile-servers=h2:h3",
        "h1:/vol_a/sub",
        str(mountpoint),
    ]


def test_failed_mount_removes_the_directory_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mount(tmp_path, monkeypatch, 'echo "Mounting glusterfs on $6 failed." >&2\nexit 1\n')
    mountpoint = tmp_path / "root" / "pv-a"
    with pytest.raises(MountError, match=r"failed \(exit 1\): Mounting glusterfs on .* failed"):
        gluster.mount_volume(["h1"], source(), str(mountpoint), timeout=5, read_only=True)
    assert not mountpoint.exists()
    assert (tmp_path / "root").is_dir()


def test_mount_timeout_kills_the_whole_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    fake_mount(tmp_path, monkeypatch, f"sleep 60 &\necho $! > {pid_file}\nsleep 60\n")
    mountpoint = tmp_path / "root" / "pv-a"
    started = time.monotonic()
    with pytest.raises(MountError, match="timed out after 1s"):
        gluster.mount_volume(["h1"], source(), str(mountpoint), timeout=1)
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)
    assert not mountpoint.exists()


def test_mount_refuses_a_mountpoint_that_is_already_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    monkeypatch.setattr(gluster, "_find", lambda path: entry(mount_point=path))
    with pytest.raises(MountError, match="already a mountpoint"):
        gluster.mount_volume(["h1"], source(), str(tmp_path / "pv-a"), timeout=5)
    assert not calls.exists()


def test_mount_refuses_a_mountpoint_that_is_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "pv-a").symlink_to(target)
    with pytest.raises(MountError, match="not a directory"):
        gluster.mount_volume(["h1"], source(), str(tmp_path / "root" / "pv-a"), timeout=5)
    assert not calls.exists()
    assert target.is_dir()


def test_mount_with_client_check_refuses_a_volume_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_gluster: FakeGluster
) -> None:
    calls = fake_mount(tmp_path, monkeypatch, "exit 0\n")
    fake_gluster.answer("h1", "clients", out=ONE_BRICK_FUSE)
    fake_gluster.answer("h1", "client-list", out=ONE_BRICK_FUSE_LIST)
    with pytest.raises(VolumeInUse):
        gluster.mount_volume(
            ["h1"], source("grt-sample1"), str(tmp_path / "pv-a"), timeout=5, check_clients=True
        )
    assert not calls.exists()
    assert not (tmp_path / "pv-a").exists()


# --------------------------------------------------------------------------------------
# unmount and cleanup of things that are not mounted


def test_unmount_of_what_is_not_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    umount_log = tmp_path / "umount.log"
    write_script(tmp_path / "bin", "umount", f'echo "$*" >> {umount_log}\nexit 32\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("data")
    gluster.unmount(str(empty), timeout=5)
    gluster.unmount(str(full), timeout=5)
    gluster.unmount(str(tmp_path / "missing"), timeout=5)
    assert not empty.exists()
    assert (full / "keep.txt").read_text() == "data"
    assert not umount_log.exists()  # nothing was mounted: umount never ran


def test_cleanup_without_mounts_removes_only_empty_directories(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "mounts"
    (root / "empty-1").mkdir(parents=True)
    (root / "empty-2").mkdir()
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("data")
    (root / "file").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    cleaned = gluster.cleanup_stale_mounts(str(root))
    assert cleaned == [str(root / "empty-1"), str(root / "empty-2")]
    assert (root / "full" / "keep.txt").read_text() == "data"
    assert (root / "file").exists()
    assert (root / "link").is_symlink()
    assert outside.is_dir()
    assert f"left {root / 'full'} in place: the directory is not empty" in caplog.text


def test_cleanup_of_a_missing_root_and_of_slash(tmp_path: Path) -> None:
    assert gluster.cleanup_stale_mounts(str(tmp_path / "missing")) == []
    with pytest.raises(GlusterError):
        gluster.cleanup_stale_mounts("/")


def test_errors_are_one_line() -> None:
    assert str(GlusterError("a\nb\n\n c ")) == "a; b; c"
    assert str(VolumeInUse("x\ny")) == "x; y"


# --------------------------------------------------------------------------------------
# the mark of our own mounts


def mount_entry(mount_point: str, source: str, fstype: str = gluster.FSTYPE) -> MountEntry:
    return MountEntry(
        mount_id=100,
        parent_id=1,
        major=0,
        minor=99,
        root="/",
        mount_point=mount_point,
        mount_options=("rw",),
        optional_fields=(),
        fstype=fstype,
        source=source,
        super_options=(),
    )


def test_only_a_recorded_gluster_mount_directly_in_the_root_is_ours(tmp_path: Path) -> None:
    root = os.path.realpath(tmp_path / "mounts")
    ours = os.path.join(root, "pv-a")
    gluster._write_record(ours, "h1:/vol_a")
    assert gluster.is_own_mount(mount_entry(ours, "h1:/vol_a"), root)
    # another source, another file system, no record, deeper, or not named like a PV
    assert not gluster.is_own_mount(mount_entry(ours, "h1:/vol_b"), root)
    assert not gluster.is_own_mount(mount_entry(ours, "h1:/vol_a", "tmpfs"), root)
    assert not gluster.is_own_mount(mount_entry(os.path.join(root, "pv-b"), "h1:/vol_a"), root)
    assert not gluster.is_own_mount(mount_entry(os.path.join(ours, "x"), "h1:/vol_a"), root)
    odd = os.path.join(root, "Not_A_PV")
    gluster._write_record(odd, "h1:/vol_a")
    assert not gluster.is_own_mount(mount_entry(odd, "h1:/vol_a"), root)
    gluster._remove_record(ours)
    assert not gluster.is_own_mount(mount_entry(ours, "h1:/vol_a"), root)


def test_a_mount_record_is_written_before_mount_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen"
    record_dir = tmp_path / "root" / gluster.RECORD_DIR
    write_script(tmp_path / "bin", "mount", f"cat {record_dir}/pv-a > {seen}\nexit 32\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with pytest.raises(MountError):
        gluster.mount_volume(["h1"], source(), str(tmp_path / "root" / "pv-a"), timeout=5)
    assert '"source": "h1:/vol_a"' in seen.read_text()
    assert not record_dir.exists()  # dropped again with the failed mount
