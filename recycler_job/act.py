"""Recycles one volume: re-check, mount, verify, wipe, unmount, make Available, record an Event.

Every destructive step is preceded by a check that can only stop it: the Lease is still ours,
the pass is not interrupted, the PV and its claims still say "recycle" when read again from the
API, and the mount is a verified glusterfs mount of exactly this volume. Writes carry the
resourceVersion read right before the wipe, so any change in between fails the volume instead
of releasing it. While files are removed, a watcher (watch.py) stops the wipe at the first
change of the PV, its claims, the volume's clients or the Lease. The mount this run made is
always undone, and no other.

This module holds the step sequence and the mapping of each failure to the volume's outcome;
`DryRunActor` is the dry run's own path, chosen once by the runner. What the steps use lives
beside it: the bodies written to the PV in pv_writes.py, the servers in hosts_lookup.py, the
watcher and its probes in watch.py, the wipe behind transport.py.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from recycler_job import failpoints, tls, watch
from recycler_job.api_errors import ClusterUnavailable, Conflict, KubeError, NotFound
from recycler_job.clock import Clock, format_time
from recycler_job.config import Config
from recycler_job.decide import Action, DecideSettings, Decision
from recycler_job.errors import VolumeError
from recycler_job.events import EventRecorder
from recycler_job.gluster.bricks import BrickRuns, bricks_running, ensure_same_runs
from recycler_job.gluster.cli import volume_info
from recycler_job.gluster.clients import ensure_not_in_use
from recycler_job.gluster.errors import (
    BrickOffline,
    VolumeIdentityError,
    VolumeInUse,
)
from recycler_job.hosts_lookup import HostsRefused, gluster_hosts
from recycler_job.journal import Journal
from recycler_job.kube import PV, Kube
from recycler_job.lease import LeaseKeeper
from recycler_job.pv_writes import recreated, release_patch, released_claim_ref
from recycler_job.report import VolumeResult, timed
from recycler_job.sources import GlusterSource, describe_source
from recycler_job.view import ClusterView, NotCurrent
from recycler_job.wipe import engine as wipe_engine
from recycler_job.wipe.fuse_transport import open_fuse
from recycler_job.wipe.gfapi_transport import open_gfapi
from recycler_job.wipe.transport import Opened, Target, Transport, WipeSettings

log = logging.getLogger(__name__)


class VolumeFailure(VolumeError):
    """This volume cannot be recycled now; the message says why (shown to admins)."""


class ChangedDuringWipe(VolumeFailure):
    """The PV, a claim, the volume's clients or the Lease changed while the volume was wiped."""


class Interrupted(VolumeError):
    """SIGTERM/SIGINT arrived: no new step starts."""


class DeadlineReached(VolumeError):
    """The run's --deadline passed before this volume started; the next run takes it."""


def _fields(result: VolumeResult) -> dict[str, str]:
    """The structured fields of a volume's log line (keys in the JSON log format)."""
    return {"pv": result.pv, "outcome": result.outcome, "step": result.step}


def _log(level: int, result: VolumeResult, message: str, *args: object) -> None:
    """A volume's log line, `pv/NAME: message`, with its structured fields."""
    log.log(level, "pv/%s: " + message, result.pv, *args, extra=_fields(result))


def _failure_text(result: VolumeResult) -> str:
    """A RecycleFailed Event's message: the error, and the Volume ID once it was proven."""
    if result.volume_id:
        return f"{result.error} (gluster Volume ID {result.volume_id})"
    return result.error


