"""The pushed metric set: what an alert rule reads."""

from __future__ import annotations

import base64
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from recycler_job.metrics import build_registry, push
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


def test_a_failed_push_never_logs_the_gateway_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with caplog.at_level(logging.DEBUG, logger="recycler_job.metrics"):
        assert not push(f"http://metrics:pushpass99@127.0.0.1:{port}", _report(1), namespace="n")
    messages = [record.getMessage() for record in caplog.records]
    assert any("could not push metrics to http://<redacted>@127.0.0.1" in m for m in messages)
    assert not any("pushpass99" in m for m in messages), messages


def test_report_and_termination_message_mask_an_url_password(tmp_path: Path) -> None:
    report = _report(1)
    report.volumes[1].error = "mount failed: http://admin:pushpass99@host/x refused"
    report.write_json(str(tmp_path / "report.json"))
    text = (tmp_path / "report.json").read_text()
    assert "http://<redacted>@host/x" in text
    assert "pushpass99" not in text
    assert "pushpass99" not in report.termination_message()


def test_credentials_in_the_url_are_sent_as_basic_auth() -> None:
    """A real HTTP server sees the Authorization header, and the URL without user:password."""
    seen: list[tuple[str, str, str]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.headers["Host"], self.path, self.headers["Authorization"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    server.timeout = 15  # handle_request gives up if the push never arrives
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        assert push(f"http://metrics:pass%40word@127.0.0.1:{port}", _report(0), namespace="n")
    finally:
        thread.join(10)
        server.server_close()
    assert seen, "the push never reached the gateway"
    (host, path, auth) = seen[0]
    assert host == f"127.0.0.1:{port}"
    assert path == "/metrics/job/gluster-recycler/namespace/n"
    assert base64.b64decode(auth.split()[1]) == b"metrics:pass@word"
