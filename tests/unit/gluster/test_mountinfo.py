"""mountinfo parsing: fields, octal escapes, optional fields, stacking."""

from __future__ import annotations

import os

import pytest

from recycler_job.gluster import mountinfo
from recycler_job.gluster.mountinfo import MountinfoError

# Lines as a Linux kernel writes them (optional fields such as "shared:1") and as the
# gVisor sandbox these tests were written in writes them (no optional fields).
LINUX = (
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n"
    "25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "310 22 0:51 / /var/lib/recycler/pv-a rw,nosuid,nodev,relatime shared:170 master:3"
    " - fuse.glusterfs 10.0.0.5:/vol_a rw,user_id=0,group_id=0,default_permissions,"
    "allow_other,max_read=131072\n"
    "311 22 0:52 / /mnt/with\\040space\\011tab\\012newline\\134backslash rw shared:171"
    " - tmpfs my\\040source rw,size=1024k\n"
    "312 22 0:53 /sub/dir /srv/bind rw,relatime - ext4 /dev/sdb1 rw\n"
)

GVISOR = (
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
    "42 27 0:39 / /tmp/grt-exp/m1 rw,relatime - fuse.glusterfs vm:/grt-exp1"
    " rw,user_id=0,group_id=0,default_permissions,allow_other,max_read=131072\n"
    "45 27 0:42 / /tmp/grt-exp/m3 rw,relatime - fuse.glusterfs 127.0.0.1:/grt-exp2/sub/dir"
    " rw,user_id=0,group_id=0,default_permissions,allow_other,max_read=131072\n"
    "46 27 0:43 / /tmp/grt-exp/m6 ro,relatime - fuse.glusterfs vm:/grt-exp2/sub"
    " ro,user_id=0,group_id=0,default_permissions,allow_other,max_read=131072\n"
)

STACKED = (
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "47 27 0:44 / /tmp/grt-exp/c\\134d rw,relatime - tmpfs x rw,size=1024k,mode=700\n"
    "48 47 0:45 / /tmp/grt-exp/c\\134d rw,relatime - tmpfs y rw\n"
    "49 27 0:46 / /tmp/grt-exp/other rw,relatime - tmpfs z rw\n"
)


def test_fields_of_a_linux_gluster_line() -> None:
    entry = mountinfo.parse(LINUX)[2]
    assert entry.mount_id == 310
    assert entry.parent_id == 22
    assert (entry.major, entry.minor) == (0, 51)
    assert entry.device == os.makedev(0, 51)
    assert entry.root == "/"
    assert entry.mount_point == "/var/lib/recycler/pv-a"
    assert entry.mount_options == ("rw", "nosuid", "nodev", "relatime")
    assert entry.optional_fields == ("shared:170", "master:3")
    assert entry.fstype == "fuse.glusterfs"
    assert entry.source == "10.0.0.5:/vol_a"
    assert entry.super_options[:2] == ("rw", "user_id=0")
    assert "max_read=131072" in entry.super_options
    assert not entry.read_only


def test_octal_escapes_are_undone() -> None:
    entry = mountinfo.parse(LINUX)[3]
    assert entry.mount_point == "/mnt/with space\ttab\nnewline\\backslash"
    assert entry.source == "my source"
    assert entry.optional_fields == ("shared:171",)


def test_bind_mount_root_is_kept() -> None:
    entry = mountinfo.parse(LINUX)[4]
    assert entry.root == "/sub/dir"
    assert entry.optional_fields == ()


def test_gvisor_lines_without_optional_fields() -> None:
    entries = mountinfo.parse(GVISOR)
    assert [e.source for e in entries[1:]] == [
        "vm:/grt-exp1",
        "127.0.0.1:/grt-exp2/sub/dir",
        "vm:/grt-exp2/sub",
    ]
    assert all(e.optional_fields == () for e in entries)
    assert entries[3].read_only
    assert not entries[2].read_only


def test_bytes_that_are_not_utf8_survive() -> None:
    line = b"50 27 0:47 / /mnt/caf\xe9 rw - tmpfs t rw\n"
    entry = mountinfo.parse(line)[0]
    assert os.fsencode(entry.mount_point) == b"/mnt/caf\xe9"


def test_missing_super_options_are_tolerated() -> None:
    entry = mountinfo.parse_line("50 27 0:47 / /mnt rw - tmpfs t")
    assert entry.super_options == ()
    assert entry.source == "t"


@pytest.mark.parametrize(
    "line",
    [
        "50 27 0:47 / /mnt rw tmpfs t rw",  # no separator
        "50 27 0:47 / /mnt rw -",  # nothing after the separator
        "x 27 0:47 / /mnt rw - tmpfs t rw",  # mount id not a number
        "50 27 047 / /mnt rw - tmpfs t rw",  # no major:minor
        "50 27 0:47 / /mnt rw - tmpfs t rw extra",  # a field too many
    ],
)
def test_malformed_lines_raise(line: str) -> None:
    with pytest.raises(MountinfoError):
        mountinfo.parse_line(line)


def test_find_mount_last_entry_wins(tmp_path) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(STACKED)
    entry = mountinfo.find_mount("/tmp/grt-exp/c\\d", path=str(path))
    assert entry is not None
    assert entry.mount_id == 48
    assert entry.source == "y"


def test_find_mount_exact_path_only(tmp_path) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(STACKED)
    assert mountinfo.find_mount("/tmp/grt-exp", path=str(path)) is None
    assert mountinfo.find_mount("/tmp/grt-exp/oth", path=str(path)) is None
    found = mountinfo.find_mount("/tmp/grt-exp/other/", path=str(path))
    assert found is not None
    assert found.mount_id == 49


def test_mounts_below_deepest_and_latest_first(tmp_path) -> None:
    path = tmp_path / "mountinfo"
    path.write_text(
        STACKED
        + "50 49 0:47 / /tmp/grt-exp/other/deeper rw - tmpfs d rw\n"
        + "51 27 0:48 / /tmp/grt-expX rw - tmpfs e rw\n"
    )
    below = mountinfo.mounts_below("/tmp/grt-exp", path=str(path))
    assert [e.mount_id for e in below] == [50, 49, 48, 47]
    assert mountinfo.mounts_below("/tmp/grt-exp/other/deeper", path=str(path)) == []


def test_reads_the_real_file() -> None:
    entries = mountinfo.read()
    assert any(e.mount_point == "/" for e in entries)
