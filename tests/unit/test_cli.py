"""The command line: bad configuration exits 2 with one line, before touching anything."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from recycler_job.cli import main
from recycler_job.exit_codes import ExitCode


@pytest.mark.parametrize(
    "argv",
    [["--parallel", "0"], ["--mode", "wipe-all"], ["--reset-mode", "999"], ["--bogus"]],
)
def test_bad_config_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, {}) == ExitCode.BAD_CONFIG
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("gluster-recycler: error: ")
    assert captured.err.count("\n") == 1


def test_bad_environment_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], {"DRY_RUN": "maybe"}) == ExitCode.BAD_CONFIG
    assert "DRY_RUN" in capsys.readouterr().err


def test_help_is_fast_and_lists_exit_codes() -> None:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "recycler_job", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0
    assert "--gluster-hosts" in proc.stdout and "GLUSTER_HOSTS" in proc.stdout
    for code in ("0", "1", "2", "3", "4"):
        assert f"{code} " in proc.stdout
    assert elapsed < 5  # generous: the figure itself is measured in bench/
