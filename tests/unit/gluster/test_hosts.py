"""hosts.py: host validation, mount source and options, pools compared by address."""

from __future__ import annotations

import pytest

from recycler_job.gluster.errors import GlusterError, VolumeIdentityError
from recycler_job.gluster.hosts import ensure_same_pool, expected_sources, mount_source_and_options
from tests.unit.gluster.fakes import source

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
    src, options = mount_source_and_options(hosts, source())
    assert src == "10.0.0.1:/vol_a"
    assert options == ([backup] if backup else [])
    if backup:
        # every host but the first, each exactly once
        assert backup.split("=", 1)[1].split(":") == hosts[1:]


def test_the_subdir_goes_into_the_source() -> None:
    src, options = mount_source_and_options(["a", "b", "c"], source("vol_a/sub/dir"))
    assert src == "a:/vol_a/sub/dir"
    assert options == ["backup-volfile-servers=b:c"]


def test_ipv6_backup_servers_are_bracketed_and_duplicates_dropped() -> None:
    src, options = mount_source_and_options(
        ["fd00::1", "fd00::2", "[fd00::3]", "fd00::2"], source()
    )
    assert src == "fd00::1:/vol_a"
    assert options == ["backup-volfile-servers=[fd00::2]:[fd00::3]"]


@pytest.mark.parametrize(
    "bad",
    ["", " ", "a,ro", "a b", "a/b", "a:b", "a=b", "-o", "a;b", "x" * 254, "a\\nb"],
)
def test_hosts_that_could_break_the_options_are_refused(bad: str) -> None:
    with pytest.raises(GlusterError, match="invalid gluster host"):
        mount_source_and_options(["10.0.0.1", bad], source())


def test_no_host_is_an_error() -> None:
    with pytest.raises(GlusterError, match="no gluster host"):
        mount_source_and_options([], source())


def test_expected_sources_name_every_host() -> None:
    assert expected_sources(["a", "b"], source("v/s")) == ["a:/v/s", "b:/v/s"]


# ---- two pools ----------------------------------------------------------------------------


def test_hosts_that_resolve_to_a_common_address_are_one_pool() -> None:
    ensure_same_pool(["localhost"], ["127.0.0.1"], what="Endpoints ns/e")
    ensure_same_pool(["127.0.0.1", "192.0.2.9"], ["192.0.2.9"], what="Endpoints ns/e")


def test_hosts_without_a_common_address_are_another_pool() -> None:
    with pytest.raises(VolumeIdentityError, match="another gluster pool"):
        ensure_same_pool(["127.0.0.1"], ["198.51.100.7"], what="Endpoints ns/e")


def test_unresolvable_hosts_cannot_be_compared() -> None:
    with pytest.raises(VolumeIdentityError, match="cannot resolve"):
        ensure_same_pool(["127.0.0.1"], ["nowhere.invalid"], what="Endpoints ns/e")
    with pytest.raises(VolumeIdentityError, match="cannot resolve"):
        ensure_same_pool(["nowhere.invalid"], ["127.0.0.1"], what="Endpoints ns/e")
