"""cli.py: hosts asked in turn, failures that are final, hangs given up on."""

from __future__ import annotations

import time

import pytest

from recycler_job.gluster.errors import GlusterError, VolumeInUse
from tests.sandbox.gluster import connected_clients
from tests.unit.gluster.fakes import FakeGluster
from tests.unit.gluster.samples import ONE_BRICK_FUSE, ONE_BRICK_FUSE_LIST, ONE_BRICK_NO_CLIENTS


def test_hosts_are_tried_in_order_until_one_answers(fake_gluster: FakeGluster) -> None:
    # h1 has no answer configured: the fake prints gluster's "Connection failed" and exits 1
    fake_gluster.answer("h2", "clients", out=ONE_BRICK_FUSE)
    fake_gluster.answer("h2", "client-list", out=ONE_BRICK_FUSE_LIST)
    fake_gluster.answer("h3", "clients", out=ONE_BRICK_NO_CLIENTS)
    assert connected_clients(["h1", "h2", "h3"], "grt-sample1", timeout=5) == ["127.0.0.1"]
    hosts = [c.split()[1] for c in fake_gluster.calls()]
    assert hosts == ["--remote-host=h1", "--remote-host=h2", "--remote-host=h1", "--remote-host=h2"]


def test_no_host_answering_is_an_error(fake_gluster: FakeGluster) -> None:
    with pytest.raises(GlusterError, match="no gluster host answered") as caught:
        connected_clients(["h1", "h2"], "grt-sample1", timeout=5)
    assert "h1: Connection failed" in str(caught.value)
    assert "h2: Connection failed" in str(caught.value)


def test_unknown_volume_is_final_and_an_error(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", err="Volume grt-nope does not exist\n", rc=1)
    fake_gluster.answer("h2", "clients", out=ONE_BRICK_NO_CLIENTS)
    with pytest.raises(GlusterError, match="grt-nope does not exist") as caught:
        connected_clients(["h1", "h2"], "grt-nope", timeout=5)
    assert not isinstance(caught.value, VolumeInUse)
    assert len(fake_gluster.calls()) == 1


def test_a_hanging_host_is_given_up_on(fake_gluster: FakeGluster) -> None:
    fake_gluster.answer("h1", "clients", out=ONE_BRICK_NO_CLIENTS, sleep=30)
    fake_gluster.answer("h2", "clients", out=ONE_BRICK_NO_CLIENTS)
    started = time.monotonic()
    assert connected_clients(["h1", "h2"], "grt-sample1", timeout=1) == []
    assert time.monotonic() - started < 10


def test_missing_gluster_binary_is_a_gluster_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GlusterError, match="not found"):
        connected_clients(["h1"], "v", timeout=5)