def wipe_settings(config: Config) -> WipeSettings:
    """What the wipe transports read of the run's configuration."""
    return WipeSettings(
        workers=config.wipe_workers,
        mount_timeout=config.mount_timeout,
        mount_root=config.mount_root,
        log_dir=config.log_dir,
        reset_owner=config.reset_owner,
        reset_mode=config.reset_mode,
    )


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
    view: ClusterView | None = None  # the pass's watched view of PVs and claims (view.py)
    budget: wipe_engine.WorkerBudget | None = None  # the pass's wipe workers, shared by its volumes
    wipe_settings: WipeSettings = field(init=False)  # the transports' slice of `config`

    def __post_init__(self) -> None:
        self.wipe_settings = wipe_settings(self.config)
        # The dry run is a path of its own (DryRunActor): this one wipes.
        if self.config.dry_run and not isinstance(self, DryRunActor):
            raise ValueError("a dry run recycles through DryRunActor, which removes nothing")

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
            self._steps(decision, pv, source, hosts, result)
        except VolumeError as exc:  # the one family (errors.py); its kind picks the outcome
            self._outcome(decision, pv, result, exc)
        except Exception as exc:  # a bug must not stop the other volumes either
            log.exception("pv/%s: unexpected error", decision.pv_name, extra=_fields(result))
            result.error = f"unexpected {type(exc).__name__}: {exc}"
            self._report_failure(pv, result)
        finally:
            result.durations["total"] = round(time.monotonic() - started, 3)
        return result

    def _steps(
        self,
        decision: Decision,
        pv: dict[str, Any],
        source: GlusterSource,
        hosts: tuple[str, ...],
        result: VolumeResult,
    ) -> None:
        """The steps after the re-check and the servers: rehearse the release, wipe, check the
        bricks again, make the PV Available, and say so in an Event."""
        timed(result, "rehearse", self._rehearse_release, pv)
        bricks = self._wipe_volume(pv, source, hosts, result)
        failpoints.hit("before-release")
        self._guard()
        timed(result, "bricks_again", self._bricks_unchanged, hosts, source, bricks)
        timed(result, "release", self._make_available, pv)
        result.outcome = "recycled"
        message = (
            f"wiped {result.files} files, {result.dirs} directories, {result.bytes} bytes "
            f"of gluster Volume ID {result.volume_id}; "
            f"volume is Available again ({self.config.mode})"
        )
        if (reserved := released_claim_ref(pv)) is not None:
            message += f", reserved for claim {reserved.get('namespace')}/{reserved.get('name')}"
        self.events.normal(pv, "Recycled", message)
        _log(logging.INFO, result, "recycled: %s", message)

    def _report_failure(self, pv: dict[str, Any], result: VolumeResult) -> None:
        """A failed volume's RecycleFailed Event."""
        self.events.warning(pv, "RecycleFailed", _failure_text(result))

    def _outcome(
        self, decision: Decision, pv: dict[str, Any], result: VolumeResult, exc: VolumeError
    ) -> None:
        """The volume's outcome, log line and Event for the kind of failure that stopped it."""
        if isinstance(exc, DeadlineReached):
            result.outcome = "waiting"
            result.reason = f"{exc}; the next run takes it"
            _log(logging.INFO, result, "%s", result.reason)
        elif isinstance(exc, Interrupted):
            result.outcome = "interrupted"
            result.error = str(exc)
            _log(logging.WARNING, result, "interrupted: %s; the PV stays unreleased", exc)
        elif isinstance(exc, VolumeInUse):
            # Raised before the first unlink (the checks before and right after our own
            # mount): nothing was removed, and it heals by itself once the last client goes.
            # Busy is not a failure (exit 0); the Warning Event and the `busy` count keep a
            # volume that stays mounted for days visible. A client that connects during the
            # wipe is a failure (ChangedDuringWipe): part of the volume is gone by then.
            result.outcome = "busy"
            result.reason = f"{decision.reason}; in use, left for a later run: {exc}"
            _log(logging.WARNING, result, "in use, left for a later run: %s", exc)
            self.events.warning(pv, "VolumeInUse", f"{exc}; not wiped, the next run retries")
        elif isinstance(exc, ClusterUnavailable):
            # Unauthorized or forbidden will be so for every volume: start no other one.
            self.fatal.set()
            result.error = f"cannot use the cluster: {exc}"
            _log(logging.ERROR, result, "not recycled: %s; stopping the pass", exc)
        else:
            if isinstance(exc, wipe_engine.WipeInterrupted):
                result.outcome = "interrupted"
            result.error = str(exc)
            if isinstance(exc, KubeError):
                result.error = f"{type(exc).__name__}: {exc}"
            _log(logging.ERROR, result, "not recycled: %s", result.error)
            if result.outcome == "failed":
                self._report_failure(pv, result)

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
        """Read the PV again and decide again against the pass's view of every PV and claim:
        the listing may be minutes old, and a PV created since may share this one's volume.

        The view is kept current by its watches (view.py), so this costs one GET, not a list
        of the cluster; a view that is not current refuses the volume (`_ensure_current`).
        """
        view = self.view
        assert view is not None  # the runner always gives one
        self._ensure_current(view)
        try:
            pv: dict[str, Any] = view.retrying(f"get pv/{name}", lambda: self.kube.get(PV, name))
        except NotFound as exc:
            raise VolumeFailure(f"pv/{name} no longer exists") from exc
        again = view.decide(pv, self.settings, self.clock())
        if again.action is not Action.RECYCLE:
            raise VolumeFailure(f"re-check before wiping: {again.reason}")
        return pv

    def _ensure_current(self, view: ClusterView) -> None:
        """A view whose watches lag refuses the volume."""
        if (stale := view.not_current()) is not None:
            raise VolumeFailure(f"re-check before wiping: the view is not current: {stale}")

    def _hosts(self, pv: dict[str, Any], source: GlusterSource) -> tuple[str, ...]:
        """The servers to wipe on, from admin-controlled data only (hosts_lookup.py)."""
        try:
            return gluster_hosts(self.kube, pv, source, self.config)
        except (HostsRefused, VolumeIdentityError) as exc:
            raise VolumeFailure(str(exc)) from exc

    def _tls_check(self, hosts: tuple[str, ...], source: GlusterSource) -> None:
        """TlsError when the volume uses TLS and the configured files cannot serve it."""
        info = volume_info(hosts, source.volume, timeout=self.config.mount_timeout)
        tls.require_for(source.volume, info.options)

    def _client_check(self, hosts: tuple[str, ...], source: GlusterSource) -> None:
        ensure_not_in_use(hosts, source.volume, timeout=self.config.mount_timeout)

    def _bricks_running(self, hosts: tuple[str, ...], source: GlusterSource) -> BrickRuns:
        """Every brick of the volume online (BrickOffline otherwise), whatever CLIENT_CHECK
        says: a wipe with a brick down misses that brick's files."""
        return bricks_running(hosts, source.volume, timeout=self.config.mount_timeout)

    def _bricks_unchanged(
        self, hosts: tuple[str, ...], source: GlusterSource, before: BrickRuns
    ) -> None:
        """Before the release: every brick still online, run by the process that ran it
        before the first unlink (a brick down for a while is back with another pid)."""
        now = self._bricks_running(hosts, source)
        ensure_same_runs(source.volume, before, now)

    def _wipe_volume(
        self,
        pv: dict[str, Any],
        source: GlusterSource,
        hosts: tuple[str, ...],
        result: VolumeResult,
    ) -> BrickRuns:
        """Client check, then open the volume with the configured transport, check that every
        brick runs, and wipe it; returns the brick processes seen right before the wipe.

        Both transports (transport.py) hand `_wipe_root` an `Opened`: a volume proven to be
        `source`'s, the client name(s) it adds to the volume, and the wipe to run.
        """
        if self.config.client_check:
            timed(result, "client_check", self._client_check, hosts, source)
        self._guard()
        transport: Transport = open_gfapi if self.config.backend == "gfapi" else open_fuse
        target = Target(
            self.wipe_settings,
            self._guard,
            pv["metadata"]["name"],
            source,
            hosts,
            result,
            self.budget,
        )
        with transport(target) as opened:
            result.volume_id = opened.volume_id
            bricks = timed(result, "bricks", self._bricks_running, hosts, source)
            self._wipe_root(pv, target, opened)
        return bricks

    def _wipe_root(self, pv: dict[str, Any], target: Target, opened: Opened) -> None:
        """Re-check, then wipe while a watcher stops it at the first sign of an owner.

        The checks before the mount are minutes old for a large volume: the PV and its claims
        are decided once more right before the first unlink, and during the wipe the PV's
        resourceVersion, the claims, the volume's gluster clients and the Lease are polled.
        """
        source, hosts, result = target.source, target.hosts, target.result
        failpoints.hit("before-client-check")
        clients = (
            watch.clients_besides_own(
                hosts,
                source.volume,
                opened.own_clients,
                opened.request,
                timeout=self.config.mount_timeout,
            )
            if self.config.client_check
            else None
        )
        failpoints.hit("wipe-start")  # bench.scale: the re-check, watches and wipe begin here
        self._recheck_unchanged(pv)
        self._guard()
        view = self.view
        assert view is not None
        watcher = watch.volume_watcher(
            hosts, source.volume, clients, opened.own_clients, self.keeper
        )
        with watcher, view.watch_volume(pv, self.settings, self.clock, watcher.fire):
            try:
                stats = timed(
                    result,
                    "wipe",
                    opened.wipe,
                    lambda: self.stop.is_set() or watcher.changed(),
                )
                result.files, result.dirs, result.bytes = stats.files, stats.dirs, stats.bytes
            except wipe_engine.WipeError as exc:
                if exc.stats is not None:
                    result.files, result.dirs = exc.stats.files, exc.stats.dirs
                    result.bytes = exc.stats.bytes
                if watcher.changed():
                    raise ChangedDuringWipe(
                        f"changed during the wipe: {watcher.reason}; stopped after removing "
                        f"{result.files} files (the rest is left, the PV is not released)"
                    ) from exc
                raise
        # Checked once every probe has given its final answer (Watcher.stop waits for each,
        # within its bound): a probe still in flight when the last entry went counts too.
        try:
            watcher.check()
        except watch.VolumeChanged as exc:
            raise ChangedDuringWipe(f"changed during the wipe: {exc}") from exc
        failpoints.hit("wipe-end")  # bench.scale: every probe answered, the watches stopped

    def _recheck_unchanged(self, pv: dict[str, Any]) -> None:
        """The re-check right before the first unlink: the view proven current (no change
        made before now is missing from it), then the same decision, same resourceVersion."""
        name = pv["metadata"]["name"]
        view = self.view
        assert view is not None
        try:
            view.prove_current()
        except NotCurrent as exc:
            raise VolumeFailure(f"re-check before wiping: {exc}") from exc
        fresh = self._recheck(name)
        before, now = pv["metadata"]["resourceVersion"], fresh["metadata"]["resourceVersion"]
        if now != before:
            raise VolumeFailure(
                f"re-check before wiping: pv/{name} changed since it was read "
                f"(resourceVersion {before} -> {now})"
            )

    def _rehearse_release(self, pv: dict[str, Any]) -> None:
        """Ask the API server to authorize and admit the release writes without storing them.

        A volume is wiped only when the write that returns it to the pool would be accepted:
        a missing RBAC verb or a PV that changed since the re-check shows up here, before any
        file is removed, instead of leaving a wiped volume that cannot be released. The
        rehearsed writes are the real ones (pv_writes.py: same patch, same clean copy).
        """
        meta = pv["metadata"]
        now = format_time(self.clock())
        if self.config.mode == "recreate":
            self.kube.delete(
                PV,
                meta["name"],
                uid=meta["uid"],
                resource_version=meta["resourceVersion"],
                server_dry_run=True,
            )
            # Allowed when the only objection is that the PV still exists (409).
            with contextlib.suppress(Conflict):
                self.kube.create(PV, recreated(pv, now), server_dry_run=True)
            return
        self.kube.merge_patch(PV, meta["name"], release_patch(pv, now), server_dry_run=True)

    def _make_available(self, pv: dict[str, Any]) -> None:
        meta = pv["metadata"]
        now = format_time(self.clock())
        if self.config.mode == "recreate":
            assert self.journal is not None
            try:
                self.journal.recreate(pv, recreated(pv, now))
            except (Conflict, NotFound) as exc:
                raise VolumeFailure(
                    f"pv/{meta['name']} changed while it was wiped; not re-created: {exc}"
                ) from exc
            return
        try:
            self.kube.merge_patch(PV, meta["name"], release_patch(pv, now))
        except Conflict as exc:
            raise VolumeFailure(
                f"pv/{meta['name']} changed while it was wiped; not released (next run retries)"
            ) from exc


