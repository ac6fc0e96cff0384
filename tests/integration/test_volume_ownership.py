"""Whole passes that must not wipe a volume someone else may still own: another PV naming the
same gluster path, a PV whose Endpoints name another pool, a mount that cannot be proven to be
the volume, a subdirectory whose wiped files the trash translator would keep."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from recycler_job.failpoints import ENV
from tests.integration.scenario import RunResult, Scenario
from tests.sandbox.objects import endpoints, gluster_pv

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]

TENANT = {"keep": "tenant data", "dir/inner": "more"}


def report_volume(scenario: Scenario, pv: str) -> dict[str, Any]:
    report = json.loads((scenario.tmp / "report.json").read_text())
    return next(v for v in report["volumes"] if v["pv"] == pv)


def bystander_pv(scenario: Scenario, name: str, path: str) -> str:
    """A PV outside the test's selector (no label), never bound: Available, Retain."""
    pv_name = f"{name}-{scenario.unique}"
    scenario.plane.apply(gluster_pv(pv_name, path, policy="Retain"))
    return pv_name


def volume_id(scenario: Scenario, volume: str) -> str:
    out = scenario.gluster.gluster("volume", "info", volume, "--xml").stdout
    return out.split("<id>", 1)[1].split("</id>", 1)[0]


# ---- 1. PVs sharing a gluster volume ------------------------------------------------------


def test_pv_whose_volume_another_pv_names_is_not_wiped(scenario: Scenario) -> None:
    pv = scenario.released_volume("shared", TENANT)
    volume = scenario.volumes[pv].name
    # Another PV, outside --selector and Available, names a subdirectory of the same volume
    # (written as `/vol/dir/`): wiping the root would destroy its data.
    other = bystander_pv(scenario, "inside", f"/{volume}/dir/")
    result = scenario.run()
    assert result.code == 0, result.stderr
    vol = result.volume(pv)
    assert vol["outcome"] == "skipped", vol
    assert f"pv/{other}" in vol["reason"], vol
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]
    assert scenario.pv(pv)["spec"].get("claimRef"), "the PV must stay unreleased"


def test_pv_next_to_a_sibling_directory_pv_is_wiped(scenario: Scenario) -> None:
    handle = scenario.volume_factory(subdir="a/b")
    scenario.gluster.write_files(
        handle, {"a/b/mine": "x", "a/bc/theirs": "y"}, dirs=["a/b", "a/bc"]
    )
    pv = scenario.released_volume("sibling", path=f"{handle.name}/a/b")
    scenario.volumes[pv] = handle
    bystander_pv(scenario, "sibling-other", f"{handle.name}/a/bc")
    result = scenario.run()
    assert result.code == 0, result.stderr
    assert result.volume(pv)["outcome"] == "recycled", result.volume(pv)
    with scenario.gluster.mounted(handle) as root:
        assert sorted(os.listdir(os.path.join(root, "a/b"))) == []
        assert sorted(os.listdir(os.path.join(root, "a/bc"))) == ["theirs"]


def test_recheck_sees_a_pv_created_after_the_snapshot(scenario: Scenario) -> None:
    pv = scenario.released_volume("late", TENANT)
    volume = scenario.volumes[pv].name
    proc = scenario.start(env={ENV: "after-decide=sleep:4"})
    assert proc.stderr is not None
    for line in proc.stderr:
        if "failpoint after-decide" in line:
            break
    other = bystander_pv(scenario, "late-other", volume)  # the same path, created just now
    proc.communicate(timeout=120)
    assert proc.returncode == 1
    vol = report_volume(scenario, pv)
    assert vol["outcome"] == "failed", vol
    assert "re-check" in vol["error"] and f"pv/{other}" in vol["error"], vol
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]


# ---- 3. which pool, which volume ----------------------------------------------------------


