"""The pure parts of the gfapi transport: Volume ID parsing and comparison, PV subdirs, names."""

from __future__ import annotations

import errno
import os

import pytest

from recycler_job import gfapi
from recycler_job.gfapi_wipe import (
    client_list_name,
    split_subdir,
    volume_id_from_info_xml,
    volume_ids_match,
)

# Trimmed from `gluster volume info VOL --xml` (glusterfs 10.3).
INFO = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <opRet>0</opRet>
  <opErrno>0</opErrno>
  <opErrstr/>
  <volInfo>
    <volumes>
      <volume>
        <name>grt-8731a9e7be14</name>
        <id>3484dcf2-f847-4d18-b367-8b8839f1dfcf</id>
        <status>1</status>
        <statusStr>Started</statusStr>
        <bricks>
          <brick uuid="d4d8481f-4b2d-473f-a599-afb38b978930">vm:/b0<name>vm:/b0</name></brick>
        </bricks>
        <options>
          <option><name>nfs.disable</name><value>on</value></option>
        </options>
      </volume>
      <count>1</count>
    </volumes>
  </volInfo>
</cliOutput>
"""

# The CLI exits 0 with this when the volume does not exist.
MISSING = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <opRet>-1</opRet>
  <opErrno>30806</opErrno>
  <opErrstr>Volume does not exist</opErrstr>
  <volInfo><volumes><count>0</count></volumes></volInfo>
</cliOutput>
"""


def test_volume_id_from_info_xml() -> None:
    assert volume_id_from_info_xml(INFO, "grt-8731a9e7be14") == (
        "3484dcf2-f847-4d18-b367-8b8839f1dfcf"
    )


@pytest.mark.parametrize(
    ("text", "volume", "reason"),
    [
        (MISSING, "grt-8731a9e7be14", "Volume does not exist"),
        (INFO, "other", "not in the output"),
        (INFO.replace("3484dcf2-f847", "zzzz"), "grt-8731a9e7be14", "bad Volume ID"),
        (
            INFO.replace("<id>3484dcf2-f847-4d18-b367-8b8839f1dfcf</id>", ""),
            "grt-8731a9e7be14",
            "bad Volume ID",
        ),
        ("Connection failed. Please check if gluster daemon is operational.", "v", "not XML"),
    ],
)
def test_volume_id_from_info_xml_refuses(text: str, volume: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        volume_id_from_info_xml(text, volume)


def test_volume_ids_match() -> None:
    a = "3484dcf2-f847-4d18-b367-8b8839f1dfcf"
    assert volume_ids_match(a, a)
    assert volume_ids_match(a, a.upper())
    assert not volume_ids_match(a, "3484dcf2-f847-4d18-b367-8b8839f1dfce")
    assert not volume_ids_match(a, "")
    assert not volume_ids_match("", "")


def test_split_subdir() -> None:
    assert split_subdir(None) == []
    assert split_subdir("") == []
    assert split_subdir("/") == []
    assert split_subdir("pv/data") == [b"pv", b"data"]
    assert split_subdir("/pv//data/") == [b"pv", b"data"]
    assert split_subdir(os.fsdecode(b"caf\xe9")) == [b"caf\xe9"]


@pytest.mark.parametrize("subdir", ["..", "pv/../other", "./pv", "pv/."])
def test_split_subdir_refuses_dot_components(subdir: str) -> None:
    with pytest.raises(ValueError, match="component"):
        split_subdir(subdir)


@pytest.mark.parametrize("name", [b"", b".", b"..", b"a/b", b"/", b"a\0b"])
def test_entry_names_are_never_paths(name: bytes) -> None:
    """Lookups and unlinks take one entry name: nothing for libgfapi to resolve further."""
    with pytest.raises(gfapi.GfapiError) as info:
        gfapi._check_name(name)
    assert info.value.errno == errno.EINVAL


def test_plain_names_pass() -> None:
    for name in (b"a", b".hidden", b"-rf", b"new\nline", b"\xff\xfe", b"..."):
        gfapi._check_name(name)


def test_stat_kinds() -> None:
    d = gfapi.Stat(mode=0o40755, size=4096, uid=0, gid=0, ino=1)
    link = gfapi.Stat(mode=0o120777, size=1, uid=0, gid=0, ino=2)
    ghost = gfapi.Stat(mode=0, size=0, uid=0, gid=0, ino=0)
    assert d.is_dir and not d.is_symlink and d.known
    assert link.is_symlink and not link.is_dir
    assert not ghost.known


def test_client_list_name_is_gfapi_and_argv0_basename() -> None:
    with open("/proc/self/cmdline", "rb") as f:
        argv0 = f.read().split(b"\0")[0]
    assert client_list_name() == "gfapi." + os.path.basename(os.fsdecode(argv0))
