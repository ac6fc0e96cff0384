"""How long the wipe's own gluster client keeps the attributes readdirplus returned.

Both backends learn every entry's type and size from readdirplus, then unlink it by name.
Before it sends the UNLINK, the client resolves the name (FUSE: ``fuse-resolve.c``; gfapi:
``glfs-resolve.c``) with a LOOKUP, which the md-cache translator answers from the readdirplus
attributes for ``md-cache-timeout`` seconds (1 by default).  A wipe that lists thousands of
names ahead of its unlinks (a large directory, a slow brick) outlives that second, and then
every LOOKUP is a round trip to the brick: two brick fops per file instead of one.  Our own
client (the FUSE mount this run made, the ``glfs_t`` of this wipe) keeps them for
``MD_CACHE_TIMEOUT_S``, the translator's maximum.

Nothing the wipe trusts for safety comes from that cache: a cached entry names a gfid we
saw in the tree, the kernel (FUSE) or the handle API (gfapi) acts on that very inode -- a
symlink is never followed, the client graph is this volume's and no other -- and the proof
that the PV directory is empty is a fresh READDIRP, which md-cache never answers
(docs/decisions.md, 2026-12-05).  The kernel's own entry and attribute timeouts are left at
their defaults.
"""

from __future__ import annotations

MD_CACHE_TIMEOUT_S = 600  # md-cache's maximum (glusterfs 10: min 0, max 600)


def md_cache_xlator(volume: str) -> str:
    """The client graph's md-cache translator of ``volume`` (``<volume>-md-cache``)."""
    return f"{volume}-md-cache"


def xlator_options(volume: str) -> list[tuple[str, str, str]]:
    """``(translator, key, value)`` for ``glfs_set_xlator_option`` / ``--xlator-option``."""
    return [(md_cache_xlator(volume), "md-cache-timeout", str(MD_CACHE_TIMEOUT_S))]


def fuse_mount_option(volume: str) -> str:
    """The same as one ``mount -t glusterfs -o`` option (``mount.glusterfs`` passes one
    ``xlator-option`` on)."""
    ((xlator, key, value),) = xlator_options(volume)
    return f"xlator-option={xlator}.{key}={value}"


def fuse_args(volume: str) -> list[str]:
    """The same as ``glusterfs`` arguments (the TLS mount runs ``glusterfs`` itself)."""
    return [f"--xlator-option={x}.{k}={v}" for x, k, v in xlator_options(volume)]
