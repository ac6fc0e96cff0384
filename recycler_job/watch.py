"""Watches a volume while it is wiped, so a wipe stops the moment the data is someone's again.

The checks before the mount prove the volume was free a moment ago; a wipe can take minutes.
Each probe (the PV and its claims, the volume's gluster clients, the Lease) runs in its own
thread every `interval` seconds; the first one to see a change, or to fail to look, raises the
flag that the wipe checks between entries. "Could not check" stops the wipe too: a volume
whose state cannot be seen is not wiped further.

`volume_watcher` builds the watcher of one volume's wipe: the probes of what has no watch
(the volume's gluster clients, the Lease's own deadline) and their bounds. The PV and its
claims are watched by the pass's view (view.py), which raises the flag through `fire`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from recycler_job.errors import RecyclerError
from recycler_job.gluster.clients import ClientReport, client_report
from recycler_job.gluster.errors import VolumeInUse
from recycler_job.lease import LeaseKeeper, LeaseLost

log = logging.getLogger(__name__)

# Well below the 2 s the wipe may run blind after a change; each probe is one or two requests.
DEFAULT_INTERVAL = 1.0
DEFAULT_BOUND = 10.0
"""Seconds one probe may take, unless its caller gives it a bound of its own (`bounds`)."""

Probe = Callable[[], None]

# How long one gluster CLI call of a client poll may take per host during a wipe.
_PROBE_TIMEOUT = 5.0


class VolumeChanged(RecyclerError):
    """The volume stopped being ours to wipe while it was being wiped."""


class Watcher:
    """Runs `probes` (name -> callable raising VolumeChanged) until stopped or one fires.

    `bounds` (name -> seconds, default DEFAULT_BOUND) is how long one run of a probe may take
    at most; `stop()` waits that long for a probe still running, so its answer counts.
    Others (the cluster view, view.py) raise the flag through `fire`.
    """

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        interval: float = DEFAULT_INTERVAL,
        bounds: Mapping[str, float] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._probes = dict(probes)
        self._interval = interval
        self._bounds = {name: (bounds or {}).get(name, DEFAULT_BOUND) for name in self._probes}
        self._changed = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.reason = ""
        self._threads = [
            threading.Thread(
                target=self._loop, args=(name, probe), name=f"watch-{name}", daemon=True
            )
            for name, probe in self._probes.items()
        ]

    def start(self) -> Watcher:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop probing and wait for each probe's final answer, which counts like any other.

        A probe still running is waited for up to its bound; one that has not answered by then
        raises the flag ("could not check"): a wipe ends only on answers, never on silence.
        """
        self._done.set()
        stopped = time.monotonic()
        for thread, name in zip(self._threads, self._probes, strict=True):
            if not thread.is_alive() or self._changed.is_set():
                continue  # (once the flag is up, no later answer can lower it)
            thread.join(timeout=max(0.0, stopped + self._bounds[name] - time.monotonic()))
            if thread.is_alive():
                self._fire(f"could not check {name}: no answer within {self._bounds[name]:g}s")

    def fire(self, reason: str) -> None:
        """Raise the flag from outside the probes (thread-safe; the first reason is kept)."""
        self._fire(reason)

    def changed(self) -> bool:
        """The wipe's stop flag: True once a probe saw a change (thread-safe)."""
        return self._changed.is_set()

    def check(self) -> None:
        """Raise VolumeChanged when a probe saw a change."""
        if self._changed.is_set():
            raise VolumeChanged(self.reason)

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _fire(self, reason: str) -> None:
        with self._lock:
            if self._changed.is_set():
                return
            self.reason = reason
            self._changed.set()
        log.error("stopping the wipe: %s", reason)

    def _loop(self, name: str, probe: Probe) -> None:
        next_run = time.monotonic() + self._interval
        while not self._done.wait(max(0.0, next_run - time.monotonic())):
            next_run += self._interval  # a fixed rate: a slow probe does not stretch the period
            if self._changed.is_set():
                return
            try:
                probe()
            except VolumeChanged as exc:
                self._fire(str(exc))
                return
            except Exception as exc:
                self._fire(f"could not check {name}: {type(exc).__name__}: {exc}")
                return
            next_run = max(next_run, time.monotonic())  # behind: probe again, do not burst


