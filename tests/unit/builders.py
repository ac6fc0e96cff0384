"""Small builders for PV and PVC API dicts, shaped like what the API returns."""

from typing import Any

NO_PLUGIN = "No recycler plugin found for the volume!"
OLD_NO_PLUGIN = "no volume plugin matched"
_UNSET: Any = object()


def make_pv(
    name: str = "pv-a",
    *,
    phase: str | None = "Failed",
    message: str | None = NO_PLUGIN,
    policy: str | None = "Recycle",
    claim: tuple[str, str] | None = ("default", "data"),
    claim_uid: str | None = "uid-old-1234567890",
    source: dict[str, Any] | None = _UNSET,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    last_transition: str | None = "2024-01-01T00:00:00Z",
    deletion_timestamp: str | None = None,
) -> dict[str, Any]:
    """A glusterfs PV, Failed after its claim `default/data` was deleted, unless told otherwise.

    `source=None` gives a PV with no glusterfs source; `claim=None` gives no claimRef.
    """
    meta: dict[str, Any] = {"name": name, "uid": f"pv-uid-{name}"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    if deletion_timestamp is not None:
        meta["deletionTimestamp"] = deletion_timestamp
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"]}
    if source is _UNSET:
        spec["glusterfs"] = {"endpoints": "glusterfs-cluster", "path": f"vol-{name}"}
    elif source is not None:
        spec.update(source)
    if policy is not None:
        spec["persistentVolumeReclaimPolicy"] = policy
    if claim is not None:
        ref: dict[str, Any] = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": claim[0],
            "name": claim[1],
        }
        if claim_uid is not None:
            ref["uid"] = claim_uid
        spec["claimRef"] = ref
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if message is not None:
        status["message"] = message
    if last_transition is not None:
        status["lastPhaseTransitionTime"] = last_transition
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def make_pvc(
    namespace: str = "default",
    name: str = "data",
    uid: str | None = "uid-new-0000000000",
    volume_name: str | None = None,
) -> dict[str, Any]:
    """A PVC; `volume_name` sets `spec.volumeName` (a claim asking for a specific PV)."""
    meta: dict[str, Any] = {"namespace": namespace, "name": name}
    if uid is not None:
        meta["uid"] = uid
    spec: dict[str, Any] = {"accessModes": ["ReadWriteMany"]}
    if volume_name is not None:
        spec["volumeName"] = volume_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}
