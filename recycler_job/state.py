"""The cluster as one pass sees it: PVs and claims read once, indexed for the decision rules."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ClaimKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class ClusterSnapshot:
    """PVs (API JSON dicts) and every PVC, indexed by (namespace, name) and by `spec.volumeName`."""

    pvs: list[dict[str, Any]]
    claims: dict[ClaimKey, dict[str, Any]] = field(default_factory=dict)
    claims_by_volume: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, pvs: Iterable[dict[str, Any]], claims: Iterable[dict[str, Any]]
    ) -> "ClusterSnapshot":
        """Index `claims` for the lookups `decide` needs."""
        by_key: dict[ClaimKey, dict[str, Any]] = {}
        by_volume: dict[str, list[dict[str, Any]]] = {}
        for claim in claims:
            meta = claim.get("metadata") or {}
            by_key[(meta.get("namespace", ""), meta.get("name", ""))] = claim
            volume = (claim.get("spec") or {}).get("volumeName")
            if volume:
                by_volume.setdefault(volume, []).append(claim)
        return cls(pvs=list(pvs), claims=by_key, claims_by_volume=by_volume)

    def claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The PVC `namespace/name`, or None when it does not exist."""
        return self.claims.get((namespace, name))

    def claims_naming(self, pv_name: str) -> list[dict[str, Any]]:
        """PVCs whose `spec.volumeName` is `pv_name`."""
        return self.claims_by_volume.get(pv_name, [])
