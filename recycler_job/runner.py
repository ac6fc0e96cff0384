"""One pass: lease -> replay -> snapshot -> decide -> act -> report, and the exit code it earns."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from recycler_job import failpoints, tls
from recycler_job.act import Actor, DryRunActor
from recycler_job.api_errors import ClusterUnavailable, Conflict, KubeError
from recycler_job.clock import Clock, format_time, utcnow
from recycler_job.config import Config
from recycler_job.decide import (
    FIRST_SEEN_ANNOTATION,
    Action,
    DecideSettings,
    Decision,
    decide_all,
    first_seen_value,
)
from recycler_job.events import EventRecorder
from recycler_job.exit_codes import ExitCode
from recycler_job.gluster import cli as gluster_cli
from recycler_job.gluster import mount
from recycler_job.journal import Journal
from recycler_job.kube import LEASE, PV, Kube, gc_paused
from recycler_job.lease import LeaseKeeper, LeaseLock
from recycler_job.pv_writes import first_seen_patch
from recycler_job.report import RunReport, VolumeResult
from recycler_job.sources import describe_source
from recycler_job.view import ClusterView
from recycler_job.wipe.engine import WorkerBudget

log = logging.getLogger(__name__)


REASONS_AT_INFO = 20
"""PVs held back whose reason is logged at INFO per pass; the rest at DEBUG, and counted.

