"""The cluster as one pass sees it: PVs and claims read once, indexed for the decision rules."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import Any

ClaimKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, order=True)
class VolumeUse:
    """One PV naming a gluster volume: its name and `spec.glusterfs.path` split into parts.

    `parts[0]` is the volume name. Parts are the path's components with empty ones and `.`
    dropped, so `/shared/`, `shared` and `shared//.` are the same; a `..` is kept (the rules
    cannot tell what it names, so they assume the worst).
    """

    pv: str
    parts: tuple[str, ...]


def gluster_path_parts(pv: dict[str, Any]) -> tuple[str, ...]:
    """The components of the PV's `spec.glusterfs.path`, () when it names no gluster volume.

    Deliberately more lenient than `describe_source`: a PV too malformed to be recycled may
    still hold a volume's data, so it must still be seen by the shared-volume rule.
    """
    src = (pv.get("spec") or {}).get("glusterfs")
    path = src.get("path") if isinstance(src, dict) else None
    if not isinstance(path, str):
        return ()
    return tuple(part for part in path.split("/") if part not in ("", "."))


def index_by_volume(pvs: Iterable[dict[str, Any]]) -> dict[str, list[VolumeUse]]:
    """PVs by the gluster volume their path names; the first PV of a name wins."""
    index: dict[str, list[VolumeUse]] = {}
    seen: set[str] = set()
    for pv in pvs:
        parts = gluster_path_parts(pv)
        if not parts:
            continue
        name = str((pv.get("metadata") or {}).get("name") or "")
        if name not in seen:
            seen.add(name)
            index.setdefault(parts[0], []).append(VolumeUse(name, parts))
    return index


@dataclass(frozen=True)
class ClusterSnapshot:
    """PVs (API JSON dicts) and every PVC, indexed by (namespace, name) and by `spec.volumeName`.

    PVs are also indexed by the gluster volume they name, from `pvs` and `others` (PVs not
    decided on, which may still share a volume). That index is built on first use: an idle
    pass, where no PV gets that far, never pays for it. `volume_index_of` reuses another
    snapshot's index instead (a dry run's re-check).
    """

    pvs: list[dict[str, Any]]
    claims: dict[ClaimKey, dict[str, Any]] = field(default_factory=dict)
    claims_by_volume: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    others: Sequence[dict[str, Any]] = ()
    volume_index_of: "ClusterSnapshot | None" = None

    @classmethod
    def build(
        cls,
        pvs: Iterable[dict[str, Any]],
        claims: Iterable[dict[str, Any]],
        *,
        others: Sequence[dict[str, Any]] = (),
    ) -> "ClusterSnapshot":
        """Index `claims` for the lookups `decide` needs (PVs are indexed when first asked)."""
        by_key: dict[ClaimKey, dict[str, Any]] = {}
        by_volume: dict[str, list[dict[str, Any]]] = {}
        for claim in claims:
            meta = claim.get("metadata") or {}
            by_key[(meta.get("namespace", ""), meta.get("name", ""))] = claim
            volume = (claim.get("spec") or {}).get("volumeName")
            if volume:
                by_volume.setdefault(volume, []).append(claim)
        return cls(pvs=list(pvs), claims=by_key, claims_by_volume=by_volume, others=others)

    def claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The PVC `namespace/name`, or None when it does not exist."""
        return self.claims.get((namespace, name))

    def claims_naming(self, pv_name: str) -> list[dict[str, Any]]:
        """PVCs whose `spec.volumeName` is `pv_name`."""
        return self.claims_by_volume.get(pv_name, [])

    @cached_property
    def _pvs_by_volume(self) -> dict[str, list[VolumeUse]]:
        return index_by_volume(chain(self.pvs, self.others))

    def pvs_on_volume(self, volume: str) -> list[VolumeUse]:
        """Every PV (the one decided on included) whose `spec.glusterfs.path` names `volume`."""
        if self.volume_index_of is not None:
            return self.volume_index_of.pvs_on_volume(volume)
        return self._pvs_by_volume.get(volume, [])
