"""A one-shot `coordination.k8s.io/v1` Lease lock, so two passes never overlap.

`concurrencyPolicy: Forbid` is not a lock (manual `kubectl create job --from=cronjob/...` runs are
outside it), so every pass takes this Lease first. The rules follow client-go's leader election:
take a Lease that is missing, has no holder, or whose holder stopped renewing more than
`leaseDurationSeconds` ago; every write carries the resourceVersion that was read, so a 409 means
another run won.

The `kubernetes` client's own `leaderelection` package (with `resourcelock.LeaseLock`) is not
used because it is built for a long-running leader, not a one-shot pass:

* `LeaderElection.run()` acquires in a loop that never gives up, so a pass that finds the Lease
  held would wait instead of exiting with "held by X".
* A candidate judges expiry from when it itself first saw the record, so every new process
  (every run of the Job) waits a full `leaseDurationSeconds` for a dead holder's Lease.
* The protected work runs in a thread that is not stopped when renewal fails, and there is no
  check the work can call before each destructive step; nothing releases the Lease on exit.
* `LeaseLock` swallows every API error into `False` (a 403 looks like "someone else holds
  it") and talks to the API through the global default client, not through `Kube`.

Expiry compares the holder's `renewTime` with this pod's clock, so it assumes node clocks are
roughly in sync (NTP); a skew smaller than the lease duration is harmless.

Our own hold is judged on the monotonic clock, never on a flag: the Lease counts as ours until
`SAFETY_MARGIN` before `leaseDurationSeconds` after the last write that succeeded was sent (the
acquire is the first). A renewal that hangs or a renewer that died therefore cannot keep
destructive steps going after another run may have taken the Lease over.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recycler_job.api_errors import Conflict, KubeError, NotFound
from recycler_job.clock import Clock, format_micro_time, parse_time, utcnow
from recycler_job.errors import VolumeError
from recycler_job.kube import LEASE, Kube

log = logging.getLogger(__name__)

Monotonic = Callable[[], float]

SAFETY_MARGIN = 1 / 3
"""Fraction of the lease duration by which our hold ends before the Lease expires on the server.

A check that passed lets a step run (an unlink in flight; during a wipe the watcher checks
every second, and the wipe stops within moments of it) and other nodes judge expiry on their
own wall clocks. A third of the duration (5 s at the 15 s minimum, 20 s at the default 60 s)
covers both, with room for a few seconds of clock skew. The renewal due a third of the way in
may fail and be retried (every `retry_interval`) for another third before the hold ends."""


def renew_interval(duration: int) -> float:
    """Seconds between renewals after a success: a third of the duration, as client-go does."""
    return max(1.0, duration / 3)


def retry_interval(duration: int) -> float:
    """Seconds before another attempt after a failed renewal (several fit before the hold ends)."""
    return max(0.5, duration / 15)


def renew_timeout(duration: int) -> float:
    """Request timeout of a renewal: a third of the interval.

    The renewal's PUT is sent once (kube.retry_policy never resends a write), so a renewal that
    hangs gives up a third of an interval after it was due, and two attempts fit before the
    hold ends: in intervals after the last success, the first is sent at 1 and gives up by
    1.33, the second `retry_interval` (0.2) later gives up by 1.87, the hold ends at 2. Only
    the conflict path reads the Lease (a GET, which may be sent twice) before it writes again.
    """
    return renew_interval(duration) / 3


def hold_deadline(renewed_at: float, duration: int) -> float:
    """Monotonic time from which the Lease no longer counts as ours."""
    return renewed_at + duration * (1 - SAFETY_MARGIN)


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the Lease and until when (for the 'skipped' log line)."""

    identity: str
    expires: dt.datetime | None


