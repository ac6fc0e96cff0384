"""`pip install .` gives a working tool: the wheel, installed alone in a fresh virtualenv.

The wheel's declared dependencies are all that gets installed (`--no-index` from a wheelhouse
of requirements.txt's pins, downloaded once per pin set, as setup.sh downloads them): a module
recycler_job imports but pyproject.toml does not declare is missing there, and the run that
imports it fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.integration.scenario import REPO, Scenario
from tests.sandbox.pushgateway import Pushgateway

CACHE = Path.home() / ".cache" / "gluster-recycler"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def _wheelhouse() -> Path:
    """requirements.txt's pinned wheels, downloaded once per pin set."""
    pins = (REPO / "requirements.txt").read_bytes()
    house = CACHE / f"wheelhouse-{hashlib.sha256(pins).hexdigest()[:12]}"
    if not (house / ".complete").exists():
        subprocess.run(
            [*PIP, "download", "--only-binary=:all:", "-r", "requirements.txt", "-d", str(house)],
            cwd=REPO,
            check=True,
        )
        (house / ".complete").touch()
    return house


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel of this checkout and its declared dependencies."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "bench", "testenv"
        ),
    )
    subprocess.run([*PIP, "wheel", "--no-deps", "-w", str(tmp / "dist"), str(source)], check=True)
    (wheel,) = (tmp / "dist").glob("gluster_recycler-*.whl")
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run(
        [
            str(env / "bin" / "pip"),
            "install",
            "--disable-pip-version-check",
            "-q",
            "--no-index",
            "--find-links",
            str(_wheelhouse()),
            str(wheel),
        ],
        check=True,
    )
    return env


def _tool(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, away from the checkout (nothing imported from it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / "gluster-recycler"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=240,
        check=False,
    )


def test_installed_wheel_prints_help_and_the_pyproject_version(venv: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import recycler_job; print(recycler_job.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(venv)), where.stdout
    helped = _tool(venv, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--pushgateway" in helped.stdout and "exit codes:" in helped.stdout
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    shown = _tool(venv, "--version", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"gluster-recycler {version}\n"


def test_installed_wheel_dry_run_pushes_metrics(
    venv: Path, scenario: Scenario, pushgateway: Pushgateway
) -> None:
    """A dry run against the sandbox with --pushgateway (prometheus-client) and a Go-style
    duration (durationpy): both come from the wheel's declared dependencies only."""
    pv = scenario.released_volume("wheel", {"f": "x"})
    args = scenario.command("--dry-run", "--pushgateway", pushgateway.url)[3:]
    args[args.index("--min-age") + 1] = "0h0m0s"
    result = _tool(venv, *args, cwd=scenario.tmp)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "1 would-recycle" in result.stdout, result.stdout
    series = pushgateway.series("gluster_recycler_volumes")
    assert any(
        dict(key).get("outcome") == "would-recycle" and value == 1 for key, value in series.items()
    ), series
    assert scenario.listing(pv) == ["f"]
