"""One watched view of the cluster for a whole pass: listed once, then kept current by watches.

The rules (decide.py) read every PV and every claim. Reading them again for each check costs a
full list of the cluster each time (about 118 MB at 50,000 PVs and 100,000 claims), so the pass
lists PVs and claims once, keeps only the fields the rules read (`slim_pv`, `slim_claim`) and
follows every later change through watches from the list's resourceVersion, with bookmarks. A
410 Gone (the version left the server's window) relists the kind and replaces its state.
`--parallel` volumes share the view.

While a volume is wiped it is watched here (`watch_volume`): every event that touches it (its PV,
a claim its claimRef names or whose spec.volumeName is the PV, any PV on the same gluster
volume) applies every rule of `decide` again, and a change calls the wipe's stop callback. The
view is trusted only while it is current: each watch request is ended by the server after
`WATCH_TIMEOUT_S`, so a live watch is heard from at least that often; one not heard from for
`STALE_AFTER_S` (a frozen API server, a silent connection), or whose requests have failed for
`RESUME_WITHIN_S` (a cut connection that cannot be resumed), stops every wipe. Before the first
unlink, `prove_current` shows with two small requests that no change made before that moment is
missing (the argument is in docs/decisions.md, 2026-12-05).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recycler_job.api_errors import Expired, KubeError
from recycler_job.decide import (
    APPUIO_FAILED_AT_ANNOTATION,
    FIRST_SEEN_ANNOTATION,
    SKIP_ANNOTATION,
    Action,
    DecideSettings,
    decide,
)
from recycler_job.errors import VolumeError
from recycler_job.kube import LEASE, PV, PVC, Kube, ResourceKind, watch_stream
from recycler_job.snapshot import ClaimKey, ClusterSnapshot, gluster_path_parts

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 1
"""timeoutSeconds of each watch request. The server ends the request then, and the view starts
the next one from the last resourceVersion: a watch that is alive is heard from (an event, a
bookmark or the server's own end of the request) at least this often, which a silent TCP
connection cannot prove. Watch requests cost the server a registration in its watch cache and
carry no objects unless something changed."""
STALE_AFTER_S = 2.0
"""A watch not heard from for this long makes the view not current: every wipe stops."""
RESUME_WITHIN_S = 1.5
"""A watch whose requests fail (refused, reset, an error answer) for this long, counted from its
first failure, makes the view not current. A failure is a positive sign of a break, so it gets
less time than silence; with the request in flight at a cut (ended by the server up to
`WATCH_TIMEOUT_S` later) a cut stops the wipes within 2.5 s."""
PROOF_TIMEOUT_S = 3.0
"""How long `prove_current` waits for the watches to reach the versions it read."""
RETRY_BUDGET_S = 30.0
"""How long a request outside the watches is retried on 429 or 5xx while the view is current."""

Fire = Callable[[str], None]
Now = Callable[[], datetime]

_PV_ANNOTATIONS = (SKIP_ANNOTATION, FIRST_SEEN_ANNOTATION, APPUIO_FAILED_AT_ANNOTATION)


class NotCurrent(VolumeError):
    """The view cannot be proven current: what it says may miss a change."""


def _pick(source: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {key: source[key] for key in keys if source.get(key) is not None}


def slim_pv(pv: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a PV that the rules and the pass read, in the API's own shape (so
    `decide` reads a slim PV as it reads a whole one); everything else is dropped."""
    meta = pv.get("metadata") or {}
    spec = pv.get("spec") or {}
    slim_meta = _pick(meta, ("name", "uid", "resourceVersion", "deletionTimestamp"))
    annotations = _pick(meta.get("annotations"), _PV_ANNOTATIONS)
    if annotations:
        slim_meta["annotations"] = annotations
    if meta.get("labels"):
        slim_meta["labels"] = meta["labels"]
    slim_spec = _pick(spec, ("persistentVolumeReclaimPolicy",))
    gluster = spec.get("glusterfs")
    if gluster is not None:
        keys = ("endpoints", "endpointsNamespace", "path", "readOnly")
        slim_spec["glusterfs"] = _pick(gluster, keys) if isinstance(gluster, dict) else gluster
    claim_ref = spec.get("claimRef")
    if claim_ref is not None:
        keep = ("namespace", "name", "uid")
        slim_spec["claimRef"] = _pick(claim_ref, keep) if isinstance(claim_ref, dict) else claim_ref
    status = _pick(pv.get("status"), ("phase", "message", "lastPhaseTransitionTime"))
    return {"metadata": slim_meta, "spec": slim_spec, "status": status}


def slim_claim(claim: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a claim that the rules read: who it is and which volume it asks for."""
    meta = _pick(claim.get("metadata"), ("namespace", "name", "uid", "resourceVersion"))
    spec = _pick(claim.get("spec"), ("volumeName",))
    return {"metadata": meta, "spec": spec}


def version_number(resource_version: object) -> int | None:
    """A resourceVersion as the integer etcd gave it, None when it is not one.

    Kubernetes calls resourceVersions opaque; every etcd-backed server (all of them) sends
    etcd's revision, which only grows, and client-go's reflector relies on that order for
    bookmarks. Where a version is not an integer the view never compares it (see
    `prove_current`)."""
    if isinstance(resource_version, str) and resource_version.isdigit():
        return int(resource_version)
    return None


def _claim_key(claim: Mapping[str, Any]) -> ClaimKey:
    meta = claim.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _volume_of(pv: Mapping[str, Any] | None) -> str | None:
    parts = gluster_path_parts(dict(pv)) if pv else ()
    return parts[0] if parts else None


def _claim_ref_key(pv: Mapping[str, Any] | None) -> ClaimKey | None:
    ref = ((pv or {}).get("spec") or {}).get("claimRef")
    if not isinstance(ref, dict):
        return None
    return (str(ref.get("namespace") or ""), str(ref.get("name") or ""))


@dataclass
class Touched:
    """What one event (or a relist) may have changed, for finding the wipes it concerns."""

    pvs: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)
    claims: set[ClaimKey] = field(default_factory=set)
    volume_names: set[str] = field(default_factory=set)  # spec.volumeName of claims
    everything: bool = False


@dataclass
class _Kind:
    """One watched collection: where its watch stands and when it was last heard from."""

    kind: ResourceKind
    namespace: str | None = None
    field_selector: str | None = None
    resource_version: str = ""
    heard_at: float = 0.0  # an event, a bookmark, or the server ending a request
    clean_start: float = -1.0  # when the last request the server ended had started
    relists: int = 0
    error: str = ""
    failing_since: float | None = None  # the first failure since the watch was last heard from


@dataclass
class _Wiped:
    """A volume being wiped: the PV as read before the wipe and whom to tell of a change."""

    pv: dict[str, Any]
    volume: str
    fire: Fire
    settings: DecideSettings
    now: Now


class ClusterView:
    """PVs and claims (and the pass's Lease) as the watches last reported them.

    `load()` lists; `start()` watches from the list's versions; `stop()` ends the watches.
    All state is guarded by one lock; the rules run under it, against the live indexes.
    """

    def __init__(
        self,
        kube: Kube,
        *,
        lease: tuple[str, str, str] | None = None,  # namespace, name, our identity
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.monotonic = monotonic
        self._lock = threading.RLock()
        self._pvs: dict[str, dict[str, Any]] = {}
        self._pvs_by_volume: dict[str, set[str]] = {}
        self._claims: dict[ClaimKey, dict[str, Any]] = {}
        self._claims_by_volume: dict[str, dict[ClaimKey, dict[str, Any]]] = {}
        self._lease = lease
        self.lease_holder: str | None = None
        self._kinds: dict[ResourceKind, _Kind] = {PV: _Kind(PV), PVC: _Kind(PVC)}
        if lease is not None:
            namespace, name, _ = lease
            self._kinds[LEASE] = _Kind(LEASE, namespace, f"metadata.name={name}")
        self._wiped: dict[int, _Wiped] = {}
        self._next_id = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[ResourceKind, Any] = {}
        self.pages = 0

    # ---- reading the cluster ---------------------------------------------------------------

    def load(self) -> None:
        """List every PV and claim (and the Lease) once, paginated, keeping slim records."""
        for state in self._kinds.values():
            self._relist(state, initial=True)

    def _relist(self, state: _Kind, *, initial: bool = False) -> None:
        keep = {PV: slim_pv, PVC: slim_claim}.get(state.kind, lambda item: item)
        listed = self.kube.list_collection(
            state.kind, namespace=state.namespace, field_selector=state.field_selector, keep=keep
        )
        with self._lock:
            if state.kind is PV:
                self.pages = listed.pages
            self._replace(state.kind, listed.items)
            state.resource_version = listed.resource_version
            state.heard_at = self.monotonic()
            state.failing_since = None
            if not initial:
                state.relists += 1
                log.info("%s: watch expired (410); listed again", state.kind.kind)
                self._reconsider(Touched(everything=True))

    def _replace(self, kind: ResourceKind, items: list[dict[str, Any]]) -> None:
        """A relist's items replace everything the view held of `kind`."""
        if kind is PV:
            self._pvs.clear()
            self._pvs_by_volume.clear()
        elif kind is PVC:
            self._claims.clear()
            self._claims_by_volume.clear()
        else:
            self.lease_holder = None
        for item in items:
            self._apply_locked(kind, "ADDED", item, slim=False)

    # ---- applying events (pure; the watch threads call these) ------------------------------

    def apply(self, kind: ResourceKind, event_type: str, obj: dict[str, Any]) -> Touched:
        """Apply one watch event (already slimmed or whole) and tell the wipes it touches."""
        with self._lock:
            touched = self._apply_locked(kind, event_type, obj)
            state = self._kinds.get(kind)
            if state is not None:
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if isinstance(version, str) and version:
                    state.resource_version = version
                state.heard_at = self.monotonic()
                state.failing_since = None
            self._reconsider(touched)
            return touched

    def _apply_locked(
        self, kind: ResourceKind, event_type: str, obj: dict[str, Any], *, slim: bool = True
    ) -> Touched:
        """Apply one event; `slim=False` for records a list already slimmed."""
        touched = Touched()
        if event_type == "BOOKMARK":
            return touched
        if kind is PV:
            name = str((obj.get("metadata") or {}).get("name") or "")
            old = self._pvs.pop(name, None)
            if old is not None and (volume := _volume_of(old)) is not None:
                self._pvs_by_volume.get(volume, set()).discard(name)
            if event_type != "DELETED":
                new = slim_pv(obj) if slim else obj
                self._pvs[name] = new
                if (volume := _volume_of(new)) is not None:
                    self._pvs_by_volume.setdefault(volume, set()).add(name)
                    touched.volumes.add(volume)
            touched.pvs.add(name)
            if (volume := _volume_of(old)) is not None:
                touched.volumes.add(volume)
        elif kind is PVC:
            key = _claim_key(obj)
            old = self._claims.pop(key, None)
            if old is not None and (former := (old.get("spec") or {}).get("volumeName")):
                self._claims_by_volume.get(former, {}).pop(key, None)
                touched.volume_names.add(former)
            if event_type != "DELETED":
                new = slim_claim(obj) if slim else obj
                self._claims[key] = new
                if volume_name := new["spec"].get("volumeName"):
                    self._claims_by_volume.setdefault(volume_name, {})[key] = new
                    touched.volume_names.add(volume_name)
            touched.claims.add(key)
        elif kind is LEASE:
            holder = (
                None if event_type == "DELETED" else (obj.get("spec") or {}).get("holderIdentity")
            )
            self.lease_holder = holder if isinstance(holder, str) else None
            touched.everything = True
        return touched

    # ---- what the pass decides on ----------------------------------------------------------

    def pvs(self) -> list[dict[str, Any]]:
        """Every PV (slim), in no particular order."""
        with self._lock:
            return list(self._pvs.values())

    def claim_count(self) -> int:
        with self._lock:
            return len(self._claims)

    def snapshot(self) -> ClusterSnapshot:
        """Everything, for deciding on every PV at once (read before the watches start)."""
        with self._lock:
            by_volume = {
                name: list(claims.values()) for name, claims in self._claims_by_volume.items()
            }
            return ClusterSnapshot(
                pvs=list(self._pvs.values()), claims=self._claims, claims_by_volume=by_volume
            )

    def _decision_snapshot(self, pv: dict[str, Any]) -> ClusterSnapshot:
        """What `decide` needs about one PV: every claim, the claims naming it, and every PV on
        its gluster volume. Call with the lock held: it shares the live claim index."""
        name = str((pv.get("metadata") or {}).get("name") or "")
        volume = _volume_of(pv)
        others = [self._pvs[n] for n in sorted(self._pvs_by_volume.get(volume or "", ()))]
        naming = list(self._claims_by_volume.get(name, {}).values())
        return ClusterSnapshot(
            pvs=[pv], claims=self._claims, claims_by_volume={name: naming}, others=others
        )

    def decide(self, pv: dict[str, Any], settings: DecideSettings, now: datetime) -> Any:
        """`decide` for `pv` (as read, whole or slim) against the view's claims and PVs."""
        with self._lock:
            return decide(pv, self._decision_snapshot(pv), settings, now)

    # ---- watching ------------------------------------------------------------------------

    def start(self) -> ClusterView:
        """Watch every kind from where its list left off; idempotent."""
        if self._threads:
            return self
        for state in self._kinds.values():
            state.heard_at = self.monotonic()
            stream = self._streams[state.kind] = watch_stream()
            thread = threading.Thread(
                target=self._watch_loop,
                args=(state, stream),
                name=f"view-{state.kind.kind}",
                daemon=True,
            )
            self._threads.append(thread)
        monitor = threading.Thread(target=self._monitor, name="view-monitor", daemon=True)
        self._threads.append(monitor)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """End the watches (a request in flight is cut; the threads are daemons)."""
        self._stop.set()
        for stream in self._streams.values():
            with contextlib.suppress(Exception):
                stream.stop()
        for thread in self._threads:
            thread.join(timeout=0.5)

    def __enter__(self) -> ClusterView:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watch_loop(self, state: _Kind, stream: Any) -> None:
        while not self._stop.is_set():
            started = self.monotonic()
            try:
                for event_type, obj in self.kube.watch(
                    state.kind,
                    resource_version=state.resource_version,
                    timeout_seconds=WATCH_TIMEOUT_S,
                    namespace=state.namespace,
                    field_selector=state.field_selector,
                    watcher=stream,
                ):
                    if self._stop.is_set():
                        return
                    self.apply(state.kind, event_type, obj)
                with self._lock:
                    if not self._stop.is_set():
                        state.heard_at = self.monotonic()
                        state.clean_start = started
                        state.error = ""
                        state.failing_since = None
            except Expired:
                try:
                    self._relist(state)
                except KubeError as exc:
                    self._watch_failed(state, f"relist after 410: {exc}")
            except KubeError as exc:
                self._watch_failed(state, str(exc))
            except Exception as exc:  # a bug must not leave the view looking current
                self._watch_failed(state, f"{type(exc).__name__}: {exc}")

    def _watch_failed(self, state: _Kind, reason: str) -> None:
        with self._lock:
            state.error = reason
            if state.failing_since is None:
                state.failing_since = self.monotonic()
        log.debug("watch %s failed: %s", state.kind.kind, reason)
        self._stop.wait(0.2)

    def _monitor(self) -> None:
        """Stop every wipe as soon as the view stops being current."""
        while not self._stop.wait(0.1):
            reason = self.not_current()
            if reason is not None:
                with self._lock:
                    for wiped in list(self._wiped.values()):
                        wiped.fire(f"the view of the cluster is not current: {reason}")

    def not_current(self) -> str | None:
        """Why the view cannot be trusted now, or None while every watch is heard from."""
        now = self.monotonic()
        with self._lock:
            if not self._threads:
                return "its watches are not running"
            for state in self._kinds.values():
                silent = now - state.heard_at
                if silent > STALE_AFTER_S:
                    why = f" ({state.error})" if state.error else ""
                    return f"the {state.kind.kind} watch was not heard from for {silent:.1f}s{why}"
                since = state.failing_since
                if since is not None and now - since > RESUME_WITHIN_S:
                    return (
                        f"the {state.kind.kind} watch broke {now - since:.1f}s ago and could "
                        f"not be resumed ({state.error})"
                    )
        return None

    # ---- the proof before the first unlink ------------------------------------------------

    def prove_current(self) -> None:
        """Raise NotCurrent unless every PV and claim change made before this call is in the
        view (or will stop the wipe as soon as it arrives).

        For each of PVs and claims, a `limit=1` list (read from etcd, never from a cache) gives
        the version X the collection has now. The view is then current for that collection once
        its watch has reported X or later (an event or a bookmark), or once a watch request
        that started after X was read has been ended by the server: the server had then sent
        everything its watch cache held. docs/decisions.md (2026-12-05) gives the argument.
        """
        targets: list[tuple[_Kind, int | None, float]] = []
        for kind in (PV, PVC):
            version = self.retrying(
                f"list {kind.kind} (limit=1)", functools.partial(self.kube.collection_version, kind)
            )
            targets.append((self._kinds[kind], version_number(version), self.monotonic()))
        deadline = self.monotonic() + PROOF_TIMEOUT_S
        while True:
            behind = [
                state.kind.kind for state, x, t0 in targets if not self._reached(state, x, t0)
            ]
            if not behind:
                return
            if (reason := self.not_current()) is not None:
                raise NotCurrent(reason)
            if self.monotonic() > deadline:
                raise NotCurrent(
                    f"the {', '.join(behind)} watch did not reach the versions read "
                    f"within {PROOF_TIMEOUT_S:g}s"
                )
            time.sleep(0.02)

    def _reached(self, state: _Kind, target: int | None, read_at: float) -> bool:
        with self._lock:
            seen = version_number(state.resource_version)
            if target is not None and seen is not None and seen >= target:
                return True
            return state.clean_start >= read_at

    # ---- requests outside the watches ----------------------------------------------------

    def retrying(self, what: str, request: Callable[[], Any]) -> Any:
        """`request()`, retried with backoff on 429 (after its Retry-After) and 5xx while the
        view is current: a rate limit is not a change. NotCurrent once the view is not."""
        delay, started = 0.2, self.monotonic()
        while True:
            try:
                return request()
            except KubeError as exc:
                if not exc.transient or exc.status is None:
                    raise
                reason = self.not_current() if self._threads else None
                if reason is not None:
                    raise NotCurrent(f"{what}: {exc}; and {reason}") from exc
                if self.monotonic() - started > RETRY_BUDGET_S:
                    raise
                after = (exc.api_status.details if exc.api_status else {}).get("retryAfterSeconds")
                wait = min(float(after), 5.0) if isinstance(after, int | float) else delay
                log.info("%s: %s; retrying in %.1fs", what, exc, wait)
                time.sleep(wait)
                delay = min(delay * 2, 2.0)

    # ---- volumes being wiped -------------------------------------------------------------

    @contextlib.contextmanager
    def watch_volume(
        self, pv: dict[str, Any], settings: DecideSettings, now: Now, fire: Fire
    ) -> Iterator[None]:
        """While inside, apply every rule to `pv` again on each event that touches it, and
        call `fire(reason)` when it no longer holds or the view stops being current."""
        volume = _volume_of(pv) or ""
        with self._lock:
            key = self._next_id
            self._next_id += 1
            wiped = self._wiped[key] = _Wiped(pv, volume, fire, settings, now)
            self._check(wiped)
        try:
            yield
        finally:
            with self._lock:
                self._wiped.pop(key, None)

    def _reconsider(self, touched: Touched) -> None:
        """Apply the rules again to every wiped volume the change touches (lock held)."""
        for wiped in list(self._wiped.values()):
            if touched.everything or self._touches(wiped, touched):
                self._check(wiped)

    def _touches(self, wiped: _Wiped, touched: Touched) -> bool:
        name = wiped.pv["metadata"]["name"]
        if name in touched.pvs or name in touched.volume_names or wiped.volume in touched.volumes:
            return True
        refs = {_claim_ref_key(wiped.pv), _claim_ref_key(self._pvs.get(name))}
        return bool(refs & touched.claims)

    def _check(self, wiped: _Wiped) -> None:
        """The rules once more for one wiped volume (lock held); `fire` on any change."""
        reason = self._change(wiped)
        if reason is not None:
            wiped.fire(reason)

    def _change(self, wiped: _Wiped) -> str | None:
        meta = wiped.pv["metadata"]
        name, read_version = meta["name"], meta["resourceVersion"]
        if self._lease is not None and self.lease_holder != self._lease[2]:
            namespace, lease, _ = self._lease
            return f"Lease {namespace}/{lease} is now held by {self.lease_holder or 'nobody'}"
        current = self._pvs.get(name)
        if current is None:
            return f"pv/{name} was deleted"
        version = current["metadata"].get("resourceVersion")
        if version != read_version:
            return f"pv/{name} was modified (resourceVersion {read_version} -> {version})"
        again = decide(wiped.pv, self._decision_snapshot(wiped.pv), wiped.settings, wiped.now())
        if again.action is not Action.RECYCLE:
            return again.reason
        return None
