"""Whole passes against the real control plane and real gluster volumes.

Each test is one of the promises the README makes to admins, and most are a failure an earlier
recycler really had (see REFERENCE.md).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml

from recycler_job.decide import SKIP_ANNOTATION
from recycler_job.gluster import mountinfo
from recycler_job.kube import CONFIGMAP, LEASE, PV, Kube
from tests.integration.scenario import Follow, Scenario
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.objects import pvc, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]
RBAC = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"

TENANT_FILES: dict[str, bytes | str] = {
    "data/db.sqlite": b"x" * 4096,
    ".hidden": "dotfile",
    ".config/app.yaml": "a: 1",
    "-rf": "leading dash",
    "name with spaces\nand newline": "odd",
    "deep/" + "/".join(f"d{i}" for i in range(40)) + "/leaf": "deep",
}


def assert_available_and_bindable(scenario: Scenario, pv_name: str) -> None:
    wait_for(lambda: scenario.phase(pv_name) == "Available", what=f"{pv_name} Available")
    claim = f"again-{pv_name}"
    scenario.plane.apply(pvc(claim, volume_name=pv_name))
    wait_for(lambda: scenario.phase(pv_name) == "Bound", what=f"a new claim to bind {pv_name}")
    scenario.plane.run_kubectl("delete", "pvc", claim, "--wait=false")


def test_release_mode_wipes_everything_and_returns_the_pv(scenario: Scenario) -> None:
    pv = scenario.released_volume(
        "rel",
        TENANT_FILES,
        labels={"team": "a"},
        annotations={"owner": "ops"},
    )
    before = scenario.pv(pv)
    result = scenario.run()
    assert result.code == 0, result.stderr
    assert scenario.listing(pv) == []
    vol = result.volume(pv)
    assert vol["outcome"] == "recycled"
    assert vol["files"] == len(TENANT_FILES)
    assert vol["bytes"] == sum(len(v) for v in TENANT_FILES.values())
    assert set(vol["durations"]) >= {"mount", "wipe", "unmount", "release", "total"}
    after = scenario.pv(pv)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # patched, not re-created
    assert after["metadata"]["labels"]["team"] == "a"
    assert after["metadata"]["annotations"]["owner"] == "ops"
    assert "claimRef" not in after["spec"]
    assert "1 recycled" in result.stdout
    reasons = [e["reason"] for e in scenario.events(pv)]
    assert "Recycled" in reasons
    assert mountinfo.find_mount(str(scenario.mount_root / pv)) is None
    assert_available_and_bindable(scenario, pv)
    # the lease was released for the next run
    lease = scenario.plane.get_json("lease", scenario.lease, "-n", "default")
    assert not lease["spec"].get("holderIdentity")


def test_symlinks_out_of_the_volume_are_not_followed(scenario: Scenario, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    pv = scenario.released_volume("sym", {"f": "x"})
    handle = scenario.volumes[pv]
    with scenario.gluster.mounted(handle) as root:
        os.symlink(str(outside), os.path.join(root, "link-dir"))
        os.symlink(str(outside / "precious"), os.path.join(root, "link-file"))
        os.symlink("/", os.path.join(root, "link-root"))
        os.makedirs(os.path.join(root, "ro/inner"))
        Path(root, "ro/inner/file").write_text("locked")
        os.chmod(os.path.join(root, "ro/inner"), 0o500)
        os.chmod(os.path.join(root, "ro"), 0o500)
    result = scenario.run()
    assert result.code == 0, result.stderr
    assert scenario.listing(pv) == []
    assert (outside / "precious").read_text() == "keep me"


def test_subdirectory_volume_wipes_only_its_subdirectory(scenario: Scenario) -> None:
    pv = scenario.released_volume("sub", {"x/y": "z", ".dot": "d"}, subdir="tenant1")
    handle = scenario.volumes[pv]
    scenario.gluster.write_files(handle, {"neighbour/keep.txt": "other tenant"})
    result = scenario.run()
    assert result.code == 0, result.stderr
    assert scenario.listing(pv) == []
    with scenario.gluster.mounted(handle) as root:
        assert Path(root, "neighbour/keep.txt").read_text() == "other tenant"
        assert Path(root, "tenant1").is_dir()


def test_recreate_mode_keeps_labels_annotations_and_class(scenario: Scenario) -> None:
    pv = scenario.released_volume(
        "rec",
        {"f": "x"},
        labels={"team": "b"},
        annotations={"note": "keep"},
        storage_class="gluster-static",
    )
    before = scenario.pv(pv)
    assert "pv.kubernetes.io/bound-by-controller" in before["metadata"]["annotations"]
    result = scenario.run("--mode", "recreate")
    assert result.code == 0, result.stderr
    after = wait_for(
        lambda: scenario.pv(pv) if scenario.phase(pv) == "Available" else None,
        what="re-created PV Available",
    )
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["metadata"]["labels"]["team"] == "b"
    assert after["metadata"]["annotations"]["note"] == "keep"
    assert "pv.kubernetes.io/bound-by-controller" not in after["metadata"]["annotations"]
    assert after["spec"]["storageClassName"] == "gluster-static"
    assert after["spec"]["glusterfs"] == before["spec"]["glusterfs"]
    assert after["spec"]["persistentVolumeReclaimPolicy"] == "Recycle"
    assert scenario.listing(pv) == []
    record = scenario.plane.get_json("configmap", f"{scenario.lease}-recreate", "-n", "default")
    assert not record.get("data"), "the record is emptied once the PV exists again"


def test_kill_between_delete_and_create_is_repaired_by_the_next_run(
    scenario: Scenario, kube: Kube
) -> None:
    pv = scenario.released_volume("kill", {"f": "x"}, labels={"team": "c"})
    first = scenario.run(
        "--mode", "recreate", env={"GLUSTER_RECYCLER_FAILPOINTS": "after-delete=kill"}
    )
    assert first.code == -signal.SIGKILL
    wait_for(lambda: kube.get_or_none(PV, pv) is None, what="the PV deletion to complete")
    record = kube.get(CONFIGMAP, f"{scenario.lease}-recreate", "default")
    assert pv in record["data"]
    # the killed run still holds the lease; the next one may take it only once it expires
    lease = kube.get(LEASE, scenario.lease, "default")
    lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"
    kube.replace(LEASE, lease, "default")
    second = scenario.run("--mode", "recreate")
    assert second.code == 0, second.stderr
    assert any("re-created from the record" in line for line in second.report["replayed"])
    recreated = kube.get(PV, pv)
    assert recreated["metadata"]["labels"]["team"] == "c"
    wait_for(lambda: scenario.phase(pv) == "Available", what="re-created PV Available")
    assert scenario.listing(pv) == []


def test_stale_record_never_republishes_an_unwiped_volume(scenario: Scenario, kube: Kube) -> None:
    pv = scenario.released_volume(
        "stale", {"keep": "tenant data"}, annotations={SKIP_ANNOTATION: "true"}
    )
    current = kube.get(PV, pv)
    spec = {k: v for k, v in current["spec"].items() if k != "claimRef"}
    clean = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv}, "spec": spec}
    kube.create(
        CONFIGMAP,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{scenario.lease}-recreate", "namespace": "default"},
            "data": {pv: json.dumps({"uid": current["metadata"]["uid"], "pv": clean})},
        },
        "default",
    )
    result = scenario.run()
    assert result.code == 0, result.stderr
    after = kube.get(PV, pv)
    assert after["metadata"]["uid"] == current["metadata"]["uid"]
    assert after["spec"].get("claimRef"), "the PV must stay claimed: it was never wiped"
    assert scenario.listing(pv) == ["keep"]
    assert not (kube.get(CONFIGMAP, f"{scenario.lease}-recreate", "default").get("data"))


def test_retain_is_not_wiped_unless_the_admin_opts_in(scenario: Scenario) -> None:
    pv = scenario.released_volume("retain", {"keep": "me"}, policy="Retain")
    default_run = scenario.run("--phases", "Failed,Released")
    assert default_run.code == 0, default_run.stderr
    assert scenario.listing(pv) == ["keep"]
    assert "Retain" in default_run.volume(pv)["reason"]
    opted_in = scenario.run("--phases", "Released", "--reclaim-policies", "Retain")
    assert opted_in.code == 0, opted_in.stderr
    assert scenario.listing(pv) == []
    wait_for(lambda: scenario.phase(pv) == "Available", what="Available")


def test_failed_mount_touches_nothing_and_other_volumes_still_recycle(
    scenario: Scenario,
) -> None:
    broken = scenario.released_volume("broken", path=f"grt-no-such-volume-{scenario.unique}")
    good = scenario.released_volume("good", {"f": "x"})
    mountpoint = scenario.mount_root / broken
    mountpoint.mkdir(parents=True)
    (mountpoint / "sentinel").write_text("local disk, not gluster")
    result = scenario.run()
    assert result.code == 1
    assert (mountpoint / "sentinel").read_text() == "local disk, not gluster"
    assert result.volume(broken)["outcome"] == "failed"
    assert result.volume(good)["outcome"] == "recycled"
    assert scenario.pv(broken)["spec"].get("claimRef"), "a failed volume is never released"
    assert "RecycleFailed" in [e["reason"] for e in scenario.events(broken)]
    assert f"pv/{broken}" in result.stdout


def test_volume_with_another_client_is_busy_and_the_job_succeeds(scenario: Scenario) -> None:
    """A mounted volume heals by itself: not wiped, not a failure (exit 0), a Warning Event."""
    pv = scenario.released_volume("inuse", {"live": "data"})
    with scenario.gluster.mounted(scenario.volumes[pv]):
        result = scenario.run()
    assert result.code == 0, result.stderr
    volume = result.volume(pv)
    assert volume["outcome"] == "busy", volume
    assert "1 fuse client" in volume["reason"] and not volume["error"], volume
    assert "1 busy" in result.stdout and "0 failed" in result.stdout, result.stdout
    assert scenario.listing(pv) == ["live"]
    assert scenario.pv(pv)["spec"].get("claimRef")
    ours = [
        (e["type"], e["reason"])
        for e in scenario.events(pv)
        if e.get("reportingComponent") == "gluster-recycler"
    ]
    assert ours == [("Warning", "VolumeInUse")], ours


def test_a_busy_volume_does_not_hide_a_failed_one(scenario: Scenario) -> None:
    busy = scenario.released_volume("inuse2", {"live": "data"})
    broken = scenario.released_volume("broken2", path=f"grt-no-such-volume-{scenario.unique}")
    with scenario.gluster.mounted(scenario.volumes[busy]):
        result = scenario.run()
    assert result.code == 1, result.stderr
    assert result.volume(busy)["outcome"] == "busy"
    assert result.volume(broken)["outcome"] == "failed"


def test_dry_run_changes_nothing(scenario: Scenario, kube: Kube) -> None:
    pv = scenario.released_volume("dry", {"f": "x", ".h": "y"})
    before = scenario.pv(pv)["metadata"]["resourceVersion"]
    result = scenario.run("--dry-run")
    assert result.code == 0, result.stderr
    assert result.volume(pv)["outcome"] == "would-recycle"
    assert scenario.pv(pv)["metadata"]["resourceVersion"] == before
    assert scenario.listing(pv) == [".h", "f"]
    assert kube.get_or_none(LEASE, scenario.lease, "default") is None
    assert [e["reason"] for e in scenario.events(pv)].count("Recycled") == 0
    assert not scenario.mount_root.exists() or not any(scenario.mount_root.iterdir())


def test_dry_run_reports_a_volume_in_use_and_exits_0(scenario: Scenario) -> None:
    pv = scenario.released_volume("dryuse", {"live": "data"})
    with scenario.gluster.mounted(scenario.volumes[pv]):
        result = scenario.run("--dry-run")
    assert result.code == 0, result.stderr
    volume = result.volume(pv)
    assert volume["outcome"] == "would-refuse"
    assert "in use" in volume["reason"]
    assert "1 would-refuse" in result.stdout
    assert scenario.listing(pv) == ["live"]


def test_an_unexpected_error_still_writes_the_report_and_exits_1(
    scenario: Scenario, kube: Kube, tmp_path: Path
) -> None:
    """`umount` missing from PATH while the mount of a killed run must be cleaned up: the
    pass stops before touching any volume, reports why, releases the Lease and exits 1."""
    pv = scenario.released_volume("noumount", {"f": "x"})
    killed = scenario.run(env={"GLUSTER_RECYCLER_FAILPOINTS": "before-wipe=kill"})
    assert killed.code == -signal.SIGKILL
    assert mountinfo.find_mount(str(scenario.mount_root / pv)) is not None
    lease = kube.get(LEASE, scenario.lease, "default")  # the killed run's Lease has expired
    lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"
    kube.replace(LEASE, lease, "default")
    empty = tmp_path / "bin"
    empty.mkdir()
    result = scenario.run(env={"PATH": str(empty)})
    assert result.code == 1, result.stderr
    assert result.report["outcome"] == "error"
    assert result.report["exit_code"] == 1
    assert "`umount` not found" in result.report["error"]
    assert "stopped: unexpected" in result.stdout
    assert scenario.pv(pv)["spec"].get("claimRef")
    lease = kube.get(LEASE, scenario.lease, "default")
    assert not lease["spec"].get("holderIdentity"), "the Lease was not released"
    assert scenario.listing(pv) == ["f"]
    # with umount back, the next run cleans up and recycles
    again = scenario.run()
    assert again.code == 0, again.stderr
    assert mountinfo.find_mount(str(scenario.mount_root / pv)) is None


def test_two_passes_at_once_recycle_each_volume_once(scenario: Scenario) -> None:
    pvs = [scenario.released_volume(f"race{i}", {"f": "x"}) for i in range(2)]
    procs = [
        scenario.start("--report-file", str(scenario.tmp / f"race-{i}.json")) for i in range(2)
    ]
    codes = [p.wait(timeout=240) for p in procs]
    assert codes == [0, 0]
    reports = [json.loads((scenario.tmp / f"race-{i}.json").read_text()) for i in range(2)]
    assert sorted(r["outcome"] for r in reports) == ["completed", "skipped"]
    for pv in pvs:
        # Summed counts: a repeated Event is one object, so counting objects could hide one.
        recycled = [e for e in scenario.events(pv) if e["reason"] == "Recycled"]
        assert sum(e.get("count", 1) for e in recycled) == 1
        assert scenario.listing(pv) == []


def test_recheck_before_wipe_sees_a_claim_that_wants_the_data(scenario: Scenario) -> None:
    pv = scenario.released_volume("want", {"precious": "x"})
    run = Follow(scenario.start(env={"GLUSTER_RECYCLER_FAILPOINTS": "after-decide=sleep:4"}))
    run.wait_for_line("failpoint after-decide")
    scenario.plane.apply(pvc(f"wants-{pv}", volume_name=pv))
    assert run.wait(timeout=120) == 1, run.stderr
    assert scenario.listing(pv) == ["precious"]
    report = json.loads((scenario.tmp / "report.json").read_text())
    vol = next(v for v in report["volumes"] if v["pv"] == pv)
    assert "re-check" in vol["error"] and "volumeName" in vol["error"]


def test_change_during_wipe_blocks_the_release(scenario: Scenario) -> None:
    pv = scenario.released_volume("changed", {"f": "x"})
    run = Follow(scenario.start(env={"GLUSTER_RECYCLER_FAILPOINTS": "before-release=sleep:4"}))
    run.wait_for_line("failpoint before-release")
    scenario.plane.run_kubectl("label", "pv", pv, "touched=during-wipe")
    assert run.wait(timeout=120) == 1, run.stderr
    assert scenario.pv(pv)["spec"].get("claimRef"), "resourceVersion precondition must hold"


def test_sigterm_mid_wipe_leaves_pv_unreleased_and_lease_free(scenario: Scenario) -> None:
    files = {f"d{i}/f{j}": "x" for i in range(30) for j in range(100)}
    pv = scenario.released_volume("term", files)
    initial = scenario.brick_files(pv)
    run = Follow(scenario.start("--wipe-workers", "1"))
    wait_for(lambda: scenario.brick_files(pv) < initial, interval=0.05, what="the wipe to start")
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 4, run.stderr
    assert scenario.brick_files(pv) > 0, "the wipe ended before the signal: nothing tested"
    assert scenario.pv(pv)["spec"].get("claimRef"), "an interrupted volume stays unreleased"
    lease = scenario.plane.get_json("lease", scenario.lease, "-n", "default")
    assert not lease["spec"].get("holderIdentity")
    assert mountinfo.find_mount(str(scenario.mount_root / pv)) is None
    finish = scenario.run()
    assert finish.code == 0, finish.stderr
    assert scenario.listing(pv) == []


def test_volume_stopped_mid_wipe_fails_and_is_not_released(scenario: Scenario) -> None:
    pv = scenario.released_volume("enotconn", {f"f{i}": "x" for i in range(50)})
    run = Follow(scenario.start(env={"GLUSTER_RECYCLER_FAILPOINTS": "before-wipe=sleep:3"}))
    run.wait_for_line("failpoint before-wipe")  # mounted; the wipe starts 3 s later
    scenario.gluster.stop_volume(scenario.volumes[pv])
    code = run.wait(timeout=180)
    scenario.gluster.start_volume(scenario.volumes[pv])
    assert code == 1, run.stderr
    assert scenario.pv(pv)["spec"].get("claimRef")
    assert mountinfo.find_mount(str(scenario.mount_root / pv)) is None


def test_stale_mount_of_a_killed_run_is_cleaned_up(scenario: Scenario, kube: Kube) -> None:
    pv = scenario.released_volume("leftover", {"f": "x"})
    killed = scenario.run(env={"GLUSTER_RECYCLER_FAILPOINTS": "before-wipe=kill"})
    assert killed.code == -signal.SIGKILL
    mountpoint = scenario.mount_root / pv
    assert mountinfo.find_mount(str(mountpoint)) is not None  # left behind, with its record
    lease = kube.get(LEASE, scenario.lease, "default")
    lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"
    kube.replace(LEASE, lease, "default")
    result = scenario.run("--no-client-check")
    assert result.code == 0, result.stderr
    assert str(mountpoint) in result.report["stale_mounts_cleaned"]
    assert scenario.listing(pv) == []
    assert mountinfo.mounts_below(str(scenario.mount_root)) == []


def shipped_rbac_for(
    scenario: Scenario, namespace: str, account: str, *, event_verbs: list[str] | None = None
) -> None:
    """manifests/rbac.yaml's rules, granted to `account`: cluster-wide as shipped, and the
    Role's Lease and ConfigMap rules for this scenario's Lease name in its namespace.
    `event_verbs` replaces the verbs on events (an older ClusterRole)."""
    name = f"grt-{scenario.unique}"
    names = {
        "gluster-recycler": scenario.lease,
        "gluster-recycler-recreate": f"{scenario.lease}-recreate",
    }
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    for doc in yaml.safe_load_all(RBAC.read_text()):
        kind = doc["kind"]
        if kind == "ServiceAccount":
            continue
        doc["metadata"] = {"name": name}
        if kind in ("Role", "RoleBinding"):
            doc["metadata"]["namespace"] = scenario.namespace
        if kind in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                if event_verbs is not None and rule["resources"] == ["events"]:
                    rule["verbs"] = event_verbs
                if "resourceNames" in rule:
                    rule["resourceNames"] = [names[n] for n in rule["resourceNames"]]
        else:
            doc["roleRef"]["name"] = name
            doc["subjects"] = [subject]
        scenario.plane.apply(doc)


def test_debug_never_prints_the_token(scenario: Scenario, control_plane: ControlPlane) -> None:
    """A whole successful pass (list, mount, wipe, release, Event) with --debug under a
    ServiceAccount token holding the shipped RBAC: the token is nowhere in the output or the
    report. A refused request (the error path) does not print it either."""
    pv = scenario.released_volume("dbg", {"f": "x", ".h": "y"})
    ns = f"dbg-{scenario.unique}"
    control_plane.run_kubectl("create", "namespace", ns)
    control_plane.run_kubectl("create", "serviceaccount", "r", "-n", ns)
    shipped_rbac_for(scenario, ns, "r")
    kubeconfig = control_plane.service_account_kubeconfig(ns, "r")
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    assert len(token) > 100
    result = scenario.run("--debug", kubeconfig=kubeconfig)
    assert result.code == 0, result.stderr
    assert result.volume(pv)["outcome"] == "recycled"
    assert scenario.listing(pv) == []
    wait_for(lambda: scenario.phase(pv) == "Available", what=f"{pv} Available")
    assert "Recycled" in [e["reason"] for e in scenario.events(pv)]
    everything = result.stdout + result.stderr + json.dumps(result.report)
    # --debug really logged each step, API requests included
    for step in ("DEBUG", "api GET", "api PATCH", "api CREATE", "running: mount"):
        assert step in everything, step
    for secret in (token, token[:40], token[-40:]):
        assert secret not in everything
    assert "authorization" not in everything.lower()
    assert "bearer" not in everything.lower()

    control_plane.run_kubectl("create", "serviceaccount", "none", "-n", ns)
    refused = control_plane.service_account_kubeconfig(ns, "none")
    other = yaml.safe_load(refused.read_text())["users"][0]["user"]["token"]
    forbidden = scenario.run("--debug", kubeconfig=refused)
    assert forbidden.code == 3
    output = forbidden.stdout + forbidden.stderr + json.dumps(forbidden.report)
    assert "forbidden" in output.lower()
    assert other not in output and other[-40:] not in output


def test_unreachable_cluster_exits_3_and_bad_config_exits_2(
    scenario: Scenario, tmp_path: Path
) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text(
        scenario.plane.kubeconfig.read_text().replace(
            f"127.0.0.1:{scenario.plane.api_port}", "127.0.0.1:1"
        )
    )
    unreachable = scenario.run(kubeconfig=bad)
    assert unreachable.code == 3
    assert "cannot" in unreachable.stdout + unreachable.stderr
    bad_config = scenario.run("--parallel", "0")
    assert bad_config.code == 2
    assert bad_config.stderr.strip().count("\n") == 0
    assert "--parallel" in bad_config.stderr


def test_a_release_the_cluster_would_refuse_stops_the_pass_before_any_wipe(
    scenario: Scenario, control_plane: ControlPlane
) -> None:
    """RBAC without `patch` on PVs: the rehearsal is refused, nothing is wiped, exit 3."""
    pvs = [scenario.released_volume(f"noperm{i}", {"keep": "x"}) for i in range(2)]
    ns = f"np-{scenario.unique}"
    kc = control_plane.run_kubectl
    kc("create", "namespace", ns)
    kc("create", "serviceaccount", "r", "-n", ns)
    role = f"np-{scenario.unique}"
    kc(
        "create",
        "clusterrole",
        role,
        "--verb=get,list,watch",
        "--resource=persistentvolumes,persistentvolumeclaims,endpoints",
    )
    kc("create", "clusterrolebinding", role, f"--clusterrole={role}", f"--serviceaccount={ns}:r")
    kc(
        "create",
        "role",
        role,
        "-n",
        "default",
        "--verb=get,list,watch,create,update",
        "--resource=leases,configmaps,events",
    )
    kc("create", "rolebinding", role, "-n", "default", f"--role={role}", f"--serviceaccount={ns}:r")
    result = scenario.run(kubeconfig=control_plane.service_account_kubeconfig(ns, "r"))
    assert result.code == 3, result.stderr
    for pv in pvs:
        assert scenario.listing(pv) == ["keep"]
        assert scenario.pv(pv)["spec"].get("claimRef")
    outcomes = sorted(v["outcome"] for v in result.report["volumes"] if v["pv"] in pvs)
    assert outcomes == ["failed", "interrupted"]


def test_a_held_back_pv_is_logged_at_info_and_the_report_can_go_to_stdout(
    scenario: Scenario,
) -> None:
    """Without --debug: the rule that held the PV back is in the log; `--report-file -` makes
    stdout the JSON report alone."""
    pv = scenario.released_volume("why", {"f": "x"})
    result = scenario.run("--reclaim-policies", "Retain", "--report-file", "-")
    assert result.code == 0, result.stderr
    line = f"pv/{pv}: not recycled (skipped): reclaim policy Recycle is not one of Retain"
    assert line in result.stderr, result.stderr
    report = json.loads(result.stdout)
    (volume,) = [v for v in report["volumes"] if v["pv"] == pv]
    assert volume["outcome"] == "skipped"
    assert "gluster-recycler: " in result.stderr  # the summary moved to stderr
    assert scenario.listing(pv) == ["f"]
