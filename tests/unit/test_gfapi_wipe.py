"""The pure parts of the gfapi transport: Volume ID comparison, PV subdirs, client names."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recycler_job import gfapi
from recycler_job.gfapi_wipe import (
    split_subdir,
    volume_ids_match,
)


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


def test_client_list_name_of_a_script_is_its_file_name_not_its_interpreter(
    tmp_path: Path,
) -> None:
    """The image's entrypoint is a script: argv[0] is python, the process name is the script's
    (cut to 15 bytes), and that is what gluster lists."""
    script = tmp_path / "gluster-recycler"
    script.write_text(
        f"#!{sys.executable}\n"
        "from recycler_job.gfapi_wipe import client_list_name\n"
        "print(client_list_name())\n"
    )
    script.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([str(script)], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "gfapi.gluster-recycle"
