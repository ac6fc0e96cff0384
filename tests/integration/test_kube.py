"""The kube adapter against the real API server: pagination, 410 restarts, error mapping."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from recycler_job.api_errors import ClusterUnavailable, Expired, NotFound
from recycler_job.config import load_config
from recycler_job.errors import RecyclerError
from recycler_job.exit_codes import ExitCode
from recycler_job.kube import PV, Kube
from recycler_job.runner import Runner
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.objects import gluster_pv

pytestmark = pytest.mark.cluster


def make_pvs(kube: Kube, unique: str, count: int) -> None:
    for i in range(count):
        kube.create(PV, gluster_pv(f"page-{unique}-{i:03}", "vol", labels={"batch": unique}))


def test_list_follows_continue_tokens(kube: Kube, unique: str) -> None:
    make_pvs(kube, unique, 25)
    before = kube.requests
    items, pages = kube.list_items(PV, label_selector=f"batch={unique}", page_size=10)
    assert pages == 3
    assert kube.requests - before == 3
    assert sorted(i["metadata"]["name"] for i in items) == [
        f"page-{unique}-{i:03}" for i in range(25)
    ]


class StaleTokenOnce(Kube):
    """Hands the server a continue token that etcd has compacted away, once."""

    def __init__(self, dyn: Any, stale: str) -> None:
        super().__init__(dyn)
        self.stale: str | None = stale
        self.expired_seen = 0

    def _call(self, verb: str, kind: Any, what: str, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("_continue") and self.stale:
            kwargs["_continue"], self.stale = self.stale, None
            try:
                return super()._call(verb, kind, what, **kwargs)
            except Expired:
                self.expired_seen += 1
                raise
        return super()._call(verb, kind, what, **kwargs)


def test_expired_continue_token_restarts_the_list(kube: Kube, unique: str) -> None:
    make_pvs(kube, unique, 5)
    first = kube._call("get", PV, "list", label_selector=f"batch={unique}", limit=2)
    stale = first["metadata"]["continue"]
    # Write, then wait for the API server's compaction (every 10s in the sandbox) to pass
    # the token's revision.
    for i in range(3):
        kube.create(PV, gluster_pv(f"page-{unique}-x{i}", "vol", labels={"batch": unique}))
    adapter = StaleTokenOnce(kube._dyn, stale)
    deadline = time.monotonic() + 40
    while True:
        try:
            adapter._call(
                "get", PV, "probe", label_selector=f"batch={unique}", limit=2, _continue=stale
            )
        except Expired:
            break
        assert time.monotonic() < deadline, "token never expired"
        time.sleep(1)
    adapter.stale = stale
    items, _pages = adapter.list_items(PV, label_selector=f"batch={unique}", page_size=2)
    assert adapter.expired_seen == 1
    names = [i["metadata"]["name"] for i in items]
    assert len(names) == len(set(names)) == 8


def test_errors_are_translated(control_plane: ControlPlane, kube: Kube, tmp_path: Any) -> None:
    with pytest.raises(NotFound):
        kube.get(PV, "does-not-exist")
    assert kube.get_or_none(PV, "does-not-exist") is None
    bad = tmp_path / "kubeconfig"
    bad.write_text(
        control_plane.kubeconfig.read_text().replace(
            f"127.0.0.1:{control_plane.api_port}", "127.0.0.1:1"
        )
    )
    with pytest.raises(ClusterUnavailable):
        Kube.connect(str(bad)).list_items(PV)


def _exit_code(kubeconfig: Path, namespace: str, tmp_path: Path) -> int:
    """A whole pass with these credentials, as far as it gets."""
    config = load_config(
        ["--kubeconfig", str(kubeconfig), "--lease-namespace", namespace],
        {"GLUSTER_LOG_DIR": str(tmp_path / "logs")},
        namespace_file="/nonexistent",
    )
    return Runner(config).run().exit_code


def test_forbidden_is_permanent_and_keeps_the_api_status(
    control_plane: ControlPlane, unique: str, tmp_path: Path
) -> None:
    """A ServiceAccount without any Role: 403 with the server's Status, exit 3."""
    ns = f"deny-{unique}"
    control_plane.run_kubectl("create", "namespace", ns)
    try:
        control_plane.run_kubectl("create", "serviceaccount", "nobody", "-n", ns)
        kubeconfig = control_plane.service_account_kubeconfig(ns, "nobody")
        with pytest.raises(ClusterUnavailable) as info:
            Kube.connect(str(kubeconfig)).list_items(PV)
        error = info.value
        assert isinstance(error, RecyclerError)
        assert not error.transient
        assert error.status == 403 and error.api_status is not None
        assert (error.api_status.code, error.api_status.reason) == (403, "Forbidden")
        assert error.api_status.details.get("kind") == "persistentvolumes"
        assert "cannot list resource" in error.api_status.message
        assert str(error) == f"list PersistentVolume: {error.api_status.message}"
        assert _exit_code(kubeconfig, ns, tmp_path) == ExitCode.CLUSTER_UNAVAILABLE
    finally:
        control_plane.run_kubectl("delete", "namespace", ns, "--wait=false")


def test_a_refused_token_is_permanent(control_plane: ControlPlane, tmp_path: Path) -> None:
    """401: the server does not accept the credentials at all."""
    data = yaml.safe_load(control_plane.kubeconfig.read_text())
    for user in data["users"]:
        user["user"] = {"token": "not-a-valid-token"}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterUnavailable) as info:
        Kube.connect(str(kubeconfig)).list_items(PV)
    assert not info.value.transient
    assert info.value.api_status is not None
    assert (info.value.api_status.code, info.value.api_status.reason) == (401, "Unauthorized")
    assert _exit_code(kubeconfig, "default", tmp_path) == ExitCode.CLUSTER_UNAVAILABLE


def test_a_closed_port_is_transient(control_plane: ControlPlane, tmp_path: Path) -> None:
    """Nothing listens: no Status at all, a transient failure, exit 3."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        control_plane.kubeconfig.read_text().replace(
            f"127.0.0.1:{control_plane.api_port}", f"127.0.0.1:{port}"
        )
    )
    with pytest.raises(ClusterUnavailable) as info:
        Kube.connect(str(kubeconfig)).list_items(PV)
    assert info.value.transient
    assert info.value.status is None and info.value.api_status is None
    assert "cannot reach the API server" in str(info.value)
    assert _exit_code(kubeconfig, "default", tmp_path) == ExitCode.CLUSTER_UNAVAILABLE
