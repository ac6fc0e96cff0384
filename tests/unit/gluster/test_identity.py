"""identity.py: the proof of which volume is mounted, on output captured from glusterfs 10.3."""

from __future__ import annotations

import pytest

from recycler_job.gluster.errors import GlusterError, TrashInTheWay, VolumeIdentityError
from recycler_job.gluster.identity import check_trash, check_volume_identity, parse_pathinfo
from recycler_job.gluster.parse import VolumeInfo, parse_volume_info
from tests.unit.gluster.samples import (
    BRICKS,
    KINDS,
    NODE,
    SUBDIR_SAMPLES,
    captured_source,
    info_of,
    pathinfo_of,
    sample,
)


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
    (entry,) = parse_pathinfo("<POSIX(/b/1):fd00::7:/b/1/sub>\x00")
    assert (entry.host, entry.brick, entry.served) == ("fd00::7", "/b/1", "/b/1/sub")


@pytest.mark.parametrize("text", ["", "\x00", "(<REPLICATE:x-replicate-0>)", "<POSIX(/b):/b/>"])
def test_pathinfo_without_a_brick_is_an_error(text: str) -> None:
    with pytest.raises(GlusterError):
        parse_pathinfo(text)


# ---- the identity rule --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_real_mount_of_the_volume_is_accepted(kind: str) -> None:
    check_volume_identity(pathinfo_of(kind), info_of(kind), captured_source(kind), [NODE])


@pytest.mark.parametrize("kind", SUBDIR_SAMPLES)
def test_the_real_subdirectory_mount_is_accepted(kind: str) -> None:
    entries = pathinfo_of(kind, sub=True)
    check_volume_identity(entries, info_of(kind), captured_source(kind, "pv/data"), [NODE])


@pytest.mark.parametrize(
    ("mounted", "described"),
    [("dist2", "one"), ("one", "dist2"), ("rep2", "dist2"), ("mixed", "rep2")],
)
def test_bricks_of_another_volume_are_refused(mounted: str, described: str) -> None:
    """What another pool (or a volume file from another server) would look like."""
    info = info_of(described)
    wanted = captured_source(described)
    with pytest.raises(VolumeIdentityError, match="not a brick of volume"):
        check_volume_identity(pathinfo_of(mounted), info, wanted, [NODE])


def test_same_brick_path_on_another_host_is_refused() -> None:
    """A second pool built the same way: same volume name and brick paths, other servers."""
    text = sample("rep2.pathinfo.txt").replace(":vm:", ":gluster-b.invalid:")
    entries = parse_pathinfo(text)
    assert {e.host for e in entries} == {"gluster-b.invalid"}
    with pytest.raises(VolumeIdentityError, match=r"gluster-b\.invalid"):
        check_volume_identity(entries, info_of("rep2"), captured_source("rep2"), [])


def test_node_uuid_in_pathinfo_is_accepted_as_the_host() -> None:
    """With `storage.node-uuid-pathinfo on` bricks report glusterd's node uuid, not a name."""
    entries = parse_pathinfo(sample("rep2.pathinfo.txt").replace(":vm:", f":{NODE}:"))
    check_volume_identity(entries, info_of("rep2"), captured_source("rep2"), [NODE])


def test_node_uuids_of_other_servers_are_refused() -> None:
    stranger = "0badc0de-0000-4000-8000-000000000000"
    with pytest.raises(VolumeIdentityError, match=stranger):
        check_volume_identity(
            pathinfo_of("rep2"), info_of("rep2"), captured_source("rep2"), [NODE, stranger]
        )


def test_root_mount_is_refused_for_a_subdirectory_pv() -> None:
    with pytest.raises(VolumeIdentityError, match="serves"):
        check_volume_identity(
            pathinfo_of("dist2"), info_of("dist2"), captured_source("dist2", "pv/data"), [NODE]
        )


def test_subdirectory_mount_is_refused_for_a_whole_volume_pv() -> None:
    with pytest.raises(VolumeIdentityError, match="serves"):
        check_volume_identity(
            pathinfo_of("one", sub=True), info_of("one"), captured_source("one"), [NODE]
        )


def test_volume_info_of_another_name_is_refused() -> None:
    with pytest.raises(VolumeIdentityError, match="not grt-cap-dist2"):
        check_volume_identity(pathinfo_of("one"), info_of("one"), captured_source("dist2"), [])


# ---- trash ------------------------------------------------------------------------------


def test_subdirectory_pv_on_a_volume_with_trash_is_refused() -> None:
    info = parse_volume_info(sample("trash.info.xml"), "grt-cap-trash")
    with pytest.raises(TrashInTheWay, match=r"features\.trash on"):
        check_trash(info, captured_source("trash", "pv/data"))


def test_whole_volume_pv_with_trash_is_wiped_as_before() -> None:
    info = parse_volume_info(sample("trash.info.xml"), "grt-cap-trash")
    check_trash(info, captured_source("trash"))  # wipe.py empties .trashcan itself


@pytest.mark.parametrize(
    ("value", "on"), [("off", False), ("OFF", False), ("on", True), ("1", True)]
)
def test_trash_values(value: str, on: bool) -> None:
    info = VolumeInfo("v", NODE, (), {"features.trash": value})
    assert info.trash is on
    if on:
        with pytest.raises(TrashInTheWay):
            check_trash(info, captured_source("v", "a"))
    else:
        check_trash(info, captured_source("v", "a"))


def test_renamed_trash_is_named_in_the_refusal() -> None:
    info = VolumeInfo("v", NODE, (), {"features.trash": "on", "features.trash-dir": ".Trash"})
    with pytest.raises(TrashInTheWay, match=r"v/\.Trash, out of this mount's reach"):
        check_trash(info, captured_source("v", "a"))


@pytest.mark.parametrize("trash", ["on", "off"])
def test_pv_in_the_trash_is_refused_by_the_fuse_check(trash: str) -> None:
    info = VolumeInfo("v", NODE, (), {"features.trash": trash, "features.trash-dir": ".Trash"})
    for subdir in (".Trash/internal_op", ".trashcan/other"):
        with pytest.raises(TrashInTheWay, match="lies in gluster's trash directory"):
            check_trash(info, captured_source("v", subdir))
