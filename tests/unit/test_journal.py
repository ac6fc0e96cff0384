"""The clean copy a re-created PV is made from, the ambiguous delete, and replay's refusals."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from recycler_job.api_errors import ClusterUnavailable, Conflict
from recycler_job.decide import FIRST_SEEN_ANNOTATION
from recycler_job.journal import Journal
from recycler_job.kube import CONFIGMAP
from recycler_job.pv_writes import BOUND_BY_CONTROLLER, clean_copy, released_claim_ref


def released_pv() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": "pv1",
            "uid": "u-1",
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["kubernetes.io/pv-protection"],
            "managedFields": [{"manager": "kubectl"}],
            "labels": {"team": "a"},
            "annotations": {
                "pv.kubernetes.io/bound-by-controller": "yes",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                FIRST_SEEN_ANNOTATION: "2026-01-01T00:00:00Z",
                "owner": "ops",
            },
        },
        "spec": {
            "capacity": {"storage": "1Gi"},
            "storageClassName": "gold",
            "persistentVolumeReclaimPolicy": "Recycle",
            "glusterfs": {"endpoints": "ep", "path": "vol"},
            "claimRef": {"namespace": "ns", "name": "c", "uid": "c-1"},
            "mountOptions": ["log-level=WARNING"],
        },
        "status": {"phase": "Failed", "message": "No recycler plugin found for the volume!"},
    }


def test_clean_copy_keeps_what_the_admin_wrote() -> None:
    clean = clean_copy(released_pv(), drop_annotations=(FIRST_SEEN_ANNOTATION,))
    assert clean["metadata"] == {
        "name": "pv1",
        "labels": {"team": "a"},
        "annotations": {"owner": "ops"},
    }
    assert "claimRef" not in clean["spec"]
    assert clean["spec"]["storageClassName"] == "gold"
    assert clean["spec"]["mountOptions"] == ["log-level=WARNING"]
    assert "status" not in clean


def test_clean_copy_does_not_alias_the_original() -> None:
    pv = released_pv()
    clean = clean_copy(pv)
    clean["spec"]["capacity"]["storage"] = "2Gi"
    clean["metadata"]["labels"]["team"] = "b"
    assert pv["spec"]["capacity"]["storage"] == "1Gi"
    assert pv["metadata"]["labels"]["team"] == "a"
    assert pv["spec"]["claimRef"]["name"] == "c"


def test_clean_copy_keeps_admin_finalizers_and_provisioned_by() -> None:
    pv = released_pv()
    pv["metadata"]["finalizers"] = ["kubernetes.io/pv-protection", "example.com/backup-hold"]
    pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] = "kubernetes.io/glusterfs"
    pv["metadata"]["annotations"]["pv.kubernetes.io/migrated-to"] = "x"
    clean = clean_copy(pv)
    assert clean["metadata"]["finalizers"] == ["example.com/backup-hold"]
    assert clean["metadata"]["annotations"] == {
        "pv.kubernetes.io/provisioned-by": "kubernetes.io/glusterfs",
        FIRST_SEEN_ANNOTATION: "2026-01-01T00:00:00Z",
        "owner": "ops",
    }


def prebound_pv() -> dict[str, Any]:
    """An admin wrote claimRef {namespace, name}: no bound-by-controller annotation."""
    pv = released_pv()
    del pv["metadata"]["annotations"][BOUND_BY_CONTROLLER]
    pv["spec"]["claimRef"] = {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": "ns",
        "name": "c",
        "uid": "c-1",
        "resourceVersion": "77",
    }
    return pv


def test_release_of_a_pv_the_controller_bound_drops_claim_ref() -> None:
    pv = released_pv()
    assert released_claim_ref(pv) is None
    pv["metadata"]["annotations"][BOUND_BY_CONTROLLER] = ""  # any value: the key counts
    assert released_claim_ref(pv) is None
    clean = clean_copy(pv)
    assert "claimRef" not in clean["spec"]
    assert BOUND_BY_CONTROLLER not in clean["metadata"]["annotations"]


def test_release_of_a_prebound_pv_keeps_the_reservation() -> None:
    pv = prebound_pv()
    reservation = {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": "ns",
        "name": "c",
    }
    assert released_claim_ref(pv) == reservation
    clean = clean_copy(pv)
    assert clean["spec"]["claimRef"] == reservation
    clean["spec"]["claimRef"]["name"] = "changed"
    assert pv["spec"]["claimRef"]["name"] == "c"


# --- the ambiguous delete and replay's refusals, against a small in-memory API -------------


class MemoryApi:
    """The PVs and the one ConfigMap the journal uses, with the API's answers to its writes.

    `delete_outcome` says what the next DELETE of a PV does: "lost-reply" deletes it and then
    fails as a read timeout does; "not-sent" fails without deleting; "terminating" marks it
    deleting (a finalizer holds it), gone at the next read, then fails.
    """

    def __init__(self) -> None:
        self.pvs: dict[str, dict[str, Any]] = {}
        self.configmap: dict[str, Any] | None = None
        self.delete_outcome = "ok"
        self.fail_create = False
        self.calls: list[str] = []
        self._serial = 0

    def _uid(self) -> str:
        self._serial += 1
        return f"uid-{self._serial}"

    def get_or_none(self, kind: Any, name: str, namespace: str | None = None) -> Any:
        if kind == CONFIGMAP:
            return json.loads(json.dumps(self.configmap)) if self.configmap else None
        pv = self.pvs.get(name)
        if pv is not None and pv["metadata"].get("deletionTimestamp") == "gone-at-next-read":
            pv["metadata"]["deletionTimestamp"] = "2026-12-05T00:00:00Z"
        elif pv is not None and pv["metadata"].get("deletionTimestamp"):
            del self.pvs[name]
            return None
        return copy.deepcopy(pv)

    def create(self, kind: Any, body: dict[str, Any], namespace: str | None = None) -> Any:
        name = body["metadata"]["name"]
        self.calls.append(f"create {kind.kind} {name}")
        if kind == CONFIGMAP:
            self.configmap = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
            return self.configmap
        if self.fail_create:
            raise ClusterUnavailable("create PersistentVolume: cannot reach the API server")
        if name in self.pvs:
            raise Conflict(f"create PersistentVolume {name}: already exists", 409)
        self.pvs[name] = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "uid": self._uid()},
        }
        self.calls.append(f"  record then: {sorted((self.configmap or {}).get('data') or {})}")
        return self.pvs[name]

    def replace(self, kind: Any, body: dict[str, Any], namespace: str | None = None) -> Any:
        self.calls.append(f"replace {kind.kind}")
        self.configmap = copy.deepcopy(body)
        return self.configmap

    def delete(self, kind: Any, name: str, *, uid: str, resource_version: str) -> Any:
        self.calls.append(f"delete {name}")
        timeout = ClusterUnavailable(f"delete {name}: cannot reach the API server (timed out)")
        if self.delete_outcome == "not-sent":
            raise timeout
        if self.delete_outcome == "terminating":
            self.pvs[name]["metadata"]["deletionTimestamp"] = "gone-at-next-read"
            raise timeout
        del self.pvs[name]
        if self.delete_outcome == "lost-reply":
            raise timeout
        return {}


def _journal(api: MemoryApi) -> Journal:
    return Journal(api, "ns", "gluster-recycler-recreate")  # type: ignore[arg-type]


def _stored(api: MemoryApi) -> dict[str, Any]:
    pv = released_pv()
    del pv["status"]
    api.pvs["pv1"] = pv
    return pv


def _records(api: MemoryApi) -> dict[str, str]:
    return dict((api.configmap or {}).get("data") or {})


def test_a_delete_whose_reply_was_lost_recreates_the_pv_then_forgets_the_record() -> None:
    api = MemoryApi()
    pv = _stored(api)
    api.delete_outcome = "lost-reply"
    _journal(api).recreate(pv, clean_copy(pv))
    assert api.pvs["pv1"]["metadata"]["labels"] == {"team": "a"}
    assert api.pvs["pv1"]["metadata"]["uid"] != "u-1"
    assert _records(api) == {}
    # the record was still there when the PV was created, and dropped only after
    created = api.calls.index("create PersistentVolume pv1")
    assert api.calls[created + 1] == "  record then: ['pv1']"
    assert api.calls[created + 2 :] == ["replace ConfigMap"]


def test_a_delete_that_never_happened_drops_the_record_and_reports_the_error() -> None:
    api = MemoryApi()
    pv = _stored(api)
    api.delete_outcome = "not-sent"
    with pytest.raises(ClusterUnavailable, match="timed out"):
        _journal(api).recreate(pv, clean_copy(pv))
    assert api.pvs["pv1"]["metadata"]["uid"] == "u-1"
    assert _records(api) == {}
    assert not [call for call in api.calls if call.startswith("create PersistentVolume")]


def test_a_delete_that_failed_but_is_under_way_waits_and_recreates() -> None:
    api = MemoryApi()
    pv = _stored(api)
    api.delete_outcome = "terminating"
    _journal(api).recreate(pv, clean_copy(pv))
    assert api.pvs["pv1"]["metadata"]["uid"] != "u-1"
    assert _records(api) == {}


def test_a_failed_create_after_a_lost_reply_keeps_the_record() -> None:
    api = MemoryApi()
    pv = _stored(api)
    api.delete_outcome = "lost-reply"
    api.fail_create = True
    with pytest.raises(ClusterUnavailable):
        _journal(api).recreate(pv, clean_copy(pv))
    assert "pv1" not in api.pvs
    assert list(_records(api)) == ["pv1"]


def _record_of(pv: dict[str, Any], uid: str = "u-1") -> dict[str, str]:
    return {"pv1": json.dumps({"uid": uid, "pv": pv})}


def _forged(change: Any) -> dict[str, Any]:
    pv = clean_copy(prebound_pv())
    change(pv)
    return pv


REFUSED: dict[str, tuple[Any, str]] = {
    "hostPath": (
        lambda pv: pv["spec"].update(hostPath={"path": "/"}),
        "spec carries hostPath",
    ),
    "hostPath instead of glusterfs": (
        lambda pv: (pv["spec"].pop("glusterfs"), pv["spec"].update(hostPath={"path": "/"})),
        "spec carries hostPath",
    ),
    "no source": (lambda pv: pv["spec"].pop("glusterfs"), "no glusterfs source"),
    "glusterfs without path": (
        lambda pv: pv["spec"]["glusterfs"].pop("path"),
        "no glusterfs source",
    ),
    "csi": (lambda pv: pv["spec"].update(csi={"driver": "x"}), "spec carries csi"),
    "claimRef with uid": (
        lambda pv: pv["spec"]["claimRef"].update(uid="c-9"),
        "claimRef carries uid",
    ),
    "claimRef with resourceVersion": (
        lambda pv: pv["spec"]["claimRef"].update(resourceVersion="5"),
        "claimRef carries resourceVersion",
    ),
    "claimRef to another kind": (
        lambda pv: pv["spec"]["claimRef"].update(kind="Pod"),
        "names a Pod",
    ),
    "status": (lambda pv: pv.update(status={"phase": "Bound"}), "PV carries status"),
    "another kind": (lambda pv: pv.update(kind="Pod"), "not a v1 PersistentVolume"),
    "another apiVersion": (lambda pv: pv.update(apiVersion="v2"), "not a v1 PersistentVolume"),
    "another name": (lambda pv: pv["metadata"].update(name="pv2"), "unreadable"),
    "its own uid": (lambda pv: pv["metadata"].update(uid="u-7"), "metadata carries uid"),
    "a namespace": (lambda pv: pv["metadata"].update(namespace="x"), "metadata carries namespace"),
    "bound-by-controller": (
        lambda pv: (
            pv["metadata"].setdefault("annotations", {}).update({BOUND_BY_CONTROLLER: "yes"})
        ),
        "control-plane annotations",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_replay_refuses_and_keeps_a_record_this_tool_could_not_have_written(case: str) -> None:
    change, reason = REFUSED[case]
    api = MemoryApi()
    forged = _forged(change)
    api.configmap = {"metadata": {"name": "r"}, "data": _record_of(forged)}
    (done,) = _journal(api).replay()
    assert reason in done.error
    assert "kept" in done.line
    assert api.pvs == {}
    assert list(_records(api)) == ["pv1"]


def test_replay_refuses_a_record_without_the_deleted_uid() -> None:
    api = MemoryApi()
    api.configmap = {"metadata": {"name": "r"}, "data": _record_of(clean_copy(released_pv()), "")}
    (done,) = _journal(api).replay()
    assert "no uid" in done.error
    assert api.pvs == {}


@pytest.mark.parametrize("pv", [released_pv(), prebound_pv()], ids=["controller", "prebound"])
def test_replay_recreates_what_this_tool_writes(pv: dict[str, Any]) -> None:
    api = MemoryApi()
    api.configmap = {"metadata": {"name": "r"}, "data": _record_of(clean_copy(pv))}
    (done,) = _journal(api).replay()
    assert done.error == ""
    assert api.pvs["pv1"]["spec"]["glusterfs"] == {"endpoints": "ep", "path": "vol"}
    assert _records(api) == {}
