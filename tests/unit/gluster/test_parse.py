"""parse.py on output captured from glusterfs 10.3."""

from __future__ import annotations

import pytest

from recycler_job.gluster.errors import GlusterError
from recycler_job.gluster.parse import (
    BrickClients,
    parse_client_list,
    parse_volume_clients,
    parse_volume_info,
)
from tests.unit.gluster.samples import (
    BRICKS,
    KINDS,
    NODE,
    ONE_BRICK_FUSE,
    ONE_BRICK_FUSE_LIST,
    ONE_BRICK_NO_CLIENTS,
    ONE_BRICK_NO_CLIENTS_LIST,
    QUOTA_BITROT_FUSE_LIST,
    REPLICA_BRICK_OFFLINE,
    REPLICA_SHD_LIST,
    REPLICA_SHD_TWO_FUSE,
    REPLICA_SHD_TWO_FUSE_LIST,
    info_of,
    sample,
)

# --------------------------------------------------------------------------------------
# parsing


def test_parse_one_brick_without_clients() -> None:
    bricks = parse_volume_clients(ONE_BRICK_NO_CLIENTS, "grt-sample1")
    assert bricks == [
        BrickClients(
            brick="vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample1/b0",
            online=True,
            connections=(),
        )
    ]
    assert parse_client_list(ONE_BRICK_NO_CLIENTS_LIST, "grt-sample1") == {}


def test_parse_one_fuse_client() -> None:
    bricks = parse_volume_clients(ONE_BRICK_FUSE, "grt-sample1")
    assert [b.connections for b in bricks] == [("127.0.0.1:49138",)]
    assert parse_client_list(ONE_BRICK_FUSE_LIST, "grt-sample1") == {"fuse": 1}


def test_parse_replica_with_self_heal_daemon_and_two_fuse_clients() -> None:
    bricks = parse_volume_clients(REPLICA_SHD_TWO_FUSE, "grt-sample2")
    assert [len(b.connections) for b in bricks] == [3, 3]
    assert bricks[1].connections[0] == "127.0.0.1:49139"
    kinds = parse_client_list(REPLICA_SHD_TWO_FUSE_LIST, "grt-sample2")
    assert kinds == {"glustershd": 1, "fuse": 2}


def test_parse_offline_brick() -> None:
    bricks = parse_volume_clients(REPLICA_BRICK_OFFLINE, "grt-exp2")
    assert [(b.brick, b.online, len(b.connections)) for b in bricks] == [
        ("vm:/tmp/grt-exp/r1", True, 3),
        ("vm:/tmp/grt-exp/r2", False, 0),
    ]


def test_parse_daemons_missing_from_the_total() -> None:
    kinds = parse_client_list(QUOTA_BITROT_FUSE_LIST, "grt-exp1")
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
        parse_volume_clients(text, "grt-sample1")


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
        parse_client_list(text, "grt-sample2")


# ---- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "bricks"), KINDS.items())
def test_volume_info_gives_id_bricks_and_node_uuids(kind: str, bricks: int) -> None:
    info = info_of(kind)
    assert info.name == f"grt-cap-{kind}"
    assert len(info.volume_id) == 36
    assert [b.name for b in info.bricks] == [
        f"vm:{BRICKS}/grt-cap-{kind}/b{i}" for i in range(bricks)
    ]
    assert {b.node_uuid for b in info.bricks} == {NODE}
    assert info.trash is False


def test_volume_info_of_a_missing_volume_is_an_error() -> None:
    # The CLI exits 0 and says so only in opRet/opErrstr.
    with pytest.raises(GlusterError, match="Volume does not exist"):
        parse_volume_info(sample("missing.info.xml"), "grt-nonexistent")


def test_volume_info_must_describe_the_volume_asked_for() -> None:
    with pytest.raises(GlusterError, match="described 0 volumes"):
        parse_volume_info(sample("one.info.xml"), "grt-cap-other")


@pytest.mark.parametrize("text", ["", "not xml", "<cliOutput><opRet>0</opRet></cliOutput>"])
def test_volume_info_garbage_is_an_error(text: str) -> None:
    with pytest.raises(GlusterError):
        parse_volume_info(text, "grt-cap-one")


def test_trash_option_is_read_from_volume_info() -> None:
    info = parse_volume_info(sample("trash.info.xml"), "grt-cap-trash")
    assert info.options["features.trash"] == "on"
    assert info.trash is True
