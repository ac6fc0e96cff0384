"""Recycles one volume: re-check, mount, verify, wipe, unmount, make Available, record an Event.

Every destructive step is preceded by a check that can only stop it: the Lease is still ours,
the pass is not interrupted, the PV and its claims still say "recycle" when read again from the
API, and the mount is a verified glusterfs mount of exactly this volume. Writes carry the
resourceVersion read right before the wipe, so any change in between fails the volume instead
of releasing it. The mount is always undone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from recycler_job import failpoints, gluster, wipe
from recycler_job.clock import Clock, format_time
from recycler_job.config import Config
from recycler_job.decide import FIRST_SEEN_ANNOTATION, Action, DecideSettings, Decision, decide
from recycler_job.events import EventRecorder
from recycler_job.journal import Journal, clean_copy
from recycler_job.kube import (
    ENDPOINTS,
    PV,
    PVC,
    ClusterUnavailable,
    Conflict,
    Kube,
    KubeError,
    NotFound,
)
from recycler_job.lease import LeaseKeeper, LeaseLost
from recycler_job.report import VolumeResult
from recycler_job.sources import GlusterSource, describe_source
from recycler_job.state import ClusterSnapshot

log = logging.getLogger(__name__)

RECYCLED_ANNOTATION = "gluster-recycler/last-recycled"


class VolumeFailure(Exception):
    """This volume cannot be recycled now; the message says why (shown to admins)."""


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived: no new step starts."""


class DeadlineReached(Exception):
    """The run's --deadline passed before this volume started; the next run takes it."""


