"""Whole passes with ``--backend gfapi``, run as uid 65534 without capabilities.

The program runs exactly as an unprivileged pod would: ``setpriv --reuid=65534 --regid=65534
--clear-groups --inh-caps=-all --bounding-set=-all python -m recycler_job ...``, with a
kubeconfig, report file and log directory that uid may use, and nothing else writable. The
trees themselves (hostile names, modes, 50,000 files) are covered at the transport level in
test_gfapi.py; here it is the pass: the checks around the wipe, the PV, the Event, the Lease.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from recycler_job.failpoints import ENV
from tests.integration.scenario import Follow, Scenario
from tests.integration.test_gfapi import SETPRIV, Driver, spec_for
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer
from tests.sandbox.gluster_fixtures import VolumeFactory
from tests.sandbox.objects import wait_for

pytestmark = pytest.mark.gluster

NOBODY = 65534


class NobodyScenario(Scenario):
    """A Scenario whose passes run unprivileged with the gfapi backend."""

    def command(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        base = super().command(*args, kubeconfig=kubeconfig or self.tmp / "kubeconfig")
        python = str(Path(__file__).resolve().parents[2] / ".venv/bin/python")
        return [
            *SETPRIV,
            python,
            *base[1:],
            "--backend",
            "gfapi",
            "--log-dir",
            str(self.tmp / "logs"),
        ]

    def run(self, *args: str, **kwargs: Any) -> Any:
        kwargs["env"] = {**_env(), **(kwargs.get("env") or {})}
        return super().run(*args, **kwargs)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> Any:
        return super().start(*args, env={**_env(), **(env or {})})


def _env() -> dict[str, str]:
    # No HOME of root's: uid 65534 gets nothing of the test runner's environment it cannot use.
    return {"HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture
def nobody(
    control_plane: ControlPlane,
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    unique: str,
) -> Iterator[NobodyScenario]:
    """A directory of uid 65534's own (report, logs, a copy of the admin kubeconfig)."""
    tmp = Path(tempfile.mkdtemp(prefix="grt-gfapi-pass-"))
    os.chmod(tmp, 0o755)
    shutil.copyfile(control_plane.kubeconfig, tmp / "kubeconfig")
    os.chmod(tmp / "kubeconfig", 0o444)
    os.chown(tmp, NOBODY, NOBODY)
    try:
        yield NobodyScenario(control_plane, gluster_server, gluster_volume, unique, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _volume_id(scenario: Scenario, pv: str) -> str:
    out = scenario.gluster.gluster("volume", "info", scenario.volumes[pv].name).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if "Volume ID" in line)


def _lease_holder(scenario: Scenario) -> str | None:
    lease = scenario.plane.get_json("lease", scenario.lease, "-n", "default")
    holder: str | None = lease["spec"].get("holderIdentity")
    return holder


HOSTILE = {
    "top": "x",
    ".hidden": "y",
    "a/b/c/d/deep": "z",
    "dir/.dot/file": "w",
}


def test_release_mode_recycles_as_nobody(nobody: NobodyScenario) -> None:
    root_pv = nobody.released_volume("gf-root", HOSTILE)
    sub_pv = nobody.released_volume("gf-sub", {"inside": "x"}, subdir="pv/data")
    with nobody.gluster.mounted(nobody.volumes[root_pv]) as root:
        os.chmod(os.path.join(root, "dir"), 0o500)
        os.symlink("/etc", os.path.join(root, "escape"))
    result = nobody.run()
    assert result.code == 0, result.stderr
    for pv in (root_pv, sub_pv):
        vol = result.volume(pv)
        assert vol["outcome"] == "recycled", vol
        expected = _volume_id(nobody, pv)
        assert vol["volume_id"] == expected
        messages = [e["message"] for e in nobody.events(pv) if e["reason"] == "Recycled"]
        assert any(expected in m for m in messages), messages
        assert nobody.listing(pv) == []
        assert not nobody.pv(pv)["spec"].get("claimRef")
        assert nobody.gluster.client_list(nobody.volumes[pv]) == {}
    assert os.path.isdir("/etc") and os.listdir("/etc")
    assert (nobody.tmp / "logs" / "cli.log").exists()
    assert (nobody.tmp / "logs" / f"gfapi-{root_pv}.log").exists()
    assert not _lease_holder(nobody)


