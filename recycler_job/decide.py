"""Which PVs to recycle: pure rules over one ClusterSnapshot, no I/O and no clock reads.

A wrong wipe destroys data nobody asked us to destroy, so every rule must hold before a PV is
eligible, the safety rules run first, and every "no" carries a reason an admin can act on.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from recycler_job.clock import format_time, parse_time
from recycler_job.selector import Selector, parse_selector
from recycler_job.snapshot import ClusterSnapshot
from recycler_job.sources import GlusterSource, describe_source

if TYPE_CHECKING:
    from recycler_job.config import Config

SKIP_ANNOTATION = "gluster-recycler/skip"
FIRST_SEEN_ANNOTATION = "gluster-recycler/first-seen"
# The appuio fork's stamp of when it first saw the PV released (`date -Is`); see docs/upgrade.md.
APPUIO_FAILED_AT_ANNOTATION = "appuio.ch/failed-at"

# Values of the skip annotation that do NOT skip; any other value (a typo included) skips,
# because guessing "not meant" could wipe a volume an admin tried to protect.
_SKIP_OFF_VALUES = frozenset({"", "false", "no", "0", "off"})


class Action(StrEnum):
    """What to do with one PV this pass."""

    RECYCLE = "recycle"
    WAIT = "wait"  # may become eligible later (too young, max-volumes reached)
    SKIP = "skip"  # not ours to touch in its current state


@dataclass(frozen=True)
class Decision:
    """The verdict on one PV; `mark_first_seen` asks the actions layer to stamp the PV."""

    pv_name: str
    action: Action
    reason: str
    mark_first_seen: bool = False


@dataclass(frozen=True)
class DecideSettings:
    """The subset of Config the rules read, with the selector already parsed."""

    phases: frozenset[str]
    failed_messages: tuple[str, ...]
    reclaim_policies: frozenset[str]
    selector: Selector | None
    min_age: float
    max_volumes: int | None

    @classmethod
    def from_config(cls, config: "Config") -> "DecideSettings":
        """Settings from a validated Config (its selector string already passed validation)."""
        return cls(
            phases=frozenset(config.phases),
            failed_messages=tuple(config.failed_messages),
            reclaim_policies=frozenset(config.reclaim_policies),
            selector=parse_selector(config.selector) if config.selector else None,
            min_age=config.min_age,
            max_volumes=config.max_volumes,
        )


def _short_uid(uid: str) -> str:
    return uid if len(uid) <= 8 else uid[:8] + "…"


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f}s"


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"


def _claim_name(claim: dict[str, Any]) -> str:
    meta = claim.get("metadata") or {}
    return f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"


def _claim_rule(pv: dict[str, Any], snapshot: ClusterSnapshot) -> str | None:
    """Why the PV's claim may still own the data, or None when the claim is gone."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        return "no claimRef: already available"
    if not isinstance(ref, dict):
        return "claimRef is malformed"
    namespace, name, uid = ref.get("namespace"), ref.get("name"), ref.get("uid")
    if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
        return "claimRef has no namespace or name: cannot tell whether its claim is gone"
    claim = snapshot.claim(namespace, name)
    if not uid:
        if claim is None:
            # How an admin pre-binds a PV, and what a release of a pre-bound PV leaves: the
            # volume waits for a claim of this name. No claim was ever bound: nothing to wipe.
            return (
                f"reserved for claim {namespace}/{name} (claimRef without uid): "
                "no claim was bound to it"
            )
        # Without a uid in claimRef we cannot tell a new claim from the original: assume owner.
        return f"claim {namespace}/{name} exists and claimRef has no uid to tell them apart"
    if claim is None:
        return None
    claim_uid = (claim.get("metadata") or {}).get("uid")
    if not claim_uid:
        return f"claim {namespace}/{name} exists but has no uid to compare with claimRef"
    if claim_uid == uid:
        return f"claim {namespace}/{name} still exists (uid {_short_uid(str(uid))})"
    return None


def _overlaps(mine: tuple[str, ...], other: tuple[str, ...]) -> bool:
    """Whether two paths on one volume share data: equal, or one is an ancestor of the other.

    Compared by whole components, so `a/b` and `a/bc` are siblings. A `..` in the other path
    could name anything on the volume: it counts as overlapping.
    """
    if ".." in other:
        return True
    common = min(len(mine), len(other))
    return mine[:common] == other[:common]


