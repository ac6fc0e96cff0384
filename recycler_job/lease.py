"""A one-shot `coordination.k8s.io/v1` Lease lock, so two passes never overlap.

`concurrencyPolicy: Forbid` is not a lock (manual `kubectl create job --from=cronjob/...` runs are
outside it), so every pass takes this Lease first. The rules follow client-go's leader election:
take a Lease that is missing, has no holder, or whose holder stopped renewing more than
`leaseDurationSeconds` ago; every write carries the resourceVersion that was read, so a 409 means
another run won. The official Python client ships no Lease lock and its election loops forever,
which a one-shot job cannot use.

Expiry compares the holder's `renewTime` with this pod's clock, so it assumes node clocks are
roughly in sync (NTP); a skew smaller than the lease duration is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from recycler_job.clock import Clock, format_micro_time, parse_time, utcnow
from recycler_job.kube import LEASE, Conflict, Kube, KubeError, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the Lease and until when (for the 'skipped' log line)."""

    identity: str
    expires: dt.datetime | None


class LeaseLost(Exception):
    """The Lease is no longer ours: start no further destructive step."""


class LeaseLock:
    """Acquire, renew and release one Lease for one identity."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration: int,
        clock: Clock = utcnow,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.clock = clock
        self._lease: dict[str, Any] | None = None  # last version we wrote while holding it

    @property
    def held(self) -> bool:
        """True while we hold the Lease as far as we know."""
        return self._lease is not None

    def try_acquire(self) -> LeaseHolder | None:
        """Take the Lease. None on success; otherwise the live holder that keeps it."""
        current = self.kube.get_or_none(LEASE, self.name, self.namespace)
        if current is None:
            try:
                self._lease = self.kube.create(LEASE, self._new_lease(), self.namespace)
                log.info("lease %s/%s created and acquired", self.namespace, self.name)
                return None
            except Conflict:
                current = self.kube.get(LEASE, self.name, self.namespace)
        holder = self._live_holder(current)
        if holder is not None:
            return holder
        spec = dict(current.get("spec") or {})
        previous = spec.get("holderIdentity") or ""
        now = format_micro_time(self.clock())
        transitions = int(spec.get("leaseTransitions") or 0)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.duration,
            acquireTime=now,
            renewTime=now,
            leaseTransitions=transitions + (1 if previous != self.identity else 0),
        )
        body = {**current, "spec": spec}
        try:
            self._lease = self.kube.replace(LEASE, body, self.namespace)
        except Conflict:
            latest = self.kube.get(LEASE, self.name, self.namespace)
            return self._live_holder(latest) or LeaseHolder("another run (lost the race)", None)
        log.info(
            "lease %s/%s acquired (previous holder %r)",
            self.namespace,
            self.name,
            previous or None,
        )
        return None

    def renew(self) -> None:
        """Extend the Lease; raises LeaseLost when another run has taken it."""
        if self._lease is None:
            raise LeaseLost("lease is not held")
        body = dict(self._lease)
        body["spec"] = {**body["spec"], "renewTime": format_micro_time(self.clock())}
        try:
            self._lease = self.kube.replace(LEASE, body, self.namespace)
        except (Conflict, NotFound) as exc:
            latest = self.kube.get_or_none(LEASE, self.name, self.namespace)
            holder = (latest or {}).get("spec", {}).get("holderIdentity")
            if latest is None or holder != self.identity:
                self._lease = None
                raise LeaseLost(f"lease taken by {holder or 'nobody'}") from exc
            self._lease = latest
            self.renew()

    def release(self) -> None:
        """Clear the holder so the next run need not wait for expiry. Never raises."""
        if self._lease is None:
            return
        body = dict(self._lease)
        body["spec"] = {
            **body["spec"],
            "holderIdentity": None,
            "leaseDurationSeconds": 1,
            "renewTime": format_micro_time(self.clock()),
        }
        try:
            self.kube.replace(LEASE, body, self.namespace)
            log.info("lease %s/%s released", self.namespace, self.name)
        except KubeError as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
        self._lease = None

    def _new_lease(self) -> dict[str, Any]:
        now = format_micro_time(self.clock())
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/name": "gluster-recycler"},
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }

    def _live_holder(self, lease: dict[str, Any]) -> LeaseHolder | None:
        """The holder that still owns `lease`, or None when it is free or expired."""
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder or holder == self.identity:
            return None
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or 0)
        if renewed is None:
            return None
        expires = renewed + dt.timedelta(seconds=duration)
        if expires <= self.clock():
            return None
        return LeaseHolder(holder, expires)


class LeaseKeeper:
    """Renews the Lease in the background every duration/3; sets `lost` when it cannot."""

    def __init__(self, lock: LeaseLock) -> None:
        self.lock = lock
        self.lost = threading.Event()
        self.lost_reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (before release)."""
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> None:
        """Raise LeaseLost if the Lease was lost: call before each destructive step."""
        if self.lost.is_set():
            raise LeaseLost(self.lost_reason or "lease lost")

    def _run(self) -> None:
        interval = max(1.0, self.lock.duration / 3)
        last_ok = self.lock.clock()
        while not self._stop.wait(interval):
            try:
                self.lock.renew()
                last_ok = self.lock.clock()
            except LeaseLost as exc:
                self._lose(str(exc))
                return
            except KubeError as exc:
                # Keep trying while the Lease is still ours on paper; give up before it expires.
                age = (self.lock.clock() - last_ok).total_seconds()
                log.warning("lease renewal failed (%s); last renewed %.0fs ago", exc, age)
                if age > self.lock.duration * 2 / 3:
                    self._lose(f"could not renew for {age:.0f}s: {exc}")
                    return

    def _lose(self, reason: str) -> None:
        self.lost_reason = reason
        self.lost.set()
        log.error("lease lost: %s; no further volume will be touched", reason)
