"""clients.py: the client check against a fake `gluster` answering captured output."""

from __future__ import annotations

import pytest

from recycler_job.gluster.clients import ClientReport, ensure_not_in_use
from recycler_job.gluster.errors import GlusterError, VolumeInUse
from recycler_job.gluster.parse import BrickClients
from tests.sandbox.gluster import connected_clients
from tests.unit.gluster.fakes import FakeGluster
from tests.unit.gluster.samples import (
    ONE_BRICK_NO_CLIENTS,
    REPLICA_BRICK_OFFLINE,
    REPLICA_SHD,
    REPLICA_SHD_LIST,
    REPLICA_SHD_TWO_FUSE,
    REPLICA_SHD_TWO_FUSE_LIST,
)

# --------------------------------------------------------------------------------------
# the client check, against a fake gluster


def test_self_heal_daemon_alone_is_not_a_client(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=REPLICA_SHD)
    fake_gluster.answer("h1", "client-list", out=REPLICA_SHD_LIST)
    assert connected_clients(["h1"], "grt-sample2", timeout=5) == []
    ensure_not_in_use(["h1"], "grt-sample2", timeout=5)
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
    assert connected_clients(["h1"], "grt-sample2", timeout=5) == ["127.0.0.1"]
    with pytest.raises(VolumeInUse, match="2 fuse client") as caught:
        ensure_not_in_use(["h1"], "grt-sample2", timeout=5)
    assert "\n" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_a_volume_without_connections_skips_the_client_list(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=ONE_BRICK_NO_CLIENTS)
    assert connected_clients(["h1"], "grt-sample1", timeout=5) == []
    assert len(fake_gluster.calls()) == 1


def test_connections_gluster_cannot_name_count_as_clients(fake_gluster: FakeGluster) -> None:
    # Three connections on each brick but only one named (self-heal) client process.
    fake_gluster.answer("h1", "clients", out=REPLICA_SHD_TWO_FUSE)
    fake_gluster.answer("h1", "client-list", out=REPLICA_SHD_LIST)
    with pytest.raises(VolumeInUse, match="2 unidentified"):
        ensure_not_in_use(["h1"], "grt-sample2", timeout=5)


def test_daemons_only_client_kinds() -> None:
    report = ClientReport(
        volume="v",
        bricks=(BrickClients("h:/b", True, ("1.2.3.4:1", "1.2.3.5:2", "[fd00::9]:3")),),
        kinds={"quotad": 1, "bitd": 1, "scrub": 1},
    )
    assert not report.in_use
    assert report.addresses == ["1.2.3.4", "1.2.3.5", "fd00::9"]
    assert ClientReport("v", report.bricks, {"gfapi": 1, "quotad": 2}).in_use
    assert ClientReport("v", report.bricks, {"something-new": 1, "quotad": 2}).in_use


def test_offline_brick_is_an_error_not_a_pass(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=REPLICA_BRICK_OFFLINE)
    with pytest.raises(GlusterError, match="offline") as caught:
        connected_clients(["h1"], "grt-exp2", timeout=5)
    assert not isinstance(caught.value, VolumeInUse)