@dataclass
class Actor:
    """Everything a volume's recycle needs, shared by the worker threads of a pass."""

    kube: Kube
    config: Config
    settings: DecideSettings
    events: EventRecorder
    journal: Journal | None
    keeper: LeaseKeeper | None
    stop: threading.Event
    clock: Clock
    deadline: float | None = None  # time.monotonic() after which no volume starts
    fatal: threading.Event = field(default_factory=threading.Event)  # 401/403 seen
    snapshot: ClusterSnapshot | None = None  # the pass's own reading, reused by dry runs

    # ---- entry point -----------------------------------------------------------------------

    def recycle(self, decision: Decision) -> VolumeResult:
        """Recycle one PV; never raises (one broken volume never stops the others)."""
        result = VolumeResult(
            pv=decision.pv_name,
            decision=decision.action.value,
            reason=decision.reason,
            outcome="failed",
        )
        started = time.monotonic()
        pv: dict[str, Any] = {"metadata": {"name": decision.pv_name}}
        try:
            self._may_start()
            pv = self._recheck(decision.pv_name)
            source = describe_source(pv)
            assert isinstance(source, GlusterSource)  # recheck ran decide
            hosts = self._hosts(pv, source)
            if self.config.dry_run:
                if self.config.client_check:
                    self._timed(result, "client_check", self._client_check, hosts, source)
                result.outcome = "would-recycle"
                result.reason = f"{decision.reason}; would wipe {hosts[0]}:{source.mount_path}"
                log.info("pv/%s: dry run: would recycle (%s)", decision.pv_name, result.reason)
                return result
            self._timed(result, "rehearse", self._rehearse_release, pv)
            self._wipe_volume(pv, source, hosts, result)
            failpoints.hit("before-release")
            self._guard()
            self._timed(result, "release", self._make_available, pv)
            result.outcome = "recycled"
            message = (
                f"wiped {result.files} files, {result.dirs} directories, {result.bytes} bytes; "
                f"volume is Available again ({self.config.mode})"
            )
            self.events.normal(pv, "Recycled", message)
            log.info("pv/%s: recycled: %s", decision.pv_name, message)
        except DeadlineReached as exc:
            result.outcome = "waiting"
            result.reason = f"{exc}; the next run takes it"
            log.info("pv/%s: %s", decision.pv_name, result.reason)
        except Interrupted as exc:
            result.outcome = "interrupted"
            result.error = str(exc)
            log.warning("pv/%s: interrupted: %s; the PV stays unreleased", decision.pv_name, exc)
        except ClusterUnavailable as exc:
            # Unauthorized or forbidden will be so for every volume: start no other one.
            self.fatal.set()
            result.error = f"cannot use the cluster: {exc}"
            log.error("pv/%s: not recycled: %s; stopping the pass", decision.pv_name, exc)
        except (VolumeFailure, LeaseLost, gluster.GlusterError, wipe.WipeError, KubeError) as exc:
            if isinstance(exc, wipe.WipeInterrupted):
                result.outcome = "interrupted"
            result.error = str(exc)
            if isinstance(exc, KubeError):
                result.error = f"{type(exc).__name__}: {exc}"
            log.error("pv/%s: not recycled: %s", decision.pv_name, result.error)
            if result.outcome == "failed" and not self.config.dry_run:
                self.events.warning(pv, "RecycleFailed", result.error)
        except Exception as exc:  # a bug must not stop the other volumes either
            log.exception("pv/%s: unexpected error", decision.pv_name)
            result.error = f"unexpected {type(exc).__name__}: {exc}"
            if not self.config.dry_run:
                self.events.warning(pv, "RecycleFailed", result.error)
        finally:
            result.durations["total"] = round(time.monotonic() - started, 3)
        return result

    # ---- steps -----------------------------------------------------------------------------

    def _may_start(self) -> None:
        if self.fatal.is_set():
            raise Interrupted("the cluster refused an earlier request of this pass")
        if self.stop.is_set():
            raise Interrupted("stop requested before this volume started")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineReached("run deadline reached before this volume started")
        if self.keeper is not None:
            self.keeper.check()

    def _guard(self) -> None:
        """Before each destructive step: still ours, not interrupted."""
        if self.stop.is_set():
            raise Interrupted("stop requested")
        if self.keeper is not None:
            self.keeper.check()

    def _recheck(self, name: str) -> dict[str, Any]:
        """Read the PV and every claim again and decide again: the snapshot may be minutes old."""
        try:
            pv = self.kube.get(PV, name)
        except NotFound as exc:
            raise VolumeFailure(f"pv/{name} no longer exists") from exc
        if self.config.dry_run and self.snapshot is not None:
            # Nothing is removed in a dry run: the pass's own claim list is fresh enough, and
            # re-listing every claim per volume would dominate a large dry run.
            fresh = ClusterSnapshot(
                pvs=[pv],
                claims=self.snapshot.claims,
                claims_by_volume=self.snapshot.claims_by_volume,
            )
        else:
            claims, _ = self.kube.list_items(PVC)
            fresh = ClusterSnapshot.build([pv], claims)
        again = decide(pv, fresh, self.settings, self.clock())
        if again.action is not Action.RECYCLE:
            raise VolumeFailure(f"re-check before wiping: {again.reason}")
        return pv

    def _hosts(self, pv: dict[str, Any], source: GlusterSource) -> tuple[str, ...]:
        """--gluster-hosts, else the Endpoints the PV names (its namespace, the configured one,
        else the claim's)."""
        if self.config.gluster_hosts:
            return self.config.gluster_hosts
        claim_ns = ((pv.get("spec") or {}).get("claimRef") or {}).get("namespace")
        namespace = source.endpoints_namespace or self.config.endpoints_namespace or claim_ns
        if not namespace:
            raise VolumeFailure(
                f"no namespace for Endpoints {source.endpoints!r}: "
                "set --endpoints-namespace or --gluster-hosts"
            )
        try:
            endpoints = self.kube.get(ENDPOINTS, source.endpoints, namespace)
        except NotFound as exc:
            raise VolumeFailure(
                f"Endpoints {namespace}/{source.endpoints} not found: "
                "set --gluster-hosts or create the Endpoints"
            ) from exc
        hosts: list[str] = []
        for subset in endpoints.get("subsets") or []:
            for address in subset.get("addresses") or []:
                host = address.get("ip") or address.get("hostname")
                if host and host not in hosts:
                    hosts.append(host)
        if not hosts:
            raise VolumeFailure(f"Endpoints {namespace}/{source.endpoints} lists no address")
        return tuple(hosts)

    def _client_check(self, hosts: tuple[str, ...], source: GlusterSource) -> None:
        gluster.ensure_not_in_use(hosts, source.volume, timeout=self.config.mount_timeout)

    def _wipe_volume(
        self,
        pv: dict[str, Any],
        source: GlusterSource,
        hosts: tuple[str, ...],
        result: VolumeResult,
    ) -> None:
        name = pv["metadata"]["name"]
        if self.config.client_check:
            self._timed(result, "client_check", self._client_check, hosts, source)
        mountpoint = gluster.mountpoint_for(self.config.mount_root, name)
        self._guard()
        try:
            self._timed(
                result,
                "mount",
                gluster.mount_volume,
                hosts,
                source,
                mountpoint,
                timeout=self.config.mount_timeout,
            )
            failpoints.hit("before-wipe")
            self._guard()
            # The last check before removing anything: still exactly this gluster mount.
            gluster.verify_mounted(mountpoint, hosts, source)
            stats = self._timed(
                result,
                "wipe",
                wipe.wipe_tree,
                mountpoint,
                workers=self.config.wipe_workers,
                stop=self.stop,
            )
            result.files, result.dirs, result.bytes = stats.files, stats.dirs, stats.bytes
            if self.config.reset_owner is not None or self.config.reset_mode is not None:
                wipe.reset_root(mountpoint, self.config.reset_owner, self.config.reset_mode)
        finally:
            unmount_started = time.monotonic()
            try:
                gluster.unmount(mountpoint, timeout=self.config.mount_timeout)
            except gluster.GlusterError as exc:
                log.error("pv/%s: unmount of %s failed: %s", name, mountpoint, exc)
            result.durations["unmount"] = round(time.monotonic() - unmount_started, 3)

    def _rehearse_release(self, pv: dict[str, Any]) -> None:
        """Ask the API server to authorize and admit the release writes without storing them.

        A volume is wiped only when the write that returns it to the pool would be accepted:
        a missing RBAC verb or a PV that changed since the re-check shows up here, before any
        file is removed, instead of leaving a wiped volume that cannot be released.
        """
        meta = pv["metadata"]
        if self.config.mode == "recreate":
            self.kube.delete(
                PV,
                meta["name"],
                uid=meta["uid"],
                resource_version=meta["resourceVersion"],
                dry_run=True,
            )
            # Allowed when the only objection is that the PV still exists (409).
            with contextlib.suppress(Conflict):
                self.kube.create(PV, clean_copy(pv), dry_run=True)
            return
        patch = {
            "metadata": {"resourceVersion": meta["resourceVersion"]},
            "spec": {"claimRef": None},
        }
        self.kube.merge_patch(PV, meta["name"], patch, dry_run=True)

    def _make_available(self, pv: dict[str, Any]) -> None:
        meta = pv["metadata"]
        now = format_time(self.clock())
        if self.config.mode == "recreate":
            assert self.journal is not None
            clean = clean_copy(pv, drop_annotations=(FIRST_SEEN_ANNOTATION,))
            clean["metadata"].setdefault("annotations", {})[RECYCLED_ANNOTATION] = now
            try:
                self.journal.recreate(pv, clean)
            except (Conflict, NotFound) as exc:
                raise VolumeFailure(
                    f"pv/{meta['name']} changed while it was wiped; not re-created: {exc}"
                ) from exc
            return
        patch = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "annotations": {FIRST_SEEN_ANNOTATION: None, RECYCLED_ANNOTATION: now},
            },
            "spec": {"claimRef": None},
        }
        try:
            self.kube.merge_patch(PV, meta["name"], patch)
        except Conflict as exc:
            raise VolumeFailure(
                f"pv/{meta['name']} changed while it was wiped; not released (next run retries)"
            ) from exc

    def _timed(self, result: VolumeResult, step: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return func(*args, **kwargs)
        finally:
            result.durations[step] = round(time.monotonic() - started, 3)
