"""Kubernetes Events on PVs: what admins see in `kubectl describe pv` and `kubectl get events`.

Events for cluster-scoped objects live in the `default` namespace. They are written
synchronously, so none is lost when the process exits right after.

Repeats are aggregated as client-go's recorder does: the same PV, type, reason, message and
source update one Event's count and lastTimestamp instead of adding an object every run. A
short-lived process has no in-memory cache to correlate with, so the Event's name is derived
from those fields and looked up by name (get + patch, no list). Where the ClusterRole predates
that (create only, get forbidden), each Event is created as before, under a name of its own.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from recycler_job.api_errors import Conflict, KubeError
from recycler_job.clock import format_time, utcnow
from recycler_job.kube import EVENT, Kube
from recycler_job.logs import redact

log = logging.getLogger(__name__)

COMPONENT = "gluster-recycler"
EVENT_NAMESPACE = "default"
MAX_MESSAGE = 1024
FORBIDDEN = 403
ATTEMPTS = 3  # a concurrent writer of the same Event makes a patch or create conflict


def event_name(pv_name: str, pv_uid: str, kind: str, reason: str, message: str) -> str:
    """The same name for the same PV (by uid), type, reason, message and source."""
    key = "\0".join((pv_uid, kind, reason, message, COMPONENT)).encode()
    return f"{pv_name[:200]}.{hashlib.sha256(key).hexdigest()[:16]}"


class EventRecorder:
    """Records Events on PVs; a failure to record is logged, never fatal."""

    def __init__(self, kube: Kube | None, instance: str, *, dry_run: bool = False) -> None:
        self.kube = kube
        self.instance = instance[:128]
        self.dry_run = dry_run

    def normal(self, pv: dict[str, Any], reason: str, message: str) -> None:
        """A Normal event, e.g. `Recycled`."""
        self._emit(pv, "Normal", reason, message)

    def warning(self, pv: dict[str, Any], reason: str, message: str) -> None:
        """A Warning event, e.g. `RecycleFailed`."""
        self._emit(pv, "Warning", reason, message)

    def _emit(self, pv: dict[str, Any], kind: str, reason: str, message: str) -> None:
        meta = pv.get("metadata") or {}
        name = meta.get("name", "")
        if self.dry_run or self.kube is None:
            log.info("event (not sent) %s %s on pv/%s: %s", kind, reason, name, message)
            return
        stamp = format_time(utcnow())
        message = redact(message)[:MAX_MESSAGE]  # readable by anyone who can list Events
        uid = meta.get("uid", "")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(name, uid, kind, reason, message),
                "namespace": EVENT_NAMESPACE,
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "name": name,
                "uid": uid,
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": kind,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "action": "Recycle",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self._write(body, stamp)
        except KubeError as exc:
            log.warning("could not record event %s on pv/%s: %s", reason, name, exc)

    def _write(self, body: dict[str, Any], stamp: str) -> None:
        """Create the Event, or count one more on the existing one of the same name.

        The existing Event keeps its reportingInstance: those fields name who first reported
        it, and an update that changes them is what the API rejects for events.k8s.io.
        """
        assert self.kube is not None
        name = body["metadata"]["name"]
        for attempt in range(ATTEMPTS):
            try:
                existing = self.kube.get_or_none(EVENT, name, EVENT_NAMESPACE)
            except KubeError as exc:
                if exc.status != FORBIDDEN:
                    raise
                self._create_unaggregated(body)
                return
            try:
                if existing is None:
                    self.kube.create(EVENT, body, EVENT_NAMESPACE)
                else:
                    patch = {
                        "metadata": {"resourceVersion": existing["metadata"]["resourceVersion"]},
                        "count": int(existing.get("count") or 1) + 1,
                        "lastTimestamp": stamp,
                    }
                    self.kube.merge_patch(EVENT, name, patch, EVENT_NAMESPACE)
                return
            except Conflict:
                if attempt == ATTEMPTS - 1:
                    raise

    def _create_unaggregated(self, body: dict[str, Any]) -> None:
        """A ClusterRole from before aggregation grants `create` on events but not `get`:
        record the Event all the same, as a new object each run, rather than lose it."""
        assert self.kube is not None
        log.debug("events: get is forbidden; recording without aggregation")
        try:
            self.kube.create(EVENT, body, EVENT_NAMESPACE)
        except Conflict:
            # The fixed name exists from an earlier run: a name of this run's own.
            unique = dict(body, metadata=dict(body["metadata"]))
            unique["metadata"]["name"] = f"{body['metadata']['name']}.{time.time_ns():x}"
            self.kube.create(EVENT, unique, EVENT_NAMESPACE)
