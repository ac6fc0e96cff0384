"""The clean copy a re-created PV is made from."""

from __future__ import annotations

from typing import Any

from recycler_job.decide import FIRST_SEEN_ANNOTATION
from recycler_job.journal import BOUND_BY_CONTROLLER, clean_copy, released_claim_ref


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