def _shared_volume_rule(name: str, source: GlusterSource, snapshot: ClusterSnapshot) -> str | None:
    """Why another PV may own data this wipe would remove, or None when no other PV overlaps.

    Any other PV counts, whatever its phase, reclaim policy or labels: wiping `volume/a`
    destroys `volume/a/b`'s data, and wiping `volume/a/b` destroys part of `volume/a`'s.
    Volumes are matched by name only (two pools cannot be told apart from a PV).
    """
    mine = (source.volume, *(part for part in source.subdir.split("/") if part))
    sharing = sorted(
        use
        for use in snapshot.pvs_on_volume(source.volume)
        if use.pv != name and _overlaps(mine, use.parts)
    )
    if not sharing:
        return None
    shown = ", ".join(f"pv/{use.pv} (path {'/'.join(use.parts)!r})" for use in sharing[:3])
    more = f" and {len(sharing) - 3} more" if len(sharing) > 3 else ""
    return (
        f"gluster volume {source.volume} path {source.path!r} overlaps {shown}{more}: "
        "a wipe would remove data of another PV"
    )


def first_seen_value(pv: dict[str, Any], now: datetime) -> str:
    """The first-seen annotation for `pv` at `now`: `<RFC 3339>;claim=<claimRef uid>`.

    The uid ties the clock to the claim whose deletion started it: after a manual release and
    a rebind, the stamp of the earlier claim must not make the next deletion look old.
    """
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return f"{format_time(now)};claim={ref.get('uid') or ''}"


def parse_first_seen(value: object) -> tuple[datetime | None, str | None]:
    """(time, claim uid) from a first-seen value; None for a part that is absent or malformed."""
    if not isinstance(value, str):
        return None, None
    stamp, _, rest = value.partition(";")
    claim_uid = None
    for item in rest.split(";"):
        key, sep, val = item.strip().partition("=")
        if sep and key == "claim" and val:
            claim_uid = val
    return parse_time(stamp), claim_uid


def _age_rule(pv: dict[str, Any], min_age: float, now: datetime) -> tuple[str, bool] | None:
    """(reason, mark_first_seen) to WAIT while the PV is too young, or None when old enough."""
    if min_age <= 0:
        return None
    meta = pv.get("metadata") or {}
    status = pv.get("status") or {}
    annotations = meta.get("annotations") or {}
    failed_at = parse_time(annotations.get(APPUIO_FAILED_AT_ANNOTATION))
    since = parse_time(status.get("lastPhaseTransitionTime"))
    what = "in its phase"
    if since is None:
        raw_first_seen = annotations.get(FIRST_SEEN_ANNOTATION)
        since, seen_for = parse_first_seen(raw_first_seen)
        what = "first seen"
        claim_uid = ((pv.get("spec") or {}).get("claimRef") or {}).get("uid")
        if raw_first_seen is None and failed_at is not None:
            # Marked by the appuio fork and never by us: its stamp is this release's first
            # sighting (the fork, like us, drops it when it recycles).
            since, what = failed_at, f"failed at ({APPUIO_FAILED_AT_ANNOTATION})"
        elif raw_first_seen is None:
            reason = f"no usable phase transition time: marking first-seen, min-age {min_age:g}s"
            return reason, True
        elif since is None:
            reason = (
                f"unparseable {FIRST_SEEN_ANNOTATION} {str(raw_first_seen)[:60]!r}: "
                f"re-marking first-seen, min-age {min_age:g}s"
            )
            return reason, True
        elif not claim_uid or seen_for != claim_uid:
            # Written for an earlier claim (or by a version that named none): its clock
            # started before this claim was deleted, so it cannot shorten this wait.
            reason = (
                f"{FIRST_SEEN_ANNOTATION} {str(raw_first_seen)[:60]!r} is not for the claim "
                f"in claimRef (uid {_short_uid(str(claim_uid or ''))}): "
                f"re-marking first-seen, min-age {min_age:g}s"
            )
            return reason, True
    if failed_at is not None and failed_at > since:
        # A later failed-at can only postpone: wipe later, never sooner.
        since, what = failed_at, f"failed at ({APPUIO_FAILED_AT_ANNOTATION})"
    age = (now - since).total_seconds()
    if age < min_age:
        return (
            f"too young: {what} {_fmt_seconds(max(age, 0.0))} ago, "
            f"{_fmt_seconds(min_age - age)} left of min-age {min_age:g}s",
            False,
        )
    return None


