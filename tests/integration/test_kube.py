"""The kube adapter against the real API server: pagination, 410 restarts, error mapping."""

from __future__ import annotations

import time
from typing import Any

import pytest

from recycler_job.kube import PV, ClusterUnavailable, Expired, Kube, NotFound
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
