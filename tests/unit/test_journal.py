"""The clean copy a re-created PV is made from."""

from __future__ import annotations

from typing import Any

from recycler_job.decide import FIRST_SEEN_ANNOTATION
from recycler_job.journal import clean_copy


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
