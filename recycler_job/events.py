"""Kubernetes Events on PVs: what admins see in `kubectl describe pv` and `kubectl get events`.

Events for cluster-scoped objects live in the `default` namespace. They are created
synchronously, one request each, so none is lost when the process exits right after.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from recycler_job.clock import format_time, utcnow
from recycler_job.kube import EVENT, Kube, KubeError

log = logging.getLogger(__name__)

COMPONENT = "gluster-recycler"
EVENT_NAMESPACE = "default"
MAX_MESSAGE = 1024


class EventRecorder:
    """Records Events on PVs; a failure to record is logged, never fatal."""

    def __init__(self, kube: Kube | None, instance: str, *, dry_run: bool = False) -> None:
        self.kube = kube
        self.instance = instance[:128]
        self.dry_run = dry_run
        self.sent = 0

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
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": EVENT_NAMESPACE},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "name": name,
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": kind,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "action": "Recycle",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.kube.create(EVENT, body, EVENT_NAMESPACE)
            self.sent += 1
        except KubeError as exc:
            log.warning("could not record event %s on pv/%s: %s", reason, name, exc)
