"""gluster.py's proof of which volume is mounted, on output captured from glusterfs 10.3.

The samples in tests/unit/data/gluster (see its README) come from real 1-brick, 2-brick
distribute, replica-2 and 2x2 distributed-replicate volumes, mounted at the root and at the
subdirectory `pv/data`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recycler_job import gluster
from recycler_job.gluster import (
    GlusterError,
    PathinfoBrick,
    TrashInTheWay,
    VolumeIdentityError,
    VolumeInfo,
)
from recycler_job.sources.glusterfs import GlusterSource

DATA = Path(__file__).parent / "data" / "gluster"
NODE = "d4d8481f-4b2d-473f-a599-afb38b978930"  # the glusterd the samples came from
BRICKS = "/tmp/grt-gluster-hinyabai/bricks"
KINDS = {"one": 1, "dist2": 2, "rep2": 2, "mixed": 4}  # sample -> bricks
SUBDIR_SAMPLES = ("one", "dist2", "rep2")  # mounted at pv/data too


def sample(name: str) -> str:
    return (DATA / name).read_bytes().decode()


def info_of(kind: str) -> VolumeInfo:
    return gluster.parse_volume_info(sample(f"{kind}.info.xml"), f"grt-cap-{kind}")


def pathinfo_of(kind: str, *, sub: bool = False) -> list[PathinfoBrick]:
    return gluster.parse_pathinfo(sample(f"{kind}{'.sub' if sub else ''}.pathinfo.txt"))


def source(kind: str, subdir: str = "") -> GlusterSource:
    path = f"grt-cap-{kind}/{subdir}" if subdir else f"grt-cap-{kind}"
    return GlusterSource(
        endpoints="glusterfs-cluster", path=path, endpoints_namespace=None, read_only=False
    )


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
        gluster.parse_volume_info(sample("missing.info.xml"), "grt-nonexistent")


def test_volume_info_must_describe_the_volume_asked_for() -> None:
    with pytest.raises(GlusterError, match="described 0 volumes"):
        gluster.parse_volume_info(sample("one.info.xml"), "grt-cap-other")


@pytest.mark.parametrize("text", ["", "not xml", "<cliOutput><opRet>0</opRet></cliOutput>"])
def test_volume_info_garbage_is_an_error(text: str) -> None:
    with pytest.raises(GlusterError):
        gluster.parse_volume_info(text, "grt-cap-one")


def test_trash_option_is_read_from_volume_info() -> None:
    info = gluster.parse_volume_info(sample("trash.info.xml"), "grt-cap-trash")
    assert info.options["features.trash"] == "on"
    assert info.trash is True


@pytest.mark.parametrize(("kind", "bricks"), KINDS.items())
def test_pathinfo_names_every_brick_serving_the_root(kind: str, bricks: int) -> None:
    entries = pathinfo_of(kind)
    assert sorted(e.brick for e in entries) == [
        f"{BRICKS}/grt-cap-{kind}/b{i}" for i in range(bricks)
    ]
    assert {e.host for e in entries} == {"vm"}
    assert all(e.served == e.brick + "/" for e in entries)


@pytest.mark.parametrize("kind", SUBDIR_SAMPLES)
def test_pathinfo_of_a_subdirectory_mount_names_the_subdirectory(kind: str) -> None:
    assert all(e.served == e.brick + "/pv/data" for e in pathinfo_of(kind, sub=True))


def test_pathinfo_host_may_be_an_ipv6_address() -> None:
    (entry,) = gluster.parse_pathinfo("<POSIX(/b/1):fd00::7:/b/1/sub>\x00")
    assert (entry.host, entry.brick, entry.served) == ("fd00::7", "/b/1", "/b/1/sub")


@pytest.mark.parametrize("text", ["", "\x00", "(<REPLICATE:x-replicate-0>)", "<POSIX(/b):/b/>"])
def test_pathinfo_without_a_brick_is_an_error(text: str) -> None:
    with pytest.raises(GlusterError):
        gluster.parse_pathinfo(text)


# ---- the identity rule --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_real_mount_of_the_volume_is_accepted(kind: str) -> None:
    gluster.check_volume_identity(pathinfo_of(kind), info_of(kind), source(kind), [NODE])


@pytest.mark.parametrize("kind", SUBDIR_SAMPLES)
def test_the_real_subdirectory_mount_is_accepted(kind: str) -> None:
    entries = pathinfo_of(kind, sub=True)
    gluster.check_volume_identity(entries, info_of(kind), source(kind, "pv/data"), [NODE])


@pytest.mark.parametrize(
    ("mounted", "described"),
    [("dist2", "one"), ("one", "dist2"), ("rep2", "dist2"), ("mixed", "rep2")],
)
def test_bricks_of_another_volume_are_refused(mounted: str, described: str) -> None:
    """What another pool (or a volume file from another server) would look like."""
    info = info_of(described)
    wanted = source(described)
    with pytest.raises(VolumeIdentityError, match="not a brick of volume"):
        gluster.check_volume_identity(pathinfo_of(mounted), info, wanted, [NODE])


def test_same_brick_path_on_another_host_is_refused() -> None:
    """A second pool built the same way: same volume name and brick paths, other servers."""
    text = sample("rep2.pathinfo.txt").replace(":vm:", ":gluster-b.invalid:")
    entries = gluster.parse_pathinfo(text)
    assert {e.host for e in entries} == {"gluster-b.invalid"}
    with pytest.raises(VolumeIdentityError, match=r"gluster-b\.invalid"):
        gluster.check_volume_identity(entries, info_of("rep2"), source("rep2"), [])


def test_node_uuid_in_pathinfo_is_accepted_as_the_host() -> None:
    """With `storage.node-uuid-pathinfo on` bricks report glusterd's node uuid, not a name."""
    entries = gluster.parse_pathinfo(sample("rep2.pathinfo.txt").replace(":vm:", f":{NODE}:"))
    gluster.check_volume_identity(entries, info_of("rep2"), source("rep2"), [NODE])


