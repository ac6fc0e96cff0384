"""The command line: bad configuration exits 2 with one line, before touching anything; any other
error still ends with a report and a documented exit code."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recycler_job import report as report_module
from recycler_job.cli import main
from recycler_job.exit_codes import ExitCode
from recycler_job.report import VolumeResult
from recycler_job.runner import Runner


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


def test_version_is_the_installed_distributions_and_exits_0() -> None:
    """One source: the installed metadata, built from pyproject.toml (a freshly built wheel's
    --version is checked against pyproject.toml in tests/integration/test_wheel.py)."""
    from importlib import metadata

    proc = subprocess.run(
        [sys.executable, "-m", "recycler_job", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"gluster-recycler {metadata.version('gluster-recycler')}\n"


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EIO, "Input/output error", "/var/lib/gluster-recycler/mounts/pv-1"),
        RuntimeError("a bug"),
    ],
)
def test_an_unexpected_error_still_reports_and_exits_1(
    error: Exception,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Outside the API client (cleanup, a missing command, a bug): the summary, the report
    file and the termination message are still written, and the exit code is documented."""

    def fails(self: Runner) -> None:
        raise error

    monkeypatch.setattr(Runner, "_run", fails)
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    monkeypatch.setattr(report_module, "TERMINATION_LOG", str(termination_log))
    report_file = tmp_path / "report.json"
    code = main(["--report-file", str(report_file), "--lease-namespace", "ns"], {})
    assert code == ExitCode.VOLUME_FAILED
    report = json.loads(report_file.read_text())
    assert report["outcome"] == "error"
    assert report["exit_code"] == 1
    assert report["error"].startswith(f"unexpected {type(error).__name__}: ")
    message = termination_log.read_text()
    assert "stopped: unexpected" in message and str(error) in message
    assert "stopped: unexpected" in capsys.readouterr().out


def test_report_file_dash_makes_stdout_the_json_report_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--report-file -`: stdout is one JSON document (for `| jq`); the summary goes to stderr."""

    def held_back(self: Runner) -> None:
        self.report.volumes.append(VolumeResult("pv-1", "skip", "phase Released ...", "skipped"))

    monkeypatch.setattr(Runner, "_run", held_back)
    code = main(["--report-file", "-", "--lease-namespace", "ns"], {})
    assert code == ExitCode.OK
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["volumes"][0]["pv"] == "pv-1"
    assert report["volumes"][0]["reason"] == "phase Released ..."
    assert "1 skipped" in captured.err and "gluster-recycler: " in captured.err
    assert not (Path.cwd() / "-").exists()


def test_a_log_dir_that_cannot_be_created_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gluster CLI and libgfapi log there: checked before anything is touched."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--log-dir", str(blocker / "logs")], {}) == ExitCode.BAD_CONFIG
    err = capsys.readouterr().err
    assert "--log-dir" in err and len(err.strip().splitlines()) == 1