def test_endpoints_of_another_pool_are_refused(scenario: Scenario) -> None:
    """--gluster-hosts names the real server; the PV's Endpoints name another address."""
    elsewhere = f"elsewhere-{scenario.unique}"
    scenario.plane.apply(endpoints(elsewhere, scenario.endpoints_namespace, ["198.51.100.7"]))
    foreign = scenario.released_volume("foreign", TENANT, endpoints_name=elsewhere)
    local = scenario.released_volume("local", {"f": "x"})
    result = scenario.run("--gluster-hosts", scenario.gluster.address)
    assert result.code == 1, result.stderr
    vol = result.volume(foreign)
    assert vol["outcome"] == "failed", vol
    assert "another gluster pool" in vol["error"] and "198.51.100.7" in vol["error"], vol
    assert "mount" not in vol["durations"], "refused before mounting"
    assert scenario.listing(foreign) == ["dir", "dir/inner", "keep"]
    assert scenario.pv(foreign)["spec"].get("claimRef")
    warnings = [e["message"] for e in scenario.events(foreign) if e["reason"] == "RecycleFailed"]
    assert any("another gluster pool" in m for m in warnings), warnings
    # Endpoints that name the same server as --gluster-hosts: recycled.
    assert result.volume(local)["outcome"] == "recycled", result.volume(local)
    assert scenario.listing(local) == []


def test_claim_namespace_endpoints_are_read_only_when_asked(scenario: Scenario) -> None:
    pv = scenario.released_volume("claimns", TENANT)
    hosts = list(scenario.gluster.hosts)
    scenario.plane.apply(endpoints("glusterfs-cluster", scenario.namespace, hosts))
    refused = scenario.run("--endpoints-namespace", "")
    assert refused.code == 1, refused.stderr
    assert "--endpoints-from-claim-namespace" in refused.volume(pv)["error"]
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]
    allowed = scenario.run("--endpoints-namespace", "", "--endpoints-from-claim-namespace")
    assert allowed.code == 0, allowed.stderr
    assert allowed.volume(pv)["outcome"] == "recycled", allowed.volume(pv)
    assert scenario.listing(pv) == []


def tenant_pv(scenario: Scenario, name: str, hosts: list[str]) -> str:
    """A PV as the dynamic provisioner writes it: endpointsNamespace is the claim's own
    namespace, where the (former) tenant can edit the Endpoints; they list `hosts`."""
    endpoints_name = f"glusterfs-dynamic-{name}-{scenario.unique}"
    scenario.plane.apply(endpoints(endpoints_name, scenario.namespace, hosts))
    return scenario.released_volume(
        name, TENANT, endpoints_name=endpoints_name, endpoints_namespace=scenario.namespace
    )


def assert_untouched(scenario: Scenario, result: RunResult, pv: str, reason: str) -> None:
    vol = result.volume(pv)
    assert vol["outcome"] == "failed" and reason in vol["error"], vol
    assert "mount" not in vol["durations"], "refused before mounting"
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]
    assert scenario.pv(pv)["spec"].get("claimRef"), "the PV must stay unreleased"


def test_tenant_endpoints_never_choose_the_servers(scenario: Scenario) -> None:
    """Without --gluster-hosts, Endpoints in the former claim's namespace are refused, whether
    they point elsewhere or (as an attacker's could) at a real server."""
    wrong = tenant_pv(scenario, "tenant-wrong", ["198.51.100.7"])
    real = tenant_pv(scenario, "tenant-real", list(scenario.gluster.hosts))
    result = scenario.run()
    assert result.code == 1, result.stderr
    for pv in (wrong, real):
        assert_untouched(scenario, result, pv, "in the former claim's namespace default")
        warnings = [e["message"] for e in scenario.events(pv) if e["reason"] == "RecycleFailed"]
        assert any("former claim's namespace" in m for m in warnings), warnings


