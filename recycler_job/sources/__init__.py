"""Volume source types the recycler understands.

Each source type is one module exposing `describe(pv) -> <Source> | None`. Supporting another
type (a CSI gluster driver, NFS) means one new module here plus its mount code; `decide` only asks
`describe_source` whether a PV is something we know how to wipe.
"""

from typing import Any

from recycler_job.sources.glusterfs import GlusterSource
from recycler_job.sources.glusterfs import describe as describe_glusterfs

Source = GlusterSource


def describe_source(pv: dict[str, Any]) -> Source | None:
    """The recyclable source of `pv`, or None when no supported source type matches."""
    return describe_glusterfs(pv)


__all__ = ["GlusterSource", "Source", "describe_source"]
