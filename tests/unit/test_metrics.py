"""The pushed metric set: what an alert rule reads."""

from __future__ import annotations

from prometheus_client import generate_latest

from recycler_job.metrics import build_registry
from recycler_job.report import RunReport, VolumeResult


def _report(exit_code: int) -> RunReport:
    report = RunReport(identity="x", dry_run=False, mode="release", exit_code=exit_code)
    report.seconds = 2.5
    report.volumes = [
        VolumeResult("a", "recycle", "", "recycled", files=3, bytes=10),
        VolumeResult("b", "recycle", "", "failed", error="boom"),
    ]
    return report


def test_success_carries_last_success_and_every_outcome() -> None:
    text = generate_latest(build_registry(_report(0), now=100.0)).decode()
    assert "gluster_recycler_last_success_timestamp_seconds 100.0" in text
    assert "gluster_recycler_last_run_timestamp_seconds 100.0" in text
    assert "gluster_recycler_wiped_files 3.0" in text
    assert "gluster_recycler_wiped_bytes 10.0" in text
    assert "gluster_recycler_duration_seconds 2.5" in text
    assert 'gluster_recycler_volumes{outcome="recycled"} 1.0' in text
    assert 'gluster_recycler_volumes{outcome="failed"} 1.0' in text
    assert 'gluster_recycler_volumes{outcome="waiting"} 0.0' in text


def test_failure_has_no_last_success() -> None:
    text = generate_latest(build_registry(_report(1), now=100.0)).decode()
    assert "last_success" not in text
    assert "gluster_recycler_exit_code 1.0" in text


def test_busy_volumes_have_their_own_count() -> None:
    """A volume in use is not a failure: counted apart, so an alert can tell the two apart."""
    report = _report(0)
    report.volumes.append(VolumeResult("c", "recycle", "", "busy"))
    text = generate_latest(build_registry(report, now=100.0)).decode()
    assert 'gluster_recycler_volumes{outcome="busy"} 1.0' in text
    assert 'gluster_recycler_volumes{outcome="failed"} 1.0' in text
