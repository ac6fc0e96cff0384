"""The report: summary line, JSON file, termination message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recycler_job.report import TERMINATION_LIMIT, RunReport, VolumeResult, timed


def report_with(*outcomes: str) -> RunReport:
    report = RunReport(identity="pod-1", dry_run=False, mode="release", pvs_seen=len(outcomes))
    for i, outcome in enumerate(outcomes):
        report.volumes.append(
            VolumeResult(
                pv=f"pv{i}",
                decision="recycle",
                reason="r",
                outcome=outcome,
                files=10,
                bytes=100,
                error="boom" if outcome == "failed" else "",
            )
        )
    return report


def test_summary_counts_every_outcome_and_totals() -> None:
    line = report_with("recycled", "recycled", "failed", "skipped").summary_line()
    assert line.startswith("gluster-recycler: 4 PVs seen; 2 recycled, 1 failed, 1 skipped;")
    assert "40 files (400 bytes) removed" in line


def test_summary_for_skipped_and_unavailable_runs() -> None:
    skipped = RunReport(
        identity="a", dry_run=False, mode="release", lease="held-by:pod-9", outcome="skipped"
    )
    assert skipped.summary_line() == "gluster-recycler: skipped: lease held by pod-9"
    down = RunReport(
        identity="a",
        dry_run=False,
        mode="release",
        outcome="cluster-unavailable",
        error="connection refused",
    )
    assert "cannot use the cluster: connection refused" in down.summary_line()


def test_dry_run_is_visible_in_the_summary() -> None:
    report = report_with("would-recycle")
    report.dry_run = True
    assert "dry run: " in report.summary_line()
    assert "1 would-recycle" in report.summary_line()


def test_json_file_has_per_volume_details(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "report.json"
    report_with("recycled", "failed").write_json(str(path))
    data = json.loads(path.read_text())
    assert data["counts"] == {"recycled": 1, "failed": 1}
    assert data["volumes"][1]["error"] == "boom"
    assert data["summary"].startswith("gluster-recycler:")
    assert not list(path.parent.glob(".*.tmp"))


def test_termination_message_lists_failures_within_the_kubelet_limit(tmp_path: Path) -> None:
    report = report_with(*(["failed"] * 500))
    message = report.termination_message()
    assert len(message.encode()) <= TERMINATION_LIMIT
    assert "pv/pv0: boom" in message
    target = tmp_path / "termination-log"
    assert not report.write_termination_log(str(target))  # only written when it exists
    target.write_text("")
    assert report.write_termination_log(str(target))
    assert target.read_text() == message


def test_timed_records_each_step_and_names_the_innermost_failure() -> None:
    result = VolumeResult(pv="pv-a", decision="recycle", reason="", outcome="failed")

    def inner() -> None:
        raise OSError("boom")

    assert timed(result, "mount", lambda x: x + 1, 1) == 2
    with pytest.raises(OSError):
        timed(result, "wipe", timed, result, "unlink", inner)
    assert set(result.durations) == {"mount", "wipe", "unlink"}
    assert result.step == "unlink"


def test_busy_is_counted_in_the_summary_but_not_as_a_failure() -> None:
    report = report_with("recycled", "busy")
    assert "1 recycled, 1 busy, 0 failed" in report.summary_line()
    assert report.failed_lines() == []
