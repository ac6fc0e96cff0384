"""bricks.py and the `volume status --xml` parser, on output captured from glusterfs 10.3."""

from __future__ import annotations

import dataclasses

import pytest

from recycler_job.gluster.bricks import ensure_same_runs, running
from recycler_job.gluster.errors import BrickOffline, GlusterError
from recycler_job.gluster.parse import BrickState, parse_volume_status
from tests.unit.gluster.samples import BRICKS, NODE, info_of, sample

VOLUME = "grt-cap-dist2"
B0, B1 = f"vm:{BRICKS}/{VOLUME}/b0", f"vm:{BRICKS}/{VOLUME}/b1"


def states(name: str) -> list[BrickState]:
    return parse_volume_status(sample(name), VOLUME)


def test_status_lists_each_brick_with_its_state_and_pid() -> None:
    assert states("dist2.status.xml") == [
        BrickState("vm", f"{BRICKS}/{VOLUME}/b0", NODE, True, 32110),
        BrickState("vm", f"{BRICKS}/{VOLUME}/b1", NODE, True, 32177),
    ]
    offline = states("dist2.offline.status.xml")
    assert [(b.online, b.pid) for b in offline] == [(False, -1), (True, 32177)]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (sample("notstarted.status.xml"), "is not started"),
        ("<cliOutput>", "unreadable"),
        (sample("dist2.status.xml").replace(VOLUME, "other"), "0 volumes"),
        (sample("dist2.status.xml").replace("<status>1</status>", "<status>?</status>"), "brick"),
    ],
)
def test_status_that_says_nothing_certain_is_an_error(text: str, match: str) -> None:
    with pytest.raises(GlusterError, match=match):
        parse_volume_status(text, VOLUME)


def test_every_brick_online_gives_their_pids() -> None:
    assert running(info_of("dist2"), states("dist2.status.xml")) == {B0: 32110, B1: 32177}


def test_an_offline_brick_is_refused() -> None:
    with pytest.raises(BrickOffline, match=f"offline: {B0};") as caught:
        running(info_of("dist2"), states("dist2.offline.status.xml"))
    assert B1 not in str(caught.value)


def test_a_brick_status_does_not_list_is_refused() -> None:
    # glusterd leaves out the bricks of a peer it is not connected to.
    with pytest.raises(BrickOffline, match=f"not listed .*{B1}"):
        running(info_of("dist2"), states("dist2.status.xml")[:1])


def test_a_brick_of_another_node_with_the_same_path_does_not_count() -> None:
    elsewhere = [
        dataclasses.replace(s, node_uuid="0" * 8 + NODE[8:]) for s in states("dist2.status.xml")
    ]
    with pytest.raises(BrickOffline, match="not listed"):
        running(info_of("dist2"), elsewhere)


def test_a_restarted_brick_is_refused() -> None:
    ensure_same_runs(VOLUME, {B0: 1, B1: 2}, {B0: 1, B1: 2})
    with pytest.raises(BrickOffline, match=f"restarted.*: {B1};"):
        ensure_same_runs(VOLUME, {B0: 1, B1: 2}, {B0: 1, B1: 3})
    with pytest.raises(BrickOffline, match=B1):
        ensure_same_runs(VOLUME, {B0: 1}, {B0: 1, B1: 3})
