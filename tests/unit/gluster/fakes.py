"""Fakes for the gluster modules without a gluster server: a `gluster` and a `mount` on PATH
(shell scripts), made-up mountinfo entries and stat results.
"""

from __future__ import annotations

import os
import stat
import textwrap
import time
from pathlib import Path

import pytest

from recycler_job.gluster.mountinfo import MountEntry
from recycler_job.sources.glusterfs import GlusterSource

# --------------------------------------------------------------------------------------
# helpers


def source(path: str = "vol_a") -> GlusterSource:
    return GlusterSource(
        endpoints="glusterfs-cluster", path=path, endpoints_namespace=None, read_only=False
    )


def write_script(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text("#!/bin/bash\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


class FakeGluster:
    """A `gluster` on PATH answering per (remote host, last argument) from files."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp_path / "fake-gluster"
        self.log = self.dir / "calls.log"
        write_script(
            self.dir / "bin",
            "gluster",
            f"""\
            echo "$*" >> {self.log}
            host=""
            for a in "$@"; do
                case "$a" in --remote-host=*) host="${{a#--remote-host=}}";; esac
            done
            f="{self.dir}/$host.${{@: -1}}"
            [ -f "$f.sleep" ] && sleep "$(cat "$f.sleep")"
            [ -f "$f.out" ] && cat "$f.out"
            [ -f "$f.err" ] && cat "$f.err" >&2
            if [ -f "$f.rc" ]; then exit "$(cat "$f.rc")"; fi
            echo "Connection failed. Please check if gluster daemon is operational."
            exit 1
            """,
        )
        monkeypatch.setenv("PATH", f"{self.dir / 'bin'}:{os.environ['PATH']}")

    def answer(
        self,
        host: str,
        what: str,
        *,
        out: str = "",
        err: str = "",
        rc: int = 0,
        sleep: float | None = None,
    ) -> None:
        base = self.dir / f"{host}.{what}"
        Path(f"{base}.out").write_text(out)
        Path(f"{base}.err").write_text(err)
        Path(f"{base}.rc").write_text(str(rc))
        if sleep is not None:
            Path(f"{base}.sleep").write_text(str(sleep))

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def fake_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """Put a fake `mount` first on PATH; returns the file its arguments are logged to."""
    log = tmp_path / "mount-calls.log"
    bin_dir = tmp_path / "fake-bin"
    write_script(bin_dir, "mount", f'echo "$*" >> {log}\n' + textwrap.dedent(body))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def entry(**changes: object) -> MountEntry:
    fields: dict[str, object] = {
        "mount_id": 300,
        "parent_id": 22,
        "major": 0,
        "minor": 51,
        "root": "/",
        "mount_point": "/var/lib/recycler/pv-a",
        "mount_options": ("rw", "relatime"),
        "optional_fields": (),
        "fstype": "fuse.glusterfs",
        "source": "10.0.0.5:/vol_a",
        "super_options": ("rw", "user_id=0"),
    }
    fields.update(changes)
    return MountEntry(**fields)  # type: ignore[arg-type]


def stat_result(dev: int, ino: int, mode: int = stat.S_IFDIR | 0o755) -> os.stat_result:
    return os.stat_result((mode, ino, dev, 2, 0, 0, 4096, 0, 0, 0))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether process `pid` is gone (or a zombie) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)
