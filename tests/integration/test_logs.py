"""--log-format json: every line a real pass writes, on stdout and stderr, is a JSON object."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.integration.scenario import Scenario

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _entries(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)  # a text line fails here
        assert isinstance(entry, dict), line
        assert TIME.fullmatch(entry["time"]), line
        assert entry["level"] in ("debug", "info", "warning", "error", "critical"), line
        assert entry["logger"] and entry["msg"], line
        entries.append(entry)
    return entries


def test_every_line_of_a_pass_is_json_with_pv_outcome_and_step(scenario: Scenario) -> None:
    good = scenario.released_volume("jgood", {"f": "x"})
    broken = scenario.released_volume("jbroken", path=f"grt-missing-{scenario.unique}")
    result = scenario.run("--log-format", "json")
    assert result.code == 1
    assert result.volume(good)["outcome"] == "recycled"
    assert result.volume(broken)["outcome"] == "failed"
    out, err = _entries(result.stdout), _entries(result.stderr)
    assert out and err

    summary = out[0]
    # Other tests' PVs may still be listed (and skipped: not selected).
    assert summary["msg"].startswith("gluster-recycler: ")
    assert "PVs seen; 1 recycled, 1 failed" in summary["msg"]
    assert summary["exit_code"] == 1
    assert (summary["counts"]["recycled"], summary["counts"]["failed"]) == (1, 1)
    failures = [e for e in out if e.get("pv") == broken]
    assert len(failures) == 1
    assert failures[0]["outcome"] == "failed"
    assert failures[0]["step"] == result.volume(broken)["step"] != ""
    assert failures[0]["level"] == "error"

    recycled = [e for e in err if e.get("pv") == good and e.get("outcome") == "recycled"]
    assert len(recycled) == 1, err
    failed = [e for e in err if e.get("pv") == broken and e.get("outcome") == "failed"]
    assert len(failed) == 1, err
    assert failed[0]["step"] == result.volume(broken)["step"]
