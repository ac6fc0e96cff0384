"""The durable record behind `--mode recreate`: a PV is never lost between DELETE and POST.

Before deleting a wiped PV, its clean copy is written to a ConfigMap next to the Lease. Every run
replays the record before anything else, under the Lease:

- the PV is gone: create the clean copy (the previous run was killed between delete and create);
- the PV exists with the recorded uid: the delete never happened; drop the record and let the
  normal rules handle the PV (it is still Failed/Released and will be wiped again if eligible);
- the PV exists with another uid: it was re-created already; drop the record.

A record is written only after the wipe was verified, and it names the uid it was taken from, so
a stale record can never publish a volume that was not wiped.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from recycler_job import failpoints
from recycler_job.clock import format_time, utcnow
from recycler_job.kube import CONFIGMAP, PV, Conflict, Kube, KubeError, NotFound

log = logging.getLogger(__name__)

# Annotations the control plane writes; a re-created PV must not carry them.
SYSTEM_ANNOTATION_PREFIXES = ("pv.kubernetes.io/", "kubectl.kubernetes.io/last-applied")
DELETE_WAIT_SECONDS = 60.0


def clean_copy(pv: dict[str, Any], drop_annotations: tuple[str, ...] = ()) -> dict[str, Any]:
    """The PV as an admin would have created it: name, labels, user annotations, finalizers
    the admin set, and spec without claimRef; no status, uid, resourceVersion or managedFields."""
    meta = pv.get("metadata") or {}
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if not key.startswith(SYSTEM_ANNOTATION_PREFIXES) and key not in drop_annotations
    }
    spec = copy.deepcopy(pv.get("spec") or {})
    spec.pop("claimRef", None)
    new_meta: dict[str, Any] = {"name": meta["name"]}
    if meta.get("labels"):
        new_meta["labels"] = dict(meta["labels"])
    if annotations:
        new_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": new_meta, "spec": spec}


@dataclass(frozen=True)
class Entry:
    """One PV being re-created."""

    name: str
    uid: str
    pv: dict[str, Any]


class Journal:
    """The ConfigMap `<lease-name>-recreate`: one key per PV being re-created."""

    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name

    def entries(self) -> list[Entry]:
        """What a killed run left to finish."""
        cm = self.kube.get_or_none(CONFIGMAP, self.name, self.namespace)
        result = []
        for key, value in ((cm or {}).get("data") or {}).items():
            try:
                raw = json.loads(value)
                result.append(Entry(name=key, uid=raw["uid"], pv=raw["pv"]))
            except (ValueError, KeyError, TypeError):
                log.error("recreate record %s: unreadable entry %s", self.name, key)
        return result

    def record(self, pv: dict[str, Any], clean: dict[str, Any]) -> None:
        """Durably note that `pv` (this uid) is about to be deleted and re-created as `clean`."""
        meta = pv["metadata"]
        value = json.dumps(
            {"uid": meta["uid"], "recordedAt": format_time(utcnow()), "pv": clean},
            sort_keys=True,
        )
        self._update(lambda data: {**data, meta["name"]: value})

    def forget(self, name: str) -> None:
        """Drop the entry for `name` once its PV exists again (or never went away)."""
        self._update(lambda data: {k: v for k, v in data.items() if k != name})

    def _update(self, change: Any) -> None:
        for _ in range(5):
            cm = self.kube.get_or_none(CONFIGMAP, self.name, self.namespace)
            if cm is None:
                data = change({})
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "labels": {"app.kubernetes.io/name": "gluster-recycler"},
                    },
                    "data": data,
                }
                try:
                    self.kube.create(CONFIGMAP, body, self.namespace)
                    return
                except Conflict:
                    continue
            cm["data"] = change(cm.get("data") or {})
            try:
                self.kube.replace(CONFIGMAP, cm, self.namespace)
                return
            except Conflict:
                continue
        raise KubeError(f"recreate record {self.namespace}/{self.name}: too many conflicts")

    # ---- the two halves of a re-create ------------------------------------------------------

    def recreate(self, pv: dict[str, Any], clean: dict[str, Any]) -> dict[str, Any]:
        """Record, delete (uid + resourceVersion preconditions), wait until gone, create.

        Raises Conflict when the PV changed since it was read: then nothing was deleted
        and the record is dropped again.
        """
        meta = pv["metadata"]
        self.record(pv, clean)
        try:
            self.kube.delete(
                PV, meta["name"], uid=meta["uid"], resource_version=meta["resourceVersion"]
            )
        except (Conflict, NotFound):
            self.forget(meta["name"])
            raise
        failpoints.hit("after-delete")
        self._wait_gone(meta["name"], meta["uid"])
        created = self.kube.create(PV, clean)
        self.forget(meta["name"])
        return created

    def replay(self, *, dry_run: bool = False) -> list[str]:
        """Finish what a killed run left; returns one line per entry for the log and report."""
        done = []
        for entry in self.entries():
            current = self.kube.get_or_none(PV, entry.name)
            if current is not None and current["metadata"].get("uid") == entry.uid:
                if current["metadata"].get("deletionTimestamp"):
                    if dry_run:
                        done.append(f"{entry.name}: would re-create after its deletion completes")
                        continue
                    self._wait_gone(entry.name, entry.uid)
                    current = None
                else:
                    if not dry_run:
                        self.forget(entry.name)
                    done.append(f"{entry.name}: never deleted; record dropped")
                    continue
            if current is not None:
                if not dry_run:
                    self.forget(entry.name)
                done.append(f"{entry.name}: already re-created; record dropped")
                continue
            if dry_run:
                done.append(f"{entry.name}: would re-create from the record")
                continue
            with contextlib.suppress(Conflict):  # created meanwhile by someone else
                self.kube.create(PV, entry.pv)
            self.forget(entry.name)
            done.append(f"{entry.name}: re-created from the record")
            log.warning("pv/%s re-created from the record a killed run left", entry.name)
        return done

    def _wait_gone(self, name: str, uid: str) -> None:
        deadline = time.monotonic() + DELETE_WAIT_SECONDS
        while time.monotonic() < deadline:
            current = self.kube.get_or_none(PV, name)
            if current is None or current["metadata"].get("uid") != uid:
                return
            time.sleep(0.5)
        raise KubeError(f"pv/{name} still exists {DELETE_WAIT_SECONDS:.0f}s after its deletion")