def test_recreate_mode_recycles_as_nobody(nobody: NobodyScenario) -> None:
    pv = nobody.released_volume("gf-recreate", {"f": "x"}, labels={"keep": "me"})
    uid = nobody.pv(pv)["metadata"]["uid"]
    result = nobody.run("--mode", "recreate")
    assert result.code == 0, result.stderr
    assert result.volume(pv)["outcome"] == "recycled"
    fresh = nobody.pv(pv)
    assert fresh["metadata"]["uid"] != uid
    assert fresh["metadata"]["labels"]["keep"] == "me"
    assert nobody.listing(pv) == []


def test_another_client_is_refused(nobody: NobodyScenario) -> None:
    pv = nobody.released_volume("gf-inuse", {"precious": "x"})
    with nobody.gluster.mounted(nobody.volumes[pv]):
        result = nobody.run()
    assert result.code == 0, result.stderr
    vol = result.volume(pv)
    # Refused by the check before glfs_init: no gfapi client was ever started (no log).
    assert vol["outcome"] == "busy" and "is in use" in vol["reason"], vol
    assert not (nobody.tmp / "logs" / f"gfapi-{pv}.log").exists()
    assert nobody.listing(pv) == ["precious"]
    assert nobody.pv(pv)["spec"].get("claimRef")


def test_a_gfapi_client_arriving_before_ours_is_refused(nobody: NobodyScenario) -> None:
    """After glfs_init exactly one client of our name may be connected: one that came between
    the first check and ours has the same name, and is not ours. It stays listed after our
    request and the waits that let our own old graph go (clients_besides_own).

    The count may read 2: the other client, which sends no request after connecting, can be
    listed twice when two volfile answers raced at its glfs_init (seen with other test
    workers changing other volumes on the same glusterd). That errs towards busy."""
    pv = nobody.released_volume("gf-early", {"precious": "x"})
    run = Follow(nobody.start(env={ENV: "before-mount=sleep:8"}))
    # Before the first unlink: busy, not a failure.
    _second_client_fails(
        nobody, pv, run, lambda: run.wait_for_line("failpoint before-mount"), exit_code=0
    )
    assert re.search(r"has clients besides our own: [12] gfapi\.", run.stderr), run.stderr
    assert nobody.listing(pv) == ["precious"]
    assert nobody.pv(pv)["spec"].get("claimRef")


def test_our_client_listed_twice_while_it_changes_graphs_is_still_ours(
    nobody: NobodyScenario,
) -> None:
    """libgfapi leaves its old graph connected until the next request after a graph change
    (the same happens when two volfile answers race at glfs_init): the check with our client
    connected sends a request and asks again instead of refusing our own old graph."""
    pv = nobody.released_volume("gf-regraphed", {"f": "x", "d/g": "y"})
    run = Follow(nobody.start(env={ENV: "before-client-check=sleep:5"}))
    try:
        run.wait_for_line("failpoint before-client-check")
        (own,) = nobody.gluster.client_list(nobody.volumes[pv])
        nobody.switch_client_graphs(pv, own)
        assert run.wait(timeout=120) == 0, run.stderr
    finally:
        run.kill()
    report = json.loads((nobody.tmp / "report.json").read_text())
    vol = next(v for v in report["volumes"] if v["pv"] == pv)
    assert vol["outcome"] == "recycled", vol
    assert nobody.listing(pv) == []


def _second_client_fails(
    nobody: NobodyScenario,
    pv: str,
    run: Follow,
    when: Callable[[], object],
    exit_code: int = 1,
) -> None:
    """Once `when` returns, connect another gfapi client of our name to the PV's volume and
    hold it; the pass must exit `exit_code`. The client and the pass are stopped on every
    path."""
    go = nobody.tmp / "go"
    other: Driver | None = None
    try:
        when()
        other = Driver(spec_for(nobody.volumes[pv], nobody.tmp, op="hold", pause_file=str(go)))
        assert other.next_event()["event"] == "connected"
        assert run.wait(timeout=180) == exit_code, run.stderr
    finally:
        go.touch()
        if other is not None:
            other.finish()
            other.kill()
        run.kill()