Enough to answer "why was my PV not recycled?" in `kubectl logs` for the usual handful; a
cluster with thousands of released PVs gets 21 lines, not thousands (every reason is in the
JSON report, `--report-file`, and at DEBUG).
"""
# The phases of a PV that no claim uses any more: the only ones an admin expects recycled.
# A Bound or Available PV is not held back, it is simply not a candidate.
_CANDIDATE_PHASES = frozenset({"Released", "Failed"})


class _HeldBack:
    """Logs why candidate PVs were not recycled: the first REASONS_AT_INFO at INFO, then a count.

    A candidate is a glusterfs PV in phase Released or Failed whose labels match --selector.
    """

    def __init__(self, settings: DecideSettings, limit: int = REASONS_AT_INFO) -> None:
        self.selector = settings.selector
        self.limit = limit
        self.logged = 0
        self.rest = 0

    def log(self, pv: dict[str, Any], result: VolumeResult) -> None:
        meta = pv.get("metadata") or {}
        candidate = (
            (pv.get("status") or {}).get("phase") in _CANDIDATE_PHASES
            and describe_source(pv) is not None
            and (self.selector is None or self.selector.matches(meta.get("labels") or {}))
        )
        level = logging.DEBUG
        if candidate and self.logged < self.limit:
            self.logged += 1
            level = logging.INFO
        elif candidate:
            self.rest += 1
        log.log(
            level,
            "pv/%s: not recycled (%s): %s",
            result.pv,
            result.outcome,
            result.reason,
            extra={"pv": result.pv, "outcome": result.outcome},
        )

    def log_rest(self) -> None:
        if self.rest:
            log.info(
                "%d more released or failed PVs matching the selector were not recycled "
                "(their reasons: --debug, or the JSON report: --report-file)",
                self.rest,
            )


def journal_name(config: Config) -> str:
    """The ConfigMap holding `--mode recreate` records, next to the Lease."""
    return f"{config.lease_name}-recreate"


class Runner:
    """Runs one pass against one cluster."""

    def __init__(
        self,
        config: Config,
        *,
        stop: threading.Event | None = None,
        clock: Clock = utcnow,
        kube: Kube | None = None,
    ) -> None:
        self.config = config
        self.stop = stop or threading.Event()
        self.clock = clock
        self.kube = kube
        self.report = RunReport(identity=config.identity, dry_run=config.dry_run, mode=config.mode)
        self._started = time.monotonic()

    def run(self) -> RunReport:
        """Do the pass; the report carries the exit code. Never raises for cluster trouble."""
        started = self._started = time.monotonic()
        self.report.started = format_time(self.clock())
        # The CLI's default log needs root and a writable /var/log: --log-dir instead.
        gluster_cli.set_cli_log_file(os.path.join(self.config.log_dir, "cli.log"))
        tls.configure(
            tls.from_config(self.config.tls_dir, self.config.tls_management),
            log_dir=self.config.log_dir,
        )
        try:
            self._run()
        except ClusterUnavailable as exc:
            self.report.outcome = "cluster-unavailable"
            self.report.error = str(exc)
            log.error("cannot use the cluster: %s", exc)
        except KubeError as exc:
            self.report.outcome = "cluster-unavailable"
            self.report.error = f"{type(exc).__name__}: {exc}"
            log.error("the API failed: %s", exc)
        except Exception as exc:  # a report and an exit code, whatever failed
            # Outside the API client: an OSError while cleaning up mounts, `umount` missing
            # from PATH, a bug. The report, the termination message and exit code 1 still hold.
            self.report.outcome = "error"
            self.report.error = f"unexpected {type(exc).__name__}: {exc}"
            log.exception("the pass stopped on an unexpected error")
        finally:
            gluster_cli.set_cli_log_file(None)
            tls.configure(None)
            gc.unfreeze()  # see _read_snapshot
            self.report.seconds = round(time.monotonic() - started, 3)
            if self.kube is not None:
                self.report.api_requests = self.kube.requests
        self.report.exit_code = int(self._exit_code())
        return self.report

    def _exit_code(self) -> ExitCode:
        report = self.report
        if report.outcome == "cluster-unavailable":
            return ExitCode.CLUSTER_UNAVAILABLE
        if report.outcome in ("error", "lease-lost"):
            return ExitCode.VOLUME_FAILED
        if report.outcome == "interrupted" or self.stop.is_set():
            return ExitCode.INTERRUPTED
        if report.counts().get("failed"):
            return ExitCode.VOLUME_FAILED
        return ExitCode.OK

    def _run(self) -> None:
        config = self.config
        if self.kube is None:
            self.kube = Kube.connect(config.kubeconfig)
        kube = self.kube
        lock = LeaseLock(
            kube,
            namespace=config.lease_namespace,
            name=config.lease_name,
            identity=config.identity,
            duration=config.lease_duration,
            clock=self.clock,
        )
        if config.dry_run:
            self._report_lease_holder(kube)
            self._pass(kube, keeper=None)
            return
        holder = lock.try_acquire()
        if holder is not None:
            until = format_time(holder.expires) if holder.expires else "unknown"
            self.report.lease = f"held-by:{holder.identity}"
            self.report.outcome = "skipped"
            log.info(
                "another run holds lease %s/%s: %s until %s; skipping this pass",
                config.lease_namespace,
                config.lease_name,
                holder.identity,
                until,
            )
            return
        self.report.lease = "acquired"
        keeper = LeaseKeeper(lock).start()
        try:
            self._pass(kube, keeper=keeper)
        finally:
            keeper.stop()
            if keeper.lost.is_set():
                self.report.lease = "lost"
                if self.report.outcome == "completed":
                    self.report.outcome = "lease-lost"
                    self.report.error = keeper.lost_reason
            lock.release()

    def _report_lease_holder(self, kube: Kube) -> None:
        lease = kube.get_or_none(LEASE, self.config.lease_name, self.config.lease_namespace)
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        self.report.lease = f"held-by:{holder}" if holder else "not-taken"
        if holder:
            log.info("dry run: lease is held by %s (a real run would check its expiry)", holder)

    def _pass(self, kube: Kube, keeper: LeaseKeeper | None) -> None:
        config = self.config
        journal = Journal(kube, config.lease_namespace, journal_name(config))
        replayed = journal.replay(dry_run=config.dry_run)
        self.report.replayed = [item.line for item in replayed]
        for line in self.report.replayed:
            log.info("recreate record: %s", line)
        # A record that could not be replayed fails its volume (exit 1), not the pass.
        not_replayed = {item.name for item in replayed if item.error}
        self.report.volumes.extend(
            VolumeResult(
                pv=item.name,
                decision="replay",
                reason="a recreate record of an earlier run",
                outcome="failed",
                error=item.error,
            )
            for item in replayed
            if item.error
        )
        if not config.dry_run and config.backend == "fuse":
            self.report.stale_mounts_cleaned = mount.cleanup_stale_mounts(config.mount_root)
            for path in self.report.stale_mounts_cleaned:
                log.warning("cleaned up a mount left by a killed run: %s", path)

        view = self._read_view(kube, keeper)
        snapshot = view.snapshot()
        pvs, pages = snapshot.pvs, view.pages
        self.report.pvs_seen = len(pvs)
        self.report.list_pages = pages
        settings = DecideSettings.from_config(config)
        decisions = decide_all(snapshot, settings, self.clock())
        del snapshot  # the view's own indexes serve the volumes from here on

        by_name = {pv["metadata"]["name"]: pv for pv in pvs}
        to_recycle: list[Decision] = []
        held_back = _HeldBack(settings)
        for decision in decisions:
            if decision.action is Action.RECYCLE:
                to_recycle.append(decision)
                continue
            if decision.pv_name not in not_replayed:  # reported once, as failed
                result = self._not_recycled(decision)
                self.report.volumes.append(result)
                held_back.log(by_name[decision.pv_name], result)
            if decision.mark_first_seen and not config.dry_run:
                self._mark_first_seen(kube, by_name[decision.pv_name])
        held_back.log_rest()
        log.info(
            "%d PVs listed in %d pages, %d claims; %d eligible",
            len(pvs),
            pages,
            view.claim_count(),
            len(to_recycle),
        )
        if not to_recycle:
            return
        failpoints.hit("after-decide")

        deadline = None
        if config.deadline is not None:
            deadline = self._started + config.deadline
        actor = (DryRunActor if config.dry_run else Actor)(
            kube=kube,
            config=config,
            settings=settings,
            events=EventRecorder(kube, config.identity, dry_run=config.dry_run),
            journal=journal,
            keeper=keeper,
            stop=self.stop,
            clock=self.clock,
            deadline=deadline,
            view=view,
            # One budget of --wipe-workers for the whole pass: the volumes wiped at the same
            # time share it, and one whose wipe ends leaves its slots to the others.
            budget=WorkerBudget(config.wipe_workers),
        )
        if not config.dry_run:
            # Nothing is removed in a dry run: the pass's own lists are fresh enough.
            view.start()
        try:
            with ThreadPoolExecutor(
                max_workers=config.parallel, thread_name_prefix="volume"
            ) as pool:
                results = list(pool.map(actor.recycle, to_recycle))
        finally:
            view.stop()
        self.report.volumes.extend(results)
        if actor.fatal.is_set():
            self.report.outcome = "cluster-unavailable"
            self.report.error = next(r.error for r in results if r.error.startswith("cannot use"))
        elif any(r.outcome == "interrupted" for r in results) and self.stop.is_set():
            self.report.outcome = "interrupted"

    def _read_view(self, kube: Kube, keeper: LeaseKeeper | None) -> ClusterView:
        """List every PV and claim once into the pass's view, then freeze it out of the garbage
        collector's sight.

        The view (slim records, a few dicts per object) lives for the whole pass. Left to the
        collector, it is walked again by every full collection that later allocations trigger:
        together with `gc_paused` this keeps an idle pass on 10,000 PVs under a CPU-second
        (docs/performance.md). Its records hold no reference cycles, so `gc.freeze()` loses
        nothing (reference counting still frees them); run() unfreezes what is left.

        Every PV is listed, not only the selected ones: a PV outside --selector may share a
        gluster volume with a selected one (decide applies the selector itself). With a Lease,
        the view watches it too (a new holder stops every wipe).
        """
        lease = None
        if keeper is not None:
            lock = keeper.lock
            lease = (lock.namespace, lock.name, lock.identity)
        view = ClusterView(kube, lease=lease)
        with gc_paused():
            view.load()
            gc.freeze()
        return view

    @staticmethod
    def _not_recycled(decision: Decision) -> VolumeResult:
        outcome = "waiting" if decision.action is Action.WAIT else "skipped"
        return VolumeResult(
            pv=decision.pv_name,
            decision=decision.action.value,
            reason=decision.reason,
            outcome=outcome,
        )

    def _mark_first_seen(self, kube: Kube, pv: dict[str, Any]) -> None:
        """Start the --min-age clock on a server that has no lastPhaseTransitionTime.

        The value names the claim in claimRef (decide.first_seen_value); the resourceVersion
        precondition keeps a rebind that happened since the listing from getting this stamp.
        """
        name = pv["metadata"]["name"]
        patch = first_seen_patch(pv, first_seen_value(pv, self.clock()))
        try:
            kube.merge_patch(PV, name, patch)
        except Conflict:
            log.info("pv/%s changed meanwhile; first-seen is set next run", name)
        except KubeError as exc:
            log.warning("pv/%s: could not set %s: %s", name, FIRST_SEEN_ANNOTATION, exc)