class DryRunActor(Actor):
    """The dry run's path (`--dry-run`, chosen once by the runner): the same re-check and
    servers, then only the checks a real run would refuse the volume on; nothing is written,
    mounted or removed, and no RecycleFailed Event is sent."""

    def _steps(
        self,
        decision: Decision,
        pv: dict[str, Any],
        source: GlusterSource,
        hosts: tuple[str, ...],
        result: VolumeResult,
    ) -> None:
        try:
            if self.config.client_check:
                timed(result, "client_check", self._client_check, hosts, source)
            timed(result, "bricks", self._bricks_running, hosts, source)
            if tls.current() is not None:
                timed(result, "tls", self._tls_check, hosts, source)
        except (VolumeInUse, BrickOffline, tls.TlsError) as exc:
            # What a real run would do today: leave it for a later run. Not a failure of the
            # dry run.
            result.outcome = "would-refuse"
            result.reason = f"{decision.reason}; would be refused: {exc}"
            _log(logging.INFO, result, "dry run: would refuse: %s", exc)
            return
        result.outcome = "would-recycle"
        result.reason = f"{decision.reason}; would wipe {hosts[0]}:{source.mount_path}"
        _log(logging.INFO, result, "dry run: would recycle (%s)", result.reason)

    def _ensure_current(self, view: ClusterView) -> None:
        """Nothing is removed and the view is not watched: its lists are fresh enough."""

    def _report_failure(self, pv: dict[str, Any], result: VolumeResult) -> None:
        """A dry run sends no RecycleFailed Event: the report says what failed."""