def test_a_second_gfapi_client_during_the_wipe_stops_it(nobody: NobodyScenario) -> None:
    """Our own client is ignored by name and count: one more of the same name is not ours."""
    files = {f"d{i}/f{j}": "x" for i in range(30) for j in range(100)}
    pv = nobody.released_volume("gf-second", files)
    initial = nobody.brick_files(pv)
    # Slowed down so the wipe is still running when the second client has connected.
    run = Follow(nobody.start("--wipe-workers", "1", env={ENV: "wipe-directory=sleep:0.1"}))
    _second_client_fails(
        nobody,
        pv,
        run,
        lambda: wait_for(lambda: nobody.brick_files(pv) < initial, interval=0.05, what="the wipe"),
    )
    assert "a new gluster client connected" in run.stderr, run.stderr
    assert nobody.brick_files(pv) > 0, "the wipe ended before the client came: nothing tested"
    assert nobody.pv(pv)["spec"].get("claimRef")


def test_volume_id_mismatch_is_refused(nobody: NobodyScenario) -> None:
    """The volume is deleted and re-created under the same name between `volume info` and
    glfs_init: gfapi reaches a volume whose ID is not the one the CLI reported."""
    pv = nobody.released_volume("gf-id", {"f": "x"})
    handle = nobody.volumes[pv]
    run = Follow(nobody.start(env={ENV: "before-mount=sleep:20"}))
    run.wait_for_line("failpoint before-mount")
    nobody.gluster.delete_volume(handle)
    nobody.gluster.create_volume(handle.name)
    nobody.gluster.write_files(handle, {"newcomer": "data"})
    assert run.wait(timeout=180) == 1, run.stderr
    assert "another volume answered" in run.stderr, run.stderr
    assert nobody.listing(pv) == ["newcomer"]
    assert nobody.pv(pv)["spec"].get("claimRef")


def test_root_squash_is_a_clear_error_and_nothing_is_removed(nobody: NobodyScenario) -> None:
    pv = nobody.released_volume("gf-squash", {"top": "x", "closed/f": "y"})
    with nobody.gluster.mounted(nobody.volumes[pv]) as root:
        os.chmod(root, 0o777)
        os.chmod(os.path.join(root, "top"), 0o666)
    nobody.gluster.gluster("volume", "set", nobody.volumes[pv].name, "server.root-squash", "on")
    result = nobody.run()
    assert result.code == 1, result.stderr
    vol = result.volume(pv)
    assert vol["outcome"] == "failed" and "root-squash" in vol["error"], vol
    assert nobody.listing(pv) == ["closed", "closed/f", "top"]
    assert nobody.pv(pv)["spec"].get("claimRef")


def test_sigterm_mid_wipe_exits_4_frees_the_client_and_the_lease(nobody: NobodyScenario) -> None:
    files = {f"d{i}/f{j}": "x" for i in range(30) for j in range(100)}
    pv = nobody.released_volume("gf-term", files)
    initial = nobody.brick_files(pv)
    run = Follow(nobody.start("--wipe-workers", "1"))
    wait_for(lambda: nobody.brick_files(pv) < initial, interval=0.05, what="the wipe to start")
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 4, run.stderr
    assert nobody.brick_files(pv) > 0, "the wipe ended before the signal: nothing tested"
    assert re.search(
        r"glfs_fini of volume \S+ returned 0|volume \S+ list no client of ours", run.stderr
    ), run.stderr
    assert nobody.gluster.client_list(nobody.volumes[pv]) == {}
    assert nobody.pv(pv)["spec"].get("claimRef")
    assert not _lease_holder(nobody)


