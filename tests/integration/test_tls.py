"""Whole passes over pools with TLS on the I/O path (`client.ssl on`, `server.ssl on`).

Each pass has a TLS volume and a plain one. The bricks use their own certificate, key and CA
(volume options `ssl.own-cert`, `ssl.private-key`, `ssl.ca-list`, files in a temp directory
readable by root only), so /etc/ssl of this machine is not touched and the other tests on
the same glusterd are not disturbed. The volume file names the bricks' paths to its clients
too: only a wrong CA handed to the client proves the client uses the files it is given, and
the unprivileged gfapi client cannot read the bricks' files at all.

Management TLS (`/var/lib/glusterd/secure-access`) is not exercised here: see
docs/decisions.md, "TLS".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recycler_job import tls
from recycler_job.gluster import cli as gluster_cli
from recycler_job.gluster.errors import GlusterError
from tests.integration.scenario import RunResult, Scenario
from tests.integration.test_gfapi_pass import NobodyScenario, nobody  # noqa: F401 (fixture)
from tests.sandbox.gluster_fixtures import VolumeFactory
from tests.sandbox.pki import GLUSTER, Pki

pytestmark = [pytest.mark.cluster, pytest.mark.gluster]

PLAIN_FILES = {"plain": "x", "d/f": "y"}
TLS_FILES = {"secret": "tenant data", ".hidden": "z", "deep/a/b": "w"}


def _tls_and_plain(scenario: Scenario, pki: Pki) -> tuple[str, str]:
    """A released PV on a TLS volume and one on a plain volume, both holding files."""
    handle = scenario.volume_factory(options=pki.server_options())
    scenario.gluster.write_files(handle, TLS_FILES)
    tls_pv = scenario.released_volume("tls", path=handle.path)
    scenario.volumes[tls_pv] = handle
    plain_pv = scenario.released_volume("plain", PLAIN_FILES)
    return tls_pv, plain_pv


def _run(scenario: Scenario, tls_dir: Path, backend: str) -> RunResult:
    logs = ["--log-dir", str(scenario.tmp / "logs")] if backend == "fuse" else []
    return scenario.run("--tls-dir", str(tls_dir), *logs)


def _assert_recycled(scenario: Scenario, result: RunResult, pv: str) -> None:
    assert result.volume(pv)["outcome"] == "recycled", result.volume(pv)
    assert scenario.listing(pv) == []
    assert not scenario.pv(pv)["spec"].get("claimRef")


def _assert_failed_untouched(scenario: Scenario, result: RunResult, pv: str, why: str) -> None:
    vol = result.volume(pv)
    print(f"{pv}: {vol['error']}")  # the reason as admins see it, in the test output
    assert vol["outcome"] == "failed", vol
    assert why in vol["error"], vol
    assert scenario.listing(pv) == sorted(["secret", ".hidden", "deep", "deep/a", "deep/a/b"])
    assert scenario.pv(pv)["spec"].get("claimRef")
    events = [e for e in scenario.events(pv) if e["reason"] == "RecycleFailed"]
    assert any(why in e["message"] for e in events), events
    assert f"pv/{pv}: " in result.stdout and why in result.stdout


@pytest.fixture
def fuse(scenario: Scenario) -> Scenario:
    return scenario


@pytest.fixture(params=["fuse", "gfapi"])
def any_backend(request: pytest.FixtureRequest) -> tuple[str, Scenario]:
    """Each backend in turn: FUSE as root, gfapi as uid 65534 without capabilities."""
    name = "scenario" if request.param == "fuse" else "nobody"
    return request.param, request.getfixturevalue(name)


def test_a_tls_volume_is_recycled_with_the_fork_secret_layout(
    any_backend: tuple[str, Scenario],
) -> None:
    backend, scenario = any_backend
    pki = Pki.create(scenario.tmp / "pki")
    tls_pv, plain_pv = _tls_and_plain(scenario, pki)
    result = _run(scenario, pki.client_dir("recycler-secrets"), backend)
    assert result.code == 0, result.stderr
    _assert_recycled(scenario, result, tls_pv)
    _assert_recycled(scenario, result, plain_pv)
    if backend == "fuse":
        # The client's graph names our files, not the bricks' files the volume file gives.
        log = (scenario.tmp / "logs" / f"fuse-{tls_pv}.log").read_text()
        assert f"ssl-own-cert {pki.root}/recycler-secrets/tls.crt" in log
        assert f"ssl-ca-list {pki.root}/recycler-secrets/tls.ca" in log


def test_gluster_file_names_work_too(fuse: Scenario) -> None:
    pki = Pki.create(fuse.tmp / "pki")
    tls_pv, plain_pv = _tls_and_plain(fuse, pki)
    result = _run(fuse, pki.client_dir("glusterfs", names=GLUSTER), "fuse")
    assert result.code == 0, result.stderr
    _assert_recycled(fuse, result, tls_pv)
    _assert_recycled(fuse, result, plain_pv)


def test_a_wrong_ca_fails_the_tls_volume_only(any_backend: tuple[str, Scenario]) -> None:
    """The server's certificate is not signed by the CA we are given: no connection, no
    wipe; the plain volume of the same pass is recycled."""
    backend, scenario = any_backend
    pki = Pki.create(scenario.tmp / "pki")
    tls_pv, plain_pv = _tls_and_plain(scenario, pki)
    result = _run(scenario, pki.client_dir("wrong-ca", ca="wrong-ca"), backend)
    assert result.code == 1, result.stderr
    _assert_failed_untouched(scenario, result, tls_pv, "certificate verify failed")
    _assert_recycled(scenario, result, plain_pv)


def test_a_missing_key_fails_the_tls_volume_only(any_backend: tuple[str, Scenario]) -> None:
    backend, scenario = any_backend
    pki = Pki.create(scenario.tmp / "pki")
    tls_pv, plain_pv = _tls_and_plain(scenario, pki)
    result = _run(scenario, pki.client_dir("no-key", without=("tls.key",)), backend)
    assert result.code == 1, result.stderr
    _assert_failed_untouched(scenario, result, tls_pv, "tls.key is missing in")
    _assert_recycled(scenario, result, plain_pv)


def test_a_tls_volume_without_tls_files_is_a_clear_failure(nobody: NobodyScenario) -> None:  # noqa: F811
    pki = Pki.create(nobody.tmp / "pki")
    tls_pv, plain_pv = _tls_and_plain(nobody, pki)
    result = nobody.run()
    assert result.code == 1, result.stderr
    _assert_failed_untouched(nobody, result, tls_pv, "no TLS files are configured")
    _assert_recycled(nobody, result, plain_pv)


def test_the_management_switch_reaches_the_gluster_cli(
    gluster_volume: VolumeFactory, tmp_path: Path
) -> None:
    """This machine's glusterd has no management TLS: with the switch on, the CLI speaks TLS
    to it and is refused; off, the same call answers. (A failed handshake is all glusterd
    sees: the other tests on it are not disturbed.)"""
    handle = gluster_volume()
    pki = Pki.create(tmp_path / "pki")
    directory = str(pki.client_dir("secret"))
    gluster_cli.set_cli_log_file(str(tmp_path / "cli.log"))
    try:
        tls.configure(tls.load(directory, management=False))
        assert gluster_cli.volume_info(handle.hosts, handle.name, timeout=20).name == handle.name
        tls.configure(tls.load(directory, management=True))
        with pytest.raises(GlusterError, match="no gluster host answered"):
            gluster_cli.volume_info(handle.hosts, handle.name, timeout=20)
    finally:
        tls.configure(None)
        gluster_cli.set_cli_log_file(None)
    assert "SSL routines" in (tmp_path / "cli.log").read_text()  # it did try TLS


def test_a_dry_run_says_which_tls_volume_would_be_refused(fuse: Scenario) -> None:
    pki = Pki.create(fuse.tmp / "pki")
    tls_pv, plain_pv = _tls_and_plain(fuse, pki)
    directory = pki.client_dir("no-key", without=("tls.key",))
    result = fuse.run("--tls-dir", str(directory), "--dry-run")
    assert result.code == 0, result.stderr
    refused = result.volume(tls_pv)
    assert refused["outcome"] == "would-refuse", refused
    assert "tls.key is missing in" in refused["reason"], refused
    assert result.volume(plain_pv)["outcome"] == "would-recycle"
    assert len(fuse.listing(tls_pv)) == 5 and fuse.listing(plain_pv) == ["d", "d/f", "plain"]


def test_a_subdirectory_pv_on_a_tls_volume_is_recycled_and_the_rest_stays(fuse: Scenario) -> None:
    """`glusterfs --subdir-mount` gives the mount the source `mount.glusterfs` would, so the
    mount checks hold as before; only the PV's directory is emptied."""
    pki = Pki.create(fuse.tmp / "pki")
    handle = fuse.volume_factory(subdir="pv/data", options=pki.server_options())
    fuse.gluster.write_files(handle, {"pv/data/tenant": "x", "pv/other/keep": "y"})
    pv = fuse.released_volume("tls-sub", path=handle.path)
    fuse.volumes[pv] = handle
    result = _run(fuse, pki.client_dir("secret"), "fuse")
    assert result.code == 0, result.stderr
    _assert_recycled(fuse, result, pv)
    with fuse.gluster.mounted(handle) as root:
        assert sorted(os.listdir(os.path.join(root, "pv"))) == ["data", "other"]
        assert os.listdir(os.path.join(root, "pv", "other")) == ["keep"]
