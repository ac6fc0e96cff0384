"""The durable record behind `--mode recreate`: a PV is never lost between DELETE and POST.

Before deleting a wiped PV, its clean copy is written to a ConfigMap next to the Lease. Every run
replays the record before anything else, under the Lease:

- the PV is gone: create the clean copy (the previous run was killed between delete and create);
- the PV exists with the recorded uid: the delete never happened; drop the record and let the
  normal rules handle the PV (it is still Failed/Released and will be wiped again if eligible);
- the PV exists with another uid: it was re-created already; drop the record;
- the PV is still terminating (a finalizer holds it) or the create is refused: report it, keep
  the record for the next run, and go on with the other records and the pass.

A record is written only after the wipe was verified, and it names the uid it was taken from, so
a stale record can never publish a volume that was not wiped. A record is replayed only if this
tool could have written it (`replay_refusal`): whoever can edit the ConfigMap must not be able
to make the ServiceAccount create an arbitrary PV.

The DELETE is sent once and its outcome can be unknown (a reply lost to a timeout): after any
error of the delete the PV is read again, and the record is forgotten only once the PV exists
again or is known never to have been deleted.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from recycler_job import failpoints
from recycler_job.api_errors import ClusterUnavailable, Conflict, KubeError
from recycler_job.clock import format_time, utcnow
from recycler_job.kube import CONFIGMAP, PV, Kube
from recycler_job.pv_writes import (
    KEPT_SYSTEM_ANNOTATIONS,
    PV_PROTECTION,
    SYSTEM_ANNOTATION_PREFIXES,
)

log = logging.getLogger(__name__)

RECORD_PV_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec"})
RECORD_METADATA_KEYS = frozenset({"name", "labels", "annotations", "finalizers"})
RECORD_SPEC_KEYS = frozenset(
    {
        "accessModes",
        "capacity",
        "claimRef",
        "glusterfs",
        "mountOptions",
        "nodeAffinity",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeMode",
    }
)
"""What `pv_writes.clean_copy` of a glusterfs PV can hold: any other spec key (hostPath, csi,
nfs, local, or a volume source added later) is refused."""
RECORD_CLAIM_REF_KEYS = frozenset({"apiVersion", "kind", "namespace", "name"})
DELETE_WAIT_SECONDS = 60.0
# A foreign finalizer is removed by its owner or by an admin, not by waiting: stop sooner.
FOREIGN_FINALIZER_WAIT_SECONDS = 5.0


class StillTerminating(KubeError):
    """The deleted PV is still there (finalizers): it is re-created once it is gone."""


def replay_refusal(name: str, uid: object, pv: dict[str, Any]) -> str | None:
    """Why a record is not one `clean_copy` of a glusterfs PV could have produced; None if it is.

    The ServiceAccount may create PVs, and anyone who can update the ConfigMap could otherwise
    use it: a hostPath `/` PV, or a PV pre-bound to their own claim. So a record is replayed
    only as this tool writes them: a v1 PersistentVolume named after its key, with the uid of
    the PV it replaces, a `glusterfs` source and no other, no status, no uid or
    resourceVersion of its own, no control-plane annotation, and a claimRef only as an admin's
    reservation (namespace and name, no uid).
    """
    if not isinstance(uid, str) or not uid.strip():
        return "it names no uid of a deleted PV"
    if pv.get("apiVersion") != "v1" or pv.get("kind") != "PersistentVolume":
        return f"it holds a {pv.get('apiVersion')}/{pv.get('kind')}, not a v1 PersistentVolume"
    if extra := sorted(set(pv) - RECORD_PV_KEYS):
        return f"the PV carries {', '.join(extra)}"
    meta, spec = pv.get("metadata"), pv.get("spec")
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        return "the PV has no metadata or no spec"
    if meta.get("name") != name:
        return f"the PV is named {meta.get('name')!r}, not {name!r}"
    if extra := sorted(set(meta) - RECORD_METADATA_KEYS):
        return f"the PV's metadata carries {', '.join(extra)}"
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        return "the PV's annotations are not a map"
    if system := sorted(
        key
        for key in annotations
        if str(key).startswith(SYSTEM_ANNOTATION_PREFIXES) and key not in KEPT_SYSTEM_ANNOTATIONS
    ):
        return f"the PV carries control-plane annotations ({', '.join(system)})"
    if extra := sorted(set(spec) - RECORD_SPEC_KEYS):
        return f"the PV's spec carries {', '.join(extra)}: only a glusterfs volume is re-created"
    gluster = spec.get("glusterfs")
    if not isinstance(gluster, dict) or not gluster.get("endpoints") or not gluster.get("path"):
        return "the PV has no glusterfs source (endpoints and path)"
    ref = spec.get("claimRef")
    if ref is not None:
        if not isinstance(ref, dict):
            return "the PV's claimRef is not a map"
        if extra := sorted(set(ref) - RECORD_CLAIM_REF_KEYS):
            return (
                f"the PV's claimRef carries {', '.join(extra)}: a record keeps only an "
                "admin's reservation (namespace and name)"
            )
        if ref.get("kind", "PersistentVolumeClaim") != "PersistentVolumeClaim":
            return f"the PV's claimRef names a {ref.get('kind')}, not a claim"
    return None


@dataclass(frozen=True)
class Replayed:
    """What replay did with one record; `error` is set when it could not, and the record
    is kept for the next run."""

    name: str
    line: str
    error: str = ""


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
        """What a killed run left to finish (unreadable entries are left out)."""
        return self._read()[0]

    def _read(self) -> tuple[list[Entry], list[str]]:
        """The readable entries, and the keys of the ones that are not."""
        cm = self.kube.get_or_none(CONFIGMAP, self.name, self.namespace)
        result, unreadable = [], []
        for key, value in ((cm or {}).get("data") or {}).items():
            try:
                raw = json.loads(value)
                entry = Entry(name=key, uid=raw["uid"], pv=raw["pv"])
            except (ValueError, KeyError, TypeError):
                unreadable.append(key)
                continue
            if (
                not isinstance(entry.uid, str)
                or not isinstance(entry.pv, dict)
                or (entry.pv.get("metadata") or {}).get("name") != key
            ):
                unreadable.append(key)
                continue
            result.append(entry)
        return result, unreadable

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

        When the delete fails, the PV is read again (`_after_failed_delete`): the error is
        raised, and the record dropped, only when the PV is there, unchanged, not deleting.
        """
        meta = pv["metadata"]
        self.record(pv, clean)
        try:
            self.kube.delete(
                PV, meta["name"], uid=meta["uid"], resource_version=meta["resourceVersion"]
            )
        except KubeError as exc:
            return self._after_failed_delete(Entry(meta["name"], meta["uid"], clean), exc)
        failpoints.hit("after-delete")
        self._wait_gone(pv)
        created = self.kube.create(PV, clean)
        failpoints.hit("after-create")
        self.forget(meta["name"])
        return created

    def _after_failed_delete(self, entry: Entry, error: KubeError) -> dict[str, Any]:
        """Settle a delete whose outcome is unknown: a lost reply may hide a delete that
        happened (and a resend would answer 404 or 409 for it).

        The PV still there with the recorded uid and no deletionTimestamp: nothing was
        deleted; drop the record and raise `error`. Being deleted: wait as replay does (the
        record is kept if it takes too long). Gone, or another uid: create it from the record,
        then drop the record. A failure to read or create keeps the record for the next run.
        """
        current = self.kube.get_or_none(PV, entry.name)
        if current is not None and current["metadata"].get("uid") == entry.uid:
            if not current["metadata"].get("deletionTimestamp"):
                self.forget(entry.name)
                raise error
            self._wait_gone(current)
        log.warning(
            "pv/%s: the delete reported %s: %s, but the PV was deleted; re-creating it",
            entry.name,
            type(error).__name__,
            error,
        )
        return self._create_from_record(entry)

    def _create_from_record(self, entry: Entry) -> dict[str, Any]:
        """Create the PV of `entry` (or find that someone did meanwhile), then drop the
        record: never before the PV exists."""
        try:
            created = self.kube.create(PV, entry.pv)
        except Conflict:  # created meanwhile by someone else
            created = {}
        failpoints.hit("after-create")
        self.forget(entry.name)
        return created

    def replay(self, *, dry_run: bool = False) -> list[Replayed]:
        """Finish what a killed run left, one record at a time.

        A record that cannot be replayed now (its PV stuck terminating on a finalizer, the
        create refused) is reported with an error and kept for the next run; the others, and
        the rest of the pass, go on. Only 401/403 (ClusterUnavailable) stops the pass.
        """
        entries, unreadable = self._read()
        done = [
            Replayed(key, f"{key}: unreadable record kept", error="recreate record is unreadable")
            for key in unreadable
        ]
        for key in unreadable:
            log.error("recreate record %s: unreadable entry %s", self.name, key)
        for entry in entries:
            try:
                done.append(self._replay_one(entry, dry_run=dry_run))
            except ClusterUnavailable:
                raise
            except KubeError as exc:
                error = f"not re-created from the record: {type(exc).__name__}: {exc}"
                log.error("pv/%s: %s; record kept for the next run", entry.name, error)
                done.append(Replayed(entry.name, f"{entry.name}: {error}", error=error))
        return done

    def _replay_one(self, entry: Entry, *, dry_run: bool) -> Replayed:
        refusal = replay_refusal(entry.name, entry.uid, entry.pv)
        if refusal is not None:
            error = f"record refused, not replayed: {refusal} (kept: check and remove it)"
            log.error("pv/%s: %s", entry.name, error)
            return Replayed(entry.name, f"{entry.name}: {error}", error=error)
        current = self.kube.get_or_none(PV, entry.name)
        if current is not None and current["metadata"].get("uid") == entry.uid:
            if current["metadata"].get("deletionTimestamp"):
                if dry_run:
                    return Replayed(
                        entry.name, f"{entry.name}: would re-create after its deletion completes"
                    )
                self._wait_gone(current)
                current = None
            else:
                if not dry_run:
                    self.forget(entry.name)
                return Replayed(entry.name, f"{entry.name}: never deleted; record dropped")
        if current is not None:
            if not dry_run:
                self.forget(entry.name)
            return Replayed(entry.name, f"{entry.name}: already re-created; record dropped")
        if dry_run:
            return Replayed(entry.name, f"{entry.name}: would re-create from the record")
        self._create_from_record(entry)
        log.warning("pv/%s re-created from the record a killed run left", entry.name)
        return Replayed(entry.name, f"{entry.name}: re-created from the record")

    def _wait_gone(self, pv: dict[str, Any]) -> None:
        """Wait until the deleted `pv` (this uid) is gone; StillTerminating when it is not.

        Only `kubernetes.io/pv-protection`, which the controller removes from an unbound PV
        promptly, is worth a long wait; any other finalizer gets a short one.
        """
        name, uid = pv["metadata"]["name"], pv["metadata"]["uid"]
        started = time.monotonic()
        while True:
            current = self.kube.get_or_none(PV, name)
            if current is None or current["metadata"].get("uid") != uid:
                return
            finalizers = current["metadata"].get("finalizers") or []
            foreign = [f for f in finalizers if f != PV_PROTECTION]
            limit = FOREIGN_FINALIZER_WAIT_SECONDS if foreign else DELETE_WAIT_SECONDS
            waited = time.monotonic() - started
            if waited >= limit:
                raise StillTerminating(
                    f"pv/{name} is still being deleted after {waited:.0f}s "
                    f"(finalizers: {', '.join(finalizers) or 'none'}); "
                    "it is re-created from the record once it is gone"
                )
            time.sleep(0.5)