def test_the_release_waits_for_our_client_to_be_gone_not_for_glfs_fini(
    nobody: NobodyScenario,
) -> None:
    """glfs_fini disconnects at once, then waits up to 10 s for a timer of glusterfs's own:
    the pass goes on once the bricks list no client of ours, not after those 10 s."""
    pv = nobody.released_volume("gf-fini", {"f": "x", "d/g": "y"})
    run = Follow(nobody.start(env={ENV: "before-release=sleep:4"}))
    try:
        run.wait_for_line("failpoint before-release")
        clients_at_release = nobody.gluster.client_list(nobody.volumes[pv])
        assert run.wait(timeout=120) == 0, run.stderr
    finally:
        run.kill()
    assert clients_at_release == {}, clients_at_release
    report = json.loads((nobody.tmp / "report.json").read_text())
    vol = next(v for v in report["volumes"] if v["pv"] == pv)
    assert vol["outcome"] == "recycled", vol
    assert vol["durations"]["unmount"] < 5, vol["durations"]
    assert re.search(r"volume \S+ list no client of ours", run.stderr), run.stderr
    assert nobody.listing(pv) == []
    assert not nobody.pv(pv)["spec"].get("claimRef")


def test_a_close_that_cannot_prove_our_client_gone_does_not_release(
    nobody: NobodyScenario,
) -> None:
    """A client of our name still listed when glfs_fini overruns its bound: it may be ours,
    so the PV is not released (the next run retries). The fini returns 10 s after glfs_init
    (its timer fires every 10 s from the first request): 3 s of failpoint plus the wipe leave
    it 5-7 s, beyond the bound of 3 s."""
    pv = nobody.released_volume("gf-unproven", {"f": "x"})
    go = nobody.tmp / "go"
    other: Driver | None = None
    run = Follow(nobody.start("--mount-timeout", "3", env={ENV: "before-fini=sleep:3"}))
    try:
        run.wait_for_line("failpoint before-fini")
        other = Driver(spec_for(nobody.volumes[pv], nobody.tmp, op="hold", pause_file=str(go)))
        assert other.next_event()["event"] == "connected"
        assert run.wait(timeout=180) == 1, run.stderr
    finally:
        go.touch()
        if other is not None:
            other.finish()
            other.kill()
        run.kill()
    assert "may still be connected" in run.stderr, run.stderr
    assert "did not return within 3 s; given up" in run.stderr, run.stderr
    assert nobody.pv(pv)["spec"].get("claimRef")


def test_volume_stopped_during_the_wipe_fails_and_is_not_released(
    nobody: NobodyScenario,
) -> None:
    files = {f"d{i}/f{j}": "x" for i in range(30) for j in range(100)}
    pv = nobody.released_volume("gf-stop", files)
    initial = nobody.brick_files(pv)
    run = Follow(nobody.start("--wipe-workers", "1"))
    try:
        wait_for(lambda: nobody.brick_files(pv) < initial, interval=0.05, what="the wipe")
        nobody.gluster.stop_volume(nobody.volumes[pv])
        code = run.wait(timeout=180)
    finally:
        run.kill()
        nobody.gluster.start_volume(nobody.volumes[pv])
    assert code == 1, run.stderr
    assert nobody.brick_files(pv) > 0, "the wipe ended before the stop: nothing tested"
    assert nobody.pv(pv)["spec"].get("claimRef")
    assert not _lease_holder(nobody)


def test_subdir_pv_on_a_trash_volume_is_wiped_with_its_trash(nobody: NobodyScenario) -> None:
    """Unlike FUSE (refused), gfapi sees `.trashcan/<subdir>` and empties it; the trash of
    other paths stays (docs/decisions.md, "Trash, by backend")."""
    handle = nobody.volume_factory(subdir="pv/data", options={"features.trash": "on"})
    nobody.gluster.write_files(handle, {"pv/data/old": "x", "other/keep": "y"})
    with nobody.gluster.mounted(handle) as root:  # earlier deletions, kept by the trash
        os.unlink(os.path.join(root, "pv/data/old"))
        os.unlink(os.path.join(root, "other/keep"))
    nobody.gluster.write_files(handle, {"pv/data/tenant": "z"})
    pv = nobody.released_volume("gf-trash", path=handle.path)
    nobody.volumes[pv] = handle
    result = nobody.run()
    assert result.code == 0, result.stderr
    assert result.volume(pv)["outcome"] == "recycled"
    assert nobody.listing(pv) == []
    with nobody.gluster.mounted(handle) as root:
        trash = os.path.join(root, ".trashcan")
        assert not os.path.exists(os.path.join(trash, "pv", "data"))
        others = os.listdir(os.path.join(trash, "other"))
        assert [n for n in others if n.startswith("keep")], others