class LeaseLost(VolumeError):
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
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.clock = clock
        self.monotonic = monotonic
        self._lease: dict[str, Any] | None = None  # last version we wrote while holding it
        # When the last successful write (acquire or renewal) was sent, on `monotonic`: the
        # renewTime it carried was taken then, so the server's expiry is no earlier than this
        # plus the duration.
        self.renewed_at: float | None = None

    @property
    def held(self) -> bool:
        """True while we hold the Lease as far as we know."""
        return self._lease is not None

    def try_acquire(self) -> LeaseHolder | None:
        """Take the Lease. None on success; otherwise the live holder that keeps it."""
        current = self.kube.get_or_none(LEASE, self.name, self.namespace)
        if current is None:
            try:
                sent = self.monotonic()
                self._lease = self.kube.create(LEASE, self._new_lease(), self.namespace)
                self.renewed_at = sent
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
            sent = self.monotonic()
            self._lease = self.kube.replace(LEASE, body, self.namespace)
            self.renewed_at = sent
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

    def renew(self) -> float:
        """Extend the Lease and return when the write was sent (monotonic).

        Raises LeaseLost when another run has taken it, KubeError when the API failed (each
        request gives up after `renew_timeout`).
        """
        if self._lease is None:
            raise LeaseLost("lease is not held")
        timeout = renew_timeout(self.duration)
        body = dict(self._lease)
        sent = self.monotonic()
        body["spec"] = {**body["spec"], "renewTime": format_micro_time(self.clock())}
        try:
            self._lease = self.kube.replace(LEASE, body, self.namespace, timeout=timeout)
        except (Conflict, NotFound) as exc:
            latest = self.kube.get_or_none(LEASE, self.name, self.namespace, timeout=timeout)
            holder = (latest or {}).get("spec", {}).get("holderIdentity")
            if latest is None or holder != self.identity:
                self._lease = None
                raise LeaseLost(f"lease taken by {holder or 'nobody'}") from exc
            self._lease = latest
            return self.renew()
        self.renewed_at = sent
        return sent

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
    """Renews the Lease in the background and says whether it still counts as ours.

    `check()` is the guard before every destructive step, called from any thread (the volume
    workers, the wipe's watcher). It fails once `hold_deadline` of the last successful renewal
    has passed, whatever the renewer thread is doing (stuck in a request, dead), and from then
    on keeps failing. Any exception in the renewer other than an API error marks the Lease lost.
    """

    def __init__(self, lock: LeaseLock) -> None:
        if lock.renewed_at is None:
            raise ValueError("the lease must be acquired before it is kept")
        self.lock = lock
        self.lost = threading.Event()
        self.lost_reason = ""
        self._renewed_at: float = lock.renewed_at
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (before release)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @property
    def deadline(self) -> float:
        """Monotonic time from which the Lease no longer counts as ours."""
        with self._mutex:
            return hold_deadline(self._renewed_at, self.lock.duration)

    def check(self) -> None:
        """Raise LeaseLost unless the Lease still counts as ours: call before each destructive
        step. Thread-safe."""
        now = self.lock.monotonic()
        with self._mutex:
            if not self.lost.is_set():
                overdue = now - hold_deadline(self._renewed_at, self.lock.duration)
                if overdue < 0:
                    return
                age = now - self._renewed_at
                self._lose_locked(f"not renewed for {age:.1f}s (lease {self.lock.duration}s)")
            reason = self.lost_reason
        raise LeaseLost(reason or "lease lost")

    def _run(self) -> None:
        try:
            self._renew_until_stopped()
        except BaseException as exc:  # a renewer that dies must not leave the Lease "held"
            self._lose(f"lease renewer failed: {type(exc).__name__}: {exc}")

    def _renew_until_stopped(self) -> None:
        duration = self.lock.duration
        wait = renew_interval(duration)
        while not self._stop.wait(wait):
            try:
                self.check()
            except LeaseLost:
                return
            try:
                sent = self.lock.renew()
            except LeaseLost as exc:
                self._lose(str(exc))
                return
            except KubeError as exc:
                # Retry soon; check() ends our hold when the deadline passes meanwhile.
                age = self.lock.monotonic() - self._renewed_at
                log.warning("lease renewal failed (%s); last renewed %.1fs ago", exc, age)
                wait = retry_interval(duration)
                continue
            with self._mutex:
                if self.lost.is_set():
                    return  # once lost, a late success does not bring it back
                self._renewed_at = max(self._renewed_at, sent)
            wait = renew_interval(duration)

    def _lose(self, reason: str) -> None:
        with self._mutex:
            self._lose_locked(reason)

    def _lose_locked(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        log.error("lease lost: %s; no further destructive step starts", reason)