def decide(
    pv: dict[str, Any], snapshot: ClusterSnapshot, settings: DecideSettings, now: datetime
) -> Decision:
    """Recycle only when every rule holds; otherwise SKIP (or WAIT) naming the first that fails.

    `now` must be timezone-aware (UTC from the caller's clock).
    """
    if now.tzinfo is None:
        raise ValueError("decide: `now` must be timezone-aware")
    meta = pv.get("metadata") or {}
    spec = pv.get("spec") or {}
    status = pv.get("status") or {}
    name = str(meta.get("name") or "")

    def skip(reason: str) -> Decision:
        return Decision(name, Action.SKIP, reason)

    if not name:
        return skip("PV has no name")
    source = describe_source(pv)
    if source is None:
        return skip("not a glusterfs volume")
    if meta.get("deletionTimestamp"):
        return skip("being deleted (deletionTimestamp set)")
    annotations = meta.get("annotations") or {}
    if SKIP_ANNOTATION in annotations:
        value = str(annotations[SKIP_ANNOTATION])
        if value.strip().lower() not in _SKIP_OFF_VALUES:
            return skip(f"annotated {SKIP_ANNOTATION}={value[:40]!r}")
    phase = status.get("phase")
    if phase not in settings.phases:
        return skip(f"phase {phase or 'unknown'} is not one of {_names(settings.phases)}")
    if phase == "Failed":
        message = str(status.get("message") or "").strip()
        if message not in settings.failed_messages:
            return skip(f"failed for a reason not ours to fix: {message[:120]!r}")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy not in settings.reclaim_policies:
        return skip(
            f"reclaim policy {policy or 'unset'} is not one of {_names(settings.reclaim_policies)}"
        )
    if settings.selector is not None and not settings.selector.matches(meta.get("labels") or {}):
        return skip(f"labels do not match selector {settings.selector.text!r}")
    if (claim_reason := _claim_rule(pv, snapshot)) is not None:
        return skip(claim_reason)
    if wanted_by := sorted(_claim_name(claim) for claim in snapshot.claims_naming(name)):
        return skip(f"claim {', '.join(wanted_by)} asks for this volume (spec.volumeName)")
    if (shared_reason := _shared_volume_rule(name, source, snapshot)) is not None:
        return skip(shared_reason)
    if (too_young := _age_rule(pv, settings.min_age, now)) is not None:
        reason, mark = too_young
        return Decision(name, Action.WAIT, reason, mark_first_seen=mark)
    return Decision(name, Action.RECYCLE, "released claim is gone and every rule holds")


def decide_all(
    snapshot: ClusterSnapshot, settings: DecideSettings, now: datetime
) -> list[Decision]:
    """One Decision per PV, sorted by name; eligible PVs past `max_volumes` become WAIT."""
    pvs = sorted(snapshot.pvs, key=lambda pv: str((pv.get("metadata") or {}).get("name") or ""))
    decisions: list[Decision] = []
    eligible = 0
    for pv in pvs:
        decision = decide(pv, snapshot, settings, now)
        if decision.action is Action.RECYCLE:
            eligible += 1
            if settings.max_volumes is not None and eligible > settings.max_volumes:
                decision = replace(
                    decision,
                    action=Action.WAIT,
                    reason=f"max-volumes reached ({settings.max_volumes} per run)",
                )
        decisions.append(decision)
    return decisions


__all__ = [
    "APPUIO_FAILED_AT_ANNOTATION",
    "FIRST_SEEN_ANNOTATION",
    "SKIP_ANNOTATION",
    "Action",
    "DecideSettings",
    "Decision",
    "decide",
    "decide_all",
    "first_seen_value",
    "parse_first_seen",
]
