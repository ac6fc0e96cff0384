"""A real Prometheus Pushgateway on a free loopback port, for the metrics tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.sandbox.objects import wait_for
from tests.sandbox.requirements import missing

BINARY = "prometheus-pushgateway"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pushgateway:
    url: str

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Samples of metric `name`: sorted (label, value) pairs -> value."""
        out: dict[tuple[tuple[str, str], ...], float] = {}
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name:
                    out[tuple(sorted(sample.labels.items()))] = sample.value
        return out


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[Pushgateway]:
    """A fresh gateway per test: no group pushed by another test can be read back."""
    binary = shutil.which(BINARY) or (
        f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").exists() else None
    )
    if binary is None:
        missing(f"{BINARY} not installed (run `make setup`)")
        raise AssertionError("unreachable")
    url = f"http://127.0.0.1:{free_port()}"
    log = (tmp_path / "pushgateway.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--web.listen-address={url.removeprefix('http://')}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: proc.poll() is not None or _ready(url), what="the pushgateway", timeout=30)
        assert proc.poll() is None, (tmp_path / "pushgateway.log").read_text()
        yield Pushgateway(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
