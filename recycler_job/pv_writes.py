"""Every body this tool writes to a PV, built in one place so each write says the same thing.

The release (`release_patch`, `--mode patch`) and the clean copy (`recreated`, `--mode
recreate`) do what the PV controller's unbindVolume does after its own recycle, and stamp
`last-recycled`; `first_seen_patch` starts the --min-age clock. Pure: the callers (act.py,
journal.py, runner.py) send them.
"""

from __future__ import annotations

import copy
from typing import Any

from recycler_job.decide import APPUIO_FAILED_AT_ANNOTATION, FIRST_SEEN_ANNOTATION

BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
PV_PROTECTION = "kubernetes.io/pv-protection"
# Annotations the control plane writes; a re-created PV must not carry them. provisioned-by
# is the exception: it names the provisioner that owns the volume, and the admin's record.
SYSTEM_ANNOTATION_PREFIXES = ("pv.kubernetes.io/", "kubectl.kubernetes.io/last-applied")
KEPT_SYSTEM_ANNOTATIONS = frozenset({PROVISIONED_BY})
RECYCLED_ANNOTATION = "gluster-recycler/last-recycled"
# What a recycle ends: the --min-age clock of the PV's previous claim and the appuio stamp.
_DROPPED_ON_RELEASE = (FIRST_SEEN_ANNOTATION, APPUIO_FAILED_AT_ANNOTATION)


def released_claim_ref(pv: dict[str, Any]) -> dict[str, Any] | None:
    """The claimRef the PV keeps once recycled, as the PV controller's unbindVolume leaves it.

    Bound by the controller (annotation `pv.kubernetes.io/bound-by-controller`, any value):
    none. Pre-bound by an admin: the same namespace and name without the claim's uid (and
    its resourceVersion), so the PV stays reserved for a new claim of that name.
    """
    meta = pv.get("metadata") or {}
    ref = (pv.get("spec") or {}).get("claimRef")
    if BOUND_BY_CONTROLLER in (meta.get("annotations") or {}) or not isinstance(ref, dict):
        return None
    return {key: value for key, value in ref.items() if key not in ("uid", "resourceVersion")}


def clean_copy(pv: dict[str, Any], drop_annotations: tuple[str, ...] = ()) -> dict[str, Any]:
    """The PV as an admin would have created it, released as the PV controller releases it.

    Name, labels, user annotations and `provisioned-by`, finalizers the admin set (not
    `kubernetes.io/pv-protection`, which the server adds), the spec with claimRef reduced to
    the reservation `released_claim_ref` keeps; no status, uid, resourceVersion or
    managedFields.
    """
    meta = pv.get("metadata") or {}
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if (key in KEPT_SYSTEM_ANNOTATIONS or not key.startswith(SYSTEM_ANNOTATION_PREFIXES))
        and key not in drop_annotations
    }
    finalizers = [f for f in meta.get("finalizers") or [] if f != PV_PROTECTION]
    spec = copy.deepcopy(pv.get("spec") or {})
    spec.pop("claimRef", None)
    if (reservation := released_claim_ref(pv)) is not None:
        spec["claimRef"] = copy.deepcopy(reservation)
    new_meta: dict[str, Any] = {"name": meta["name"]}
    if meta.get("labels"):
        new_meta["labels"] = dict(meta["labels"])
    if annotations:
        new_meta["annotations"] = annotations
    if finalizers:
        new_meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": new_meta, "spec": spec}


def release_patch(pv: dict[str, Any], now: str) -> dict[str, Any]:
    """The merge patch that does what the PV controller's unbindVolume does after its own
    recycle: a PV the controller bound loses claimRef and `bound-by-controller`; a PV an
    admin pre-bound keeps claimRef's namespace and name (loses uid and resourceVersion),
    so it stays reserved for a claim of that name. The resourceVersion is a precondition.
    """
    meta = pv["metadata"]
    annotations: dict[str, Any] = dict.fromkeys(_DROPPED_ON_RELEASE)
    annotations[RECYCLED_ANNOTATION] = now
    if released_claim_ref(pv) is None:
        claim_ref: dict[str, Any] | None = None
        annotations[BOUND_BY_CONTROLLER] = None
    else:
        claim_ref = {"uid": None, "resourceVersion": None}
    return {
        "metadata": {"resourceVersion": meta["resourceVersion"], "annotations": annotations},
        "spec": {"claimRef": claim_ref},
    }


def recreated(pv: dict[str, Any], now: str) -> dict[str, Any]:
    """The clean copy `--mode recreate` creates: released as `release_patch` releases."""
    clean = clean_copy(pv, drop_annotations=_DROPPED_ON_RELEASE)
    clean["metadata"].setdefault("annotations", {})[RECYCLED_ANNOTATION] = now
    return clean


def first_seen_patch(pv: dict[str, Any], value: str) -> dict[str, Any]:
    """The merge patch that starts the --min-age clock (`value`: decide.first_seen_value);
    the resourceVersion precondition keeps a rebind since the listing from getting it."""
    return {
        "metadata": {
            "resourceVersion": pv["metadata"]["resourceVersion"],
            "annotations": {FIRST_SEEN_ANNOTATION: value},
        }
    }
