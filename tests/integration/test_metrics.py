"""Pushgateway metrics after real passes, read back from a real gateway's /metrics."""

from __future__ import annotations

from tests.integration.scenario import Scenario
from tests.sandbox.pushgateway import Pushgateway, free_port

# The gateway adds instance="" to a group whose key does not name one.
GROUP = {"instance": "", "job": "gluster-recycler", "namespace": "default"}


def _value(gw: Pushgateway, name: str, **labels: str) -> float:
    key = tuple(sorted({**GROUP, **labels}.items()))
    return gw.series(f"gluster_recycler_{name}")[key]


def test_success_then_failure_keeps_the_last_success_time(
    scenario: Scenario, pushgateway: Pushgateway
) -> None:
    good = scenario.released_volume("pgood", {"a": "xx", "b": "yyy"})
    first = scenario.run("--pushgateway", pushgateway.url)
    assert first.code == 0, first.stderr
    assert first.volume(good)["outcome"] == "recycled"
    success = _value(pushgateway, "last_success_timestamp_seconds")
    assert _value(pushgateway, "last_run_timestamp_seconds") == success
    assert _value(pushgateway, "exit_code") == 0
    assert _value(pushgateway, "wiped_files") == first.volume(good)["files"] == 2
    assert _value(pushgateway, "wiped_bytes") == first.volume(good)["bytes"] == 5
    assert _value(pushgateway, "duration_seconds") > 0
    assert _value(pushgateway, "volumes", outcome="recycled") == 1
    assert _value(pushgateway, "volumes", outcome="failed") == 0

    broken = scenario.released_volume("pbroken", path=f"grt-missing-{scenario.unique}")
    second = scenario.run(env={"PUSHGATEWAY_URL": pushgateway.url})
    assert second.code == 1
    assert second.volume(broken)["outcome"] == "failed"
    assert _value(pushgateway, "last_success_timestamp_seconds") == success
    assert _value(pushgateway, "last_run_timestamp_seconds") > success
    assert _value(pushgateway, "exit_code") == 1
    assert _value(pushgateway, "wiped_files") == 0
    assert _value(pushgateway, "volumes", outcome="recycled") == 0
    assert _value(pushgateway, "volumes", outcome="failed") == 1


def test_gateway_down_leaves_the_exit_code_alone(scenario: Scenario) -> None:
    good = scenario.released_volume("pdown", {"a": "x"})
    result = scenario.run("--pushgateway", f"http://127.0.0.1:{free_port()}")
    assert result.code == 0, result.stderr
    assert result.volume(good)["outcome"] == "recycled"
    assert "could not push metrics" in result.stderr


def test_a_gateway_password_is_never_printed(scenario: Scenario) -> None:
    """PUSHGATEWAY_URL may carry basic auth: a failed push, --debug's effective
    configuration and the report show the URL without it."""
    good = scenario.released_volume("psecret", {"a": "x"})
    url = f"http://metrics:pushpass99@127.0.0.1:{free_port()}"
    result = scenario.run("--debug", env={"PUSHGATEWAY_URL": url})
    assert result.code == 0, result.stderr
    assert result.volume(good)["outcome"] == "recycled"
    output = result.stdout + result.stderr
    assert "could not push metrics to http://<redacted>@127.0.0.1:" in result.stderr
    assert "effective configuration" in result.stderr
    assert "'pushgateway': 'http://<redacted>@127.0.0.1:" in result.stderr
    assert "pushpass99" not in output
    assert "pushpass99" not in (scenario.tmp / "report.json").read_text()