def test_with_gluster_hosts_tenant_endpoints_only_refuse(scenario: Scenario) -> None:
    """With --gluster-hosts: tenant Endpoints that disagree refuse (also with the only-pool
    assertion); tenant Endpoints that agree prove nothing; admin Endpoints that are missing
    prove nothing either. --gluster-hosts-only-pool wipes those two on --gluster-hosts."""
    disagreeing = tenant_pv(scenario, "tenant-other", ["198.51.100.7"])
    agreeing = tenant_pv(scenario, "tenant-same", list(scenario.gluster.hosts))
    missing = scenario.released_volume(
        "admin-missing", TENANT, endpoints_name=f"missing-{scenario.unique}"
    )
    proven = scenario.released_volume("admin-same", {"f": "x"})
    pool = ("--gluster-hosts", scenario.gluster.address)
    first = scenario.run(*pool)
    assert first.code == 1, first.stderr
    assert_untouched(scenario, first, disagreeing, "another gluster pool")
    assert_untouched(scenario, first, agreeing, "prove nothing about the pool")
    assert_untouched(scenario, first, missing, "not found; nothing admin-controlled shows")
    assert first.volume(proven)["outcome"] == "recycled", first.volume(proven)
    assert scenario.listing(proven) == []

    second = scenario.run(*pool, "--gluster-hosts-only-pool")
    assert second.code == 1, second.stderr
    assert_untouched(scenario, second, disagreeing, "another gluster pool")
    for pv in (agreeing, missing):
        assert second.volume(pv)["outcome"] == "recycled", second.volume(pv)
        assert scenario.listing(pv) == []


def test_volume_id_is_proven_and_recorded(scenario: Scenario) -> None:
    """A replica-2 subdirectory volume: pathinfo names both bricks below `pv/data`."""
    handle = scenario.volume_factory(replica=2, subdir="pv/data")
    scenario.gluster.write_files(handle, {"pv/data/keep": "x", "outside": "y"})
    pv = scenario.released_volume("identity", path=handle.path)
    scenario.volumes[pv] = handle
    result = scenario.run()
    assert result.code == 0, result.stderr
    vol = result.volume(pv)
    assert vol["outcome"] == "recycled", vol
    expected = volume_id(scenario, handle.name)
    assert vol["volume_id"] == expected
    messages = [e["message"] for e in scenario.events(pv) if e["reason"] == "Recycled"]
    assert any(expected in m for m in messages), messages
    assert scenario.listing(pv) == []
    with scenario.gluster.mounted(handle) as root:
        assert "outside" in os.listdir(root)


# ---- 6. subdirectory PV on a volume with the trash translator ----------------------------


def test_subdirectory_pv_on_a_trash_volume_is_refused(scenario: Scenario) -> None:
    handle = scenario.volume_factory(subdir="pv/data", options={"features.trash": "on"})
    scenario.gluster.write_files(handle, {f"pv/data/{k}": v for k, v in TENANT.items()})
    pv = scenario.released_volume("trash", path=handle.path)
    scenario.volumes[pv] = handle
    result = scenario.run()
    assert result.code == 1, result.stderr
    vol = result.volume(pv)
    assert vol["outcome"] == "failed", vol
    assert "features.trash" in vol["error"] and ".trashcan" in vol["error"], vol
    assert scenario.listing(pv) == ["dir", "dir/inner", "keep"]
    with scenario.gluster.mounted(handle) as root:
        trashed = []
        if os.path.isdir(os.path.join(root, ".trashcan")):
            for dirpath, _dirs, files in os.walk(os.path.join(root, ".trashcan")):
                trashed += [os.path.join(dirpath, f) for f in files]
        assert trashed == [], "nothing may have been moved to the trash"
    assert scenario.pv(pv)["spec"].get("claimRef")


def test_subdirectory_pv_inside_the_trash_is_refused_with_the_trash_off(
    scenario: Scenario,
) -> None:
    """A PV at `vol/.trashcan/...` would empty gluster's trash: refused even with the trash
    off (where the FUSE trash rule for subdirectory PVs does not apply)."""
    handle = scenario.volume_factory(subdir=".trashcan/other")
    scenario.gluster.write_files(handle, {".trashcan/other/old_2024": "another path's trash"})
    pv = scenario.released_volume("in-trash", path=handle.path)
    scenario.volumes[pv] = handle
    result = scenario.run()
    assert result.code == 1, result.stderr
    vol = result.volume(pv)
    assert vol["outcome"] == "failed", vol
    assert "lies in gluster's trash directory" in vol["error"], vol
    assert scenario.listing(pv) == ["old_2024"]
    assert scenario.pv(pv)["spec"].get("claimRef")