# ---- the probes of one volume's wipe ---------------------------------------------------------


def gluster_probe_bound(hosts: tuple[str, ...]) -> float:
    """How long one poll of the volume's clients may take: two CLI calls (`clients`,
    `client-list`), each trying the hosts in turn, each host bounded by the CLI's --timeout
    plus the backstop of gluster.cli.run (`_PROBE_TIMEOUT + min(_PROBE_TIMEOUT, 5)`)."""
    return 2 * len(hosts) * (_PROBE_TIMEOUT + min(_PROBE_TIMEOUT, 5.0)) + 1.0


def _beyond(kinds: dict[str, int], allowed: dict[str, int]) -> dict[str, int]:
    """Client kinds counted more often than `allowed` allows, with the excess."""
    return {k: n - allowed.get(k, 0) for k, n in kinds.items() if n > allowed.get(k, 0)}


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


# Asking again when the only extra clients are of our own kinds: our old graph leaves within
# ~0.5 s of our next request; 5 tries 0.5 s apart also outlast FUSE's 1 s attribute cache.
OWN_GRAPH_TRIES = 5
OWN_GRAPH_WAIT_S = 0.5


def clients_besides_own(
    hosts: tuple[str, ...],
    volume: str,
    own: dict[str, int],
    request: Callable[[], None],
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> ClientReport:
    """The volume's clients with ours connected: ours must be the only one (VolumeInUse
    otherwise). The report is what the gluster clients probe compares with.

    A gluster client whose graph changes (the volume's client graph was changed, or two
    volfile answers raced while it connected) connects the new graph at once and stays
    listed with the old one too until its next request, and ~0.5 s after. So when the only
    clients beyond ours are of our own kinds, `request` sends one through our connection
    and the clients are asked again, up to OWN_GRAPH_TRIES times: what is still listed then
    is someone else's (a client of the same kind that came after the check before ours).
    """
    for attempt in range(1, OWN_GRAPH_TRIES + 1):
        report = client_report(hosts, volume, timeout=timeout)
        others = _beyond(report.foreign_kinds, own)
        if not others:
            return report
        if attempt == OWN_GRAPH_TRIES or not others.keys() <= own.keys():
            break
        log.info(
            "volume %s lists %s beyond our own connection: perhaps our own old graph; "
            "asking again after a request of ours",
            volume,
            _kinds(others),
        )
        request()
        sleep(OWN_GRAPH_WAIT_S)
    raise VolumeInUse(f"volume {volume} has clients besides our own: {_kinds(others)}")


def volume_watcher(
    hosts: tuple[str, ...],
    volume: str,
    clients: ClientReport | None,
    own: dict[str, int],
    keeper: LeaseKeeper | None,
) -> Watcher:
    """The watcher of one volume's wipe; each probe raises VolumeChanged on a change.

    The PV, its claims, the PVs on its volume and the Lease's holder are not polled: the
    view's watches apply every rule again on each change (view.watch_volume). Gluster has
    no watch, so the volume's clients are polled (when `clients`, the report taken with ours
    connected, is given); the Lease's own deadline is checked without a request.
    """
    probes: dict[str, Probe] = {}
    if clients is not None:
        allowed = {**own, **clients.foreign_kinds}

        def gluster_clients() -> None:
            report = client_report(hosts, volume, timeout=_PROBE_TIMEOUT)
            new = _beyond(report.foreign_kinds, allowed)
            if new:
                why = f"a new gluster client connected to volume {volume}: {_kinds(new)}"
                if new.keys() <= own.keys():  # the message names both, the wipe stops for both
                    why += (
                        " (of our own kind: another client, or ours listed twice because "
                        "the volume's client graph changed)"
                    )
                raise VolumeChanged(why)

        probes["gluster clients"] = gluster_clients
    if keeper is not None:

        def lease() -> None:
            # No API request (which may hang) delays this check.
            try:
                keeper.check()
            except LeaseLost as exc:
                raise VolumeChanged(f"the Lease is no longer ours: {exc}") from exc

        probes["lease"] = lease
    return Watcher(probes, bounds={"gluster clients": gluster_probe_bound(hosts)})