def test_glfs_init_against_a_frozen_brick_fails_the_volume_within_the_bound(
    nobody: NobodyScenario,
) -> None:
    """The brick of our own volume is frozen (SIGSTOP) right before glfs_init: the volume
    fails within --mount-timeout, nothing is removed, the PV is not released."""
    pv = nobody.released_volume("gf-frozen", {"precious": "x"})
    handle = nobody.volumes[pv]
    # Looked up before the pass starts: the freeze must land within the failpoint's 1 s.
    pids = nobody.gluster.brick_pids(handle)
    run = Follow(nobody.start("--mount-timeout", "5s", env={ENV: "before-mount=sleep:1"}))
    try:
        run.wait_for_line("failpoint before-mount")
        with nobody.gluster.bricks_frozen(handle, pids):
            frozen_at = time.monotonic()
            code = run.wait(timeout=60)
            took = time.monotonic() - frozen_at
    finally:
        run.kill()
    assert code == 1, run.stderr
    assert "no answer within 5 s" in run.stderr, run.stderr
    assert took < 5 + 15, took
    assert nobody.listing(pv) == ["precious"]
    assert nobody.pv(pv)["spec"].get("claimRef")
    assert not _lease_holder(nobody)


def test_sigterm_during_a_frozen_glfs_init_exits_4_within_10_s(nobody: NobodyScenario) -> None:
    pv = nobody.released_volume("gf-frozen-term", {"precious": "x"})
    handle = nobody.volumes[pv]
    pids = nobody.gluster.brick_pids(handle)  # the freeze must land within the failpoint's 1 s
    run = Follow(nobody.start(env={ENV: "before-mount=sleep:1"}))
    try:
        run.wait_for_line("failpoint before-mount")
        with nobody.gluster.bricks_frozen(handle, pids):
            time.sleep(4)  # the pass is inside glfs_init by now (60 s bound)
            assert run.proc.poll() is None, run.stderr
            sent = time.monotonic()
            run.proc.send_signal(signal.SIGTERM)
            code = run.wait(timeout=60)
            took = time.monotonic() - sent
    finally:
        run.kill()
    assert code == 4, run.stderr
    assert took < 10, took
    assert nobody.listing(pv) == ["precious"]
    assert nobody.pv(pv)["spec"].get("claimRef")
    assert not _lease_holder(nobody)


@pytest.mark.parametrize(
    ("subdir", "options"),
    [
        (".Trash/internal_op", {"features.trash": "on", "features.trash-dir": ".Trash"}),
        (".trashcan/pv", {}),  # the trash never enabled: refused all the same
    ],
)
def test_pv_in_the_trash_is_refused_and_nothing_removed(
    nobody: NobodyScenario, subdir: str, options: dict[str, str]
) -> None:
    handle = nobody.volume_factory(subdir=subdir, options=options)
    nobody.gluster.write_files(handle, {f"{subdir}/gluster-own": "x"})
    pv = nobody.released_volume("gf-in-trash", path=handle.path)
    nobody.volumes[pv] = handle
    result = nobody.run()
    assert result.code == 1, result.stderr
    vol = result.volume(pv)
    assert "lies in gluster's trash directory" in vol["error"], vol
    with nobody.gluster.mounted(handle) as root:
        assert os.listdir(os.path.join(root, subdir)) == ["gluster-own"]
    assert nobody.pv(pv)["spec"].get("claimRef")
