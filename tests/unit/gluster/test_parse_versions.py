"""The parsers and the checks they feed, on every server version's captured answers.

tests/unit/data/gluster/<version>/ holds what glusterd 9.2, 10.3 and 11.1 answered to this
machine's 10.3 CLI (tests/sandbox/gluster_capture.py; see the data README). Then the same
answers changed as another server version might change them: each must be refused with a
reason, never read as "no clients" or as a proof of identity.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recycler_job.gluster.clients import ClientReport
from recycler_job.gluster.errors import GlusterError
from recycler_job.gluster.identity import check_volume_identity, parse_pathinfo
from recycler_job.gluster.parse import (
    UUID,
    VolumeInfo,
    parse_client_list,
    parse_volume_clients,
    parse_volume_info,
)
from recycler_job.sources.glusterfs import GlusterSource

DATA = Path(__file__).parent.parent / "data" / "gluster"
VERSIONS = ("9.2", "10.3", "11.1")


def answer(version: str, name: str) -> str:
    return (DATA / version / name).read_bytes().decode()


def info(version: str, kind: str) -> VolumeInfo:
    return parse_volume_info(answer(version, f"{kind}.info.xml"), f"grt-cap-{kind}")


def report(version: str, clients: str, client_list: str, kind: str = "one") -> ClientReport:
    volume = f"grt-cap-{kind}"
    bricks = parse_volume_clients(answer(version, f"{kind}.clients.{clients}.txt"), volume)
    kinds = parse_client_list(answer(version, f"{kind}.client-list.{client_list}.txt"), volume)
    return ClientReport(volume=volume, bricks=tuple(bricks), kinds=kinds)


def source(subdir: str = "") -> GlusterSource:
    path = f"grt-cap-one/{subdir}" if subdir else "grt-cap-one"
    return GlusterSource(
        endpoints="glusterfs-cluster", path=path, endpoints_namespace=None, read_only=False
    )


def test_every_version_has_its_answers() -> None:
    names = {p.name for p in (DATA / "10.3").iterdir()}
    for version in VERSIONS:
        assert {p.name for p in (DATA / version).iterdir()} == names


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------- as answered


@pytest.mark.parametrize(("kind", "bricks"), [("one", 1), ("rep2", 2), ("trash", 1)])
def test_volume_info(version: str, kind: str, bricks: int) -> None:
    parsed = info(version, kind)
    assert UUID.fullmatch(parsed.volume_id)
    assert len(parsed.bricks) == bricks
    assert all(UUID.fullmatch(b.node_uuid) for b in parsed.bricks)
    assert parsed.trash is (kind == "trash")


def test_volume_info_of_a_missing_volume(version: str) -> None:
    with pytest.raises(GlusterError, match="Volume does not exist"):
        parse_volume_info(answer(version, "missing.info.xml"), "grt-cap-missing")


def test_clients_without_any(version: str) -> None:
    found = report(version, "none", "none")
    assert [b.connections for b in found.bricks] == [()]
    assert found.kinds == {}
    assert not found.in_use


def test_clients_with_a_fuse_mount(version: str) -> None:
    found = report(version, "fuse", "fuse")
    assert [len(b.connections) for b in found.bricks] == [1]
    assert found.foreign_kinds == {"fuse": 1}
    assert found.in_use


def test_the_self_heal_daemon_alone_is_no_client(version: str) -> None:
    found = report(version, "shd", "shd", kind="rep2")
    assert [len(b.connections) for b in found.bricks] == [1, 1]
    assert found.kinds == {"glustershd": 1}
    assert not found.in_use


@pytest.mark.parametrize("subdir", ["", "pv/data"])
def test_pathinfo_proves_the_volume(version: str, subdir: str) -> None:
    pathinfo = answer(version, f"one{'.sub' if subdir else ''}.pathinfo.txt")
    entries = parse_pathinfo(pathinfo)
    parsed = info(version, "one")
    check_volume_identity(entries, parsed, source(subdir), [parsed.bricks[0].node_uuid])


# ------------------------------------------------------- answered differently: refused


def _fuse_list(version: str) -> str:
    return answer(version, "one.client-list.fuse.txt")


@pytest.mark.parametrize(
    "change",
    [
        lambda t: re.sub(r"(fuse)\s+1\n", r"\1\n", t),  # a row without its count
        lambda t: re.sub(r"(fuse\s+)1\n", r"\1one\n", t),  # a count that is no number
        lambda t: re.sub(r"(fuse\s+1)\n", r"\1 10.213.1.1:49150\n", t),  # another column
        lambda t: t.split("\ntotal", 1)[0],  # no total line: cut short
        lambda t: t.replace("Client connections for volume", "Clients of volume"),
    ],
)
def test_a_changed_client_list_is_refused(version: str, change: object) -> None:
    text = change(_fuse_list(version))  # type: ignore[operator]
    with pytest.raises(GlusterError):
        parse_client_list(text, "grt-cap-one")


def test_a_client_list_without_the_fuse_client_still_counts_it(version: str) -> None:
    """A server whose client-list leaves a client out (or names none): the connection the
    brick lists is counted as `unidentified`; the volume is in use, not free."""
    found = report(version, "fuse", "none")
    assert found.foreign_kinds == {"unidentified": 1}
    assert found.in_use


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("OpVersion", "OpVersion    ClientName").replace(
            "100000\n", "100000        fuse\n"
        ),  # a new column
        lambda t: re.sub(r"Clients connected : \d+\n", "", t),  # no client count
        lambda t: t.replace("Clients connected : 1", "Clients connected : one"),
        lambda t: t.replace("Brick : ", "Brick: "),  # another separator
    ],
)
def test_changed_clients_are_refused(version: str, change: object) -> None:
    text = change(answer(version, "one.clients.fuse.txt"))  # type: ignore[operator]
    with pytest.raises(GlusterError):
        parse_volume_clients(text, "grt-cap-one")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            lambda t: re.sub(r'<hostUuid>[^<]*</hostUuid>| uuid="[^"]*"', "", t),
            "no node uuid",
        ),
        (lambda t: re.sub(r"<id>[^<]*</id>", "<id></id>", t), "no Volume ID"),
        (lambda t: re.sub(r"<name>[^<]*:/[^<]*</name>", "<name>b0</name>", t), "unexpected brick"),
        (lambda t: re.sub(r"<bricks>.*</bricks>", "<bricks/>", t, flags=re.S), "no brick"),
        (lambda t: t.replace("<opRet>0</opRet>", ""), "opRet"),
    ],
)
def test_changed_volume_info_is_refused(version: str, change: object, why: str) -> None:
    text = change(answer(version, "one.info.xml"))  # type: ignore[operator]
    with pytest.raises(GlusterError, match=why):
        parse_volume_info(text, "grt-cap-one")


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("<POSIX(", "<STORAGE("),  # another translator's name
        lambda t: re.sub(r"\):[^:]+:", "):", t),  # no host
    ],
)
def test_changed_pathinfo_is_refused(version: str, change: object) -> None:
    text = change(answer(version, "one.pathinfo.txt"))  # type: ignore[operator]
    with pytest.raises(GlusterError):
        entries = parse_pathinfo(text)
        check_volume_identity(entries, info(version, "one"), source())
