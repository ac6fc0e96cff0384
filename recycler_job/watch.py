"""Watches a volume while it is wiped, so a wipe stops the moment the data is someone's again.

The checks before the mount prove the volume was free a moment ago; a wipe can take minutes.
Each probe (the PV and its claims, the volume's gluster clients, the Lease) runs in its own
thread every `interval` seconds; the first one to see a change, or to fail to look, raises the
flag that the wipe checks between entries. "Could not check" stops the wipe too: a volume
whose state cannot be seen is not wiped further.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from recycler_job.errors import RecyclerError

log = logging.getLogger(__name__)

# Well below the 2 s the wipe may run blind after a change; each probe is one or two requests.
DEFAULT_INTERVAL = 1.0
DEFAULT_BOUND = 10.0
"""Seconds one probe may take, unless its caller gives it a bound of its own (`bounds`)."""

Probe = Callable[[], None]


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
