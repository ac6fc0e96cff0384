"""The in-tree `spec.glusterfs` PersistentVolume source."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GlusterSource:
    """Where a glusterfs PV's data lives.

    `path` is what the PV names, `volume` or `volume/sub/dir`; the mount source is
    `host:/<path>`. `endpoints_namespace` is None when the PV does not name one.
    """

    endpoints: str
    path: str
    endpoints_namespace: str | None
    read_only: bool

    @property
    def volume(self) -> str:
        """The gluster volume name (first path component)."""
        return self.path.strip("/").split("/", 1)[0]

    @property
    def subdir(self) -> str:
        """The subdirectory inside the volume, '' for the volume root."""
        parts = self.path.strip("/").split("/", 1)
        return parts[1].strip("/") if len(parts) == 2 else ""

    @property
    def mount_path(self) -> str:
        """The path part of the mount source: `/volume` or `/volume/sub/dir`."""
        return "/" + self.path.strip("/")


def describe(pv: dict[str, Any]) -> GlusterSource | None:
    """The glusterfs source of `pv`, or None when it has none or it is malformed."""
    spec = pv.get("spec") or {}
    src = spec.get("glusterfs")
    if not isinstance(src, dict):
        return None
    path = src.get("path")
    endpoints = src.get("endpoints")
    if not isinstance(path, str) or not path.strip("/") or not isinstance(endpoints, str):
        return None
    if any(part in ("", ".", "..") for part in path.strip("/").split("/")):
        return None
    ns = src.get("endpointsNamespace")
    return GlusterSource(
        endpoints=endpoints,
        path=path.strip("/"),
        endpoints_namespace=ns if isinstance(ns, str) and ns else None,
        read_only=bool(src.get("readOnly", False)),
    )
