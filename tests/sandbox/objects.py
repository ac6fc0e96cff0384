"""Builders for the Kubernetes objects the tests create, and a polling helper."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def gluster_pv(
    name: str,
    path: str,
    *,
    endpoints: str = "glusterfs-cluster",
    endpoints_namespace: str | None = None,
    policy: str = "Recycle",
    storage: str = "1Gi",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    storage_class: str = "",
    claim_ref: tuple[str, str] | None = None,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    """A statically provisioned glusterfs PV, as admins create them; `claim_ref`
    (namespace, name) pre-binds it to a claim of that name, as an admin does."""
    source: dict[str, Any] = {"endpoints": endpoints, "path": path}
    if endpoints_namespace:
        source["endpointsNamespace"] = endpoints_namespace
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    if finalizers:
        meta["finalizers"] = finalizers
    spec: dict[str, Any] = {
        "capacity": {"storage": storage},
        "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": policy,
        "storageClassName": storage_class,
        "glusterfs": source,
    }
    if claim_ref is not None:
        spec["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": claim_ref[0],
            "name": claim_ref[1],
        }
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec}


def pvc(
    name: str,
    namespace: str = "default",
    *,
    volume_name: str | None = None,
    storage: str = "1Gi",
    storage_class: str = "",
) -> dict[str, Any]:
    """A claim; with `volume_name` it asks for that PV explicitly."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": storage}},
    }
    if volume_name:
        spec["volumeName"] = volume_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def endpoints(name: str, namespace: str, hosts: list[str], port: int = 24007) -> dict[str, Any]:
    """The Endpoints object a glusterfs PV names."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace},
        "subsets": [{"addresses": [{"ip": h} for h in hosts], "ports": [{"port": port}]}],
    }


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.25, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or probe}")
        time.sleep(interval)