def test_node_uuids_of_other_servers_are_refused() -> None:
    stranger = "0badc0de-0000-4000-8000-000000000000"
    with pytest.raises(VolumeIdentityError, match=stranger):
        gluster.check_volume_identity(
            pathinfo_of("rep2"), info_of("rep2"), source("rep2"), [NODE, stranger]
        )


def test_root_mount_is_refused_for_a_subdirectory_pv() -> None:
    with pytest.raises(VolumeIdentityError, match="serves"):
        gluster.check_volume_identity(
            pathinfo_of("dist2"), info_of("dist2"), source("dist2", "pv/data"), [NODE]
        )


def test_subdirectory_mount_is_refused_for_a_whole_volume_pv() -> None:
    with pytest.raises(VolumeIdentityError, match="serves"):
        gluster.check_volume_identity(
            pathinfo_of("one", sub=True), info_of("one"), source("one"), [NODE]
        )


def test_volume_info_of_another_name_is_refused() -> None:
    with pytest.raises(VolumeIdentityError, match="not grt-cap-dist2"):
        gluster.check_volume_identity(pathinfo_of("one"), info_of("one"), source("dist2"), [])


# ---- trash ------------------------------------------------------------------------------


def test_subdirectory_pv_on_a_volume_with_trash_is_refused() -> None:
    info = gluster.parse_volume_info(sample("trash.info.xml"), "grt-cap-trash")
    with pytest.raises(TrashInTheWay, match=r"features\.trash on"):
        gluster.check_trash(info, source("trash", "pv/data"))


def test_whole_volume_pv_with_trash_is_wiped_as_before() -> None:
    info = gluster.parse_volume_info(sample("trash.info.xml"), "grt-cap-trash")
    gluster.check_trash(info, source("trash"))  # wipe.py empties .trashcan itself


@pytest.mark.parametrize(
    ("value", "on"), [("off", False), ("OFF", False), ("on", True), ("1", True)]
)
def test_trash_values(value: str, on: bool) -> None:
    info = VolumeInfo("v", NODE, (), {"features.trash": value})
    assert info.trash is on
    if on:
        with pytest.raises(TrashInTheWay):
            gluster.check_trash(info, source("v", "a"))
    else:
        gluster.check_trash(info, source("v", "a"))


# ---- two pools ----------------------------------------------------------------------------


def test_hosts_that_resolve_to_a_common_address_are_one_pool() -> None:
    gluster.ensure_same_pool(["localhost"], ["127.0.0.1"], what="Endpoints ns/e")
    gluster.ensure_same_pool(["127.0.0.1", "192.0.2.9"], ["192.0.2.9"], what="Endpoints ns/e")


def test_hosts_without_a_common_address_are_another_pool() -> None:
    with pytest.raises(VolumeIdentityError, match="another gluster pool"):
        gluster.ensure_same_pool(["127.0.0.1"], ["198.51.100.7"], what="Endpoints ns/e")


def test_unresolvable_hosts_cannot_be_compared() -> None:
    with pytest.raises(VolumeIdentityError, match="cannot resolve"):
        gluster.ensure_same_pool(["127.0.0.1"], ["nowhere.invalid"], what="Endpoints ns/e")
    with pytest.raises(VolumeIdentityError, match="cannot resolve"):
        gluster.ensure_same_pool(["nowhere.invalid"], ["127.0.0.1"], what="Endpoints ns/e")
