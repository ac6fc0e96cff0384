"""Releases: one version source, the release workflow linted by actionlint and its tag check run.

pyproject.toml's `version` is the one source; every other place that must name it (the
manifests' label and image tag, the OpenShift template and build, the changelog) is checked
against it here. The workflow is linted with actionlint (pinned in scripts/setup.sh, built
into the cache), which also runs shellcheck on its shell steps; the step that compares the
pushed tag with the version is run as it would run on the CI's runner.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sandbox.requirements import missing

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
RELEASED = "ghcr.io/gluster-recycler/gluster-recycler"
LABEL = "app.kubernetes.io/version"


def actionlint() -> str:
    """The actionlint that scripts/setup.sh builds (its pinned version, in the cache)."""
    pin = re.search(
        r"^actionlint_version=(v[0-9.]+)$", (REPO / "scripts/setup.sh").read_text(), re.M
    )
    assert pin, "scripts/setup.sh pins no actionlint version"
    cache = Path(
        os.environ.get("GLUSTER_RECYCLER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gluster-recycler"
    )
    binary = cache / "tools" / f"actionlint-{pin.group(1)}" / "actionlint"
    if not binary.exists():
        missing(f"actionlint not built ({binary}; run scripts/setup.sh)")
    return str(binary)


def lint(*paths: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [actionlint(), "-format", "{{json .}}", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=REPO,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert result.returncode in (0, 1), result.stderr
    assert (result.returncode == 1) == bool(findings), result.stdout + result.stderr
    return findings


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yaml")) + sorted(WORKFLOWS.glob("*.yml"))
    assert RELEASE in workflows
    findings = lint(*workflows)
    assert findings == [], "\n".join(
        f"{f['filepath']}:{f['line']}: {f['message']} [{f['kind']}]" for f in findings
    )


def test_actionlint_does_flag_a_bad_workflow(tmp_path: Path) -> None:
    """The lint above can fail: a wrong expression, an unknown input and a shell mistake."""
    bad = tmp_path / ".github" / "workflows" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with: {no-such-input: 1}\n"
        "      - run: echo ${{ github.no_such_context }} $UNQUOTED_VAR\n"
    )
    kinds = {f["kind"] for f in lint(bad)}
    assert {"action", "expression"} <= kinds, kinds


def workflow() -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(RELEASE.read_text())
    return doc


def test_release_runs_on_version_tags_and_pushes_by_tag_to_ghcr() -> None:
    doc = workflow()
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert doc[True] == {"push": {"tags": ["v*"]}}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    build = next(s for s in job["steps"] if s.get("id") == "build")
    assert build["uses"].startswith("docker/build-push-action@")
    assert build["with"]["file"] == "Containerfile" and build["with"]["push"] is True
    tags = build["with"]["tags"].splitlines()
    assert tags == [
        "${{ steps.version.outputs.image }}:${{ steps.version.outputs.version }}",
        "${{ steps.version.outputs.image }}:${{ github.ref_name }}",
    ]
    assert "VERSION=${{ steps.version.outputs.version }}" in build["with"]["build-args"]
    summary = next(s for s in job["steps"] if s.get("name") == "Summary")
    assert summary["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"


def run_tag_check(tmp_path: Path, tag: str) -> tuple[int, dict[str, str], str]:
    """The workflow's version step, run by bash in the repository as the runner runs it."""
    (job,) = workflow()["jobs"].values()
    step = next(s for s in job["steps"] if s.get("id") == "version")
    assert step["env"] == {"TAG": "${{ github.ref_name }}"}
    output = tmp_path / "github-output"
    output.write_text("")
    env = {
        "PATH": os.environ["PATH"],
        "TAG": tag,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_REPOSITORY_OWNER": "Gluster-Recycler",
    }
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result.returncode, outputs, result.stdout + result.stderr


def test_the_tag_of_pyprojects_version_is_released(tmp_path: Path) -> None:
    code, outputs, log = run_tag_check(tmp_path, f"v{VERSION}")
    assert code == 0, log
    assert outputs == {"version": VERSION, "image": RELEASED}


@pytest.mark.parametrize("tag", ["v0.0.1", VERSION, f"v{VERSION}.1", f"v{VERSION}-rc1", "vX"])
def test_any_other_tag_fails_before_the_build(tmp_path: Path, tag: str) -> None:
    code, outputs, log = run_tag_check(tmp_path, tag)
    assert code != 0 and outputs == {}, log
    assert f"is not v{VERSION}" in log


def test_every_copy_of_the_version_is_pyprojects() -> None:
    """The places that must name the version name pyproject's."""
    base = yaml.safe_load((REPO / "manifests/kustomization.yaml").read_text())
    assert base["commonLabels"][LABEL] == VERSION
    for overlay in ("openshift", "openshift-build"):
        doc = yaml.safe_load((REPO / "overlays" / overlay / "kustomization.yaml").read_text())
        assert doc["commonLabels"] == base["commonLabels"], overlay
    cronjob = yaml.safe_load((REPO / "manifests/cronjob.yaml").read_text())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"{RELEASED}:{VERSION}"
    template = yaml.safe_load((REPO / "overlays/openshift/template.yaml").read_text())
    image = next(p for p in template["parameters"] if p["name"] == "IMAGE")
    assert image["value"] == f"{RELEASED}:{VERSION}"
    assert {
        o["metadata"]["labels"][LABEL] for o in template["objects"] if "labels" in o["metadata"]
    } == {VERSION}
    build = yaml.safe_load((REPO / "overlays/openshift-build/buildconfig.yaml").read_text())
    assert build["spec"]["source"]["git"]["ref"] == f"v{VERSION}"
    args = {a["name"]: a["value"] for a in build["spec"]["strategy"]["dockerStrategy"]["buildArgs"]}
    assert args["VERSION"] == VERSION
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert releases and releases[0] == VERSION, releases
    assert f"[{VERSION}]: " in changelog
    # No version literal in the package: --version reads the installed metadata.
    for source in (REPO / "recycler_job").rglob("*.py"):
        assert not re.search(r"__version__\s*=\s*[\"']", source.read_text()), source
