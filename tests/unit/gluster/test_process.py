"""process.py: a program's exit code and output come back as they are; a hung one is killed
with its whole process group."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recycler_job.gluster.errors import GlusterError
from recycler_job.gluster.process import run
from tests.unit.gluster.fakes import gone


def test_exit_code_and_output_come_back_without_raising() -> None:
    result = run(
        "sh", ["-c", "echo out; echo 'err one' >&2; echo 'err two' >&2; exit 3"], timeout=10
    )
    assert (result.exit_code, result.stdout, result.timed_out) == (3, "out\n", False)
    assert result.message() == "err one; err two"


def test_a_program_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    result = run("sh", ["-c", f"sleep 60 & echo $! > {pid_file}; sleep 60"], timeout=1)
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - started < 10
    assert gone(int(pid_file.read_text()))


def test_a_missing_program_is_a_gluster_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GlusterError, match="`gluster` not found on PATH"):
        run("gluster", ["volume", "list"], timeout=5)
