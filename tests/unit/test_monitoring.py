"""The PrometheusRule of manifests/components/monitoring, checked and unit-tested by promtool.

The rule groups are the PrometheusRule's `spec`, written to a plain rules file: `promtool
check rules` validates them (PromQL, templates, fields), `promtool test rules` runs
tests/unit/prometheusrule_test.yaml, in which every alert has input series that make it
fire and series that must not. promtool comes from Debian's `prometheus` package
(scripts/setup.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from recycler_job import metrics
from recycler_job.report import OUTCOMES
from tests.sandbox.requirements import missing

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "manifests" / "components" / "monitoring"
RULE = COMPONENT / "prometheusrule.yaml"
RULE_TESTS = Path(__file__).with_name("prometheusrule_test.yaml")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing("promtool not installed (Debian package prometheus; scripts/setup.sh)")
    assert found is not None
    return found


def write_rules(directory: Path, text: str | None = None) -> Path:
    """The PrometheusRule's spec as a rules file, with the unit tests beside it."""
    rule = yaml.safe_load(RULE.read_text() if text is None else text)
    rules = directory / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    shutil.copy(RULE_TESTS, directory / RULE_TESTS.name)
    return rules


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, check=False, timeout=120
    )


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULE.read_text())["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_check_rules_accepts_the_rules(tmp_path: Path) -> None:
    result = run("check", "rules", str(write_rules(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout, result.stdout


def test_promtool_check_rules_rejects_a_broken_expression(tmp_path: Path) -> None:
    """The check above can fail."""
    broken = RULE.read_text().replace("> 3 * 3600", "> 3 * ", 1)
    result = run("check", "rules", str(write_rules(tmp_path, broken)))
    assert result.returncode != 0, result.stdout


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    write_rules(tmp_path)
    result = run("test", "rules", str(tmp_path / RULE_TESTS.name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("a suspended CronJob alerts", "unless on (namespace)", "or on (namespace)"),
        ("exit 4 (SIGTERM) counts as failing", "<= 3\n", "<= 4\n"),
        ("a failed Job alerts for ever", "< 3600)", "< 360000)"),
        ("busy volumes count as failed", 'outcome="failed"', 'outcome=~".+"'),
    ],
)
def test_promtool_unit_tests_catch_a_weakened_rule(
    tmp_path: Path, what: str, old: str, new: str
) -> None:
    """The unit tests can fail: each change to a rule makes them fail."""
    text = RULE.read_text()
    assert old in text, what
    write_rules(tmp_path, text.replace(old, new))
    result = run("test", "rules", str(tmp_path / RULE_TESTS.name))
    assert result.returncode != 0, f"{what}: the unit tests still pass"


def test_every_alert_is_unit_tested_and_documented() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    names = {rule["alert"] for rule in alerts()}
    assert names == tested
    readme = (REPO / "README.md").read_text()
    deploy = (REPO / "docs" / "deploy.md").read_text()
    for name in names:
        assert name in readme and name in deploy, name
    assert "honor_labels: true" in readme


def test_pushgateway_rules_use_the_metrics_the_program_pushes() -> None:
    """Names, job label and outcomes as recycler_job/metrics.py pushes them."""
    pushed = {f"{metrics.PREFIX}_{n}" for n in ("exit_code", "last_success_timestamp_seconds")}
    pushed.add(f"{metrics.PREFIX}_volumes")
    text = RULE.read_text()
    used = set(re.findall(r"\b(gluster_recycler_\w+)\{", text))
    assert used == pushed, used
    assert f'job="{metrics.JOB}"' in text
    for outcome in re.findall(r'outcome="([a-z-]+)"', text):
        assert outcome in OUTCOMES, outcome


def test_component_renders_the_rule_into_the_namespace(tmp_path: Path) -> None:
    """The component's own files: a Component holding the PrometheusRule (the rendering with
    kubectl is in tests/integration/test_manifests.py)."""
    component = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["resources"] == [RULE.name]
    rule = yaml.safe_load(RULE.read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["namespace"] == "gluster-recycler"
