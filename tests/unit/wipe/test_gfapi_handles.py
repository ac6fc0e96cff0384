"""The pure parts of the gfapi transport: Volume ID comparison, PV subdirs, client names."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recycler_job.wipe import gfapi
from recycler_job.wipe.engine import Node
from recycler_job.wipe.gfapi_handles import (
    _GfapiEngine,
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
        "from recycler_job.wipe.gfapi_handles import client_list_name\n"
        "print(client_list_name())\n"
    )
    script.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([str(script)], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "gfapi.gluster-recycle"


# ---- the scanner, on a volume held in memory ----------------------------------------------


class _MemoryHandle:
    def __init__(self, tree: dict[bytes, Any]) -> None:
        self.tree = tree

    def close(self) -> None:
        pass


def _kind(entry: object) -> gfapi.Stat:
    mode = 0o40755 if isinstance(entry, dict) else 0o100644
    return gfapi.Stat(mode=mode, size=1, uid=0, gid=0, ino=id(entry))


class _MemoryVolume:
    """What the engine uses of gfapi.Volume, on dicts; entries listed in name order.
    ``before_unlink`` runs before each unlink; ``looked_up`` records every lookup."""

    def __init__(self, before_unlink: Callable[[bytes], None]) -> None:
        self.before_unlink = before_unlink
        self.looked_up: list[bytes] = []

    def listdir(self, handle: _MemoryHandle) -> Iterator[tuple[bytes, gfapi.Stat]]:
        def entries() -> Iterator[tuple[bytes, gfapi.Stat]]:
            for name in sorted(handle.tree):
                if name in handle.tree:
                    yield name, _kind(handle.tree[name])

        return entries()

    def lookup(self, parent: _MemoryHandle, name: bytes) -> tuple[_MemoryHandle, gfapi.Stat]:
        self.looked_up.append(name)
        if name not in parent.tree:
            raise gfapi.GfapiError(errno.ENOENT, "lookup: No such file or directory")
        entry = parent.tree[name]
        return _MemoryHandle(entry), _kind(entry)

    def unlink(self, parent: _MemoryHandle, name: bytes) -> None:
        self.before_unlink(name)
        entry = parent.tree[name]
        if isinstance(entry, dict) and entry:
            raise gfapi.GfapiError(errno.ENOTEMPTY, "unlink: Directory not empty")
        del parent.tree[name]


def test_the_scanner_dispatches_a_subdirectory_as_soon_as_it_sees_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another worker opens the subdirectory while the scan of its parent goes on: the names
    listed after it are unlinked only once it has been looked up."""
    monkeypatch.setattr(gfapi, "as_root", lambda: None)
    tree: dict[bytes, Any] = {b"a%02d" % i: 1 for i in range(20)}
    tree.update({b"z%02d" % i: 1 for i in range(20)})
    tree[b"m"] = {b"inside": 1}
    late: list[bytes] = []
    opened = threading.Event()

    def before_unlink(name: bytes) -> None:
        if name.startswith(b"z") and not late and not opened.wait(2):
            late.append(name)

    vol = _MemoryVolume(before_unlink)
    original_lookup = vol.lookup

    def lookup(parent: _MemoryHandle, name: bytes) -> tuple[_MemoryHandle, gfapi.Stat]:
        found = original_lookup(parent, name)
        if name == b"m":
            opened.set()
        return found

    monkeypatch.setattr(vol, "lookup", lookup)
    engine = _GfapiEngine(vol, "mem:/", 2, None)  # type: ignore[arg-type]
    engine.run(Node(_MemoryHandle(tree), None, b""), "mem:/")  # type: ignore[arg-type]
    assert late == []
    assert tree == {}
    assert (engine.stats().files, engine.stats().dirs) == (41, 1)
