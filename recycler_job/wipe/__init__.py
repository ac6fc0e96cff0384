"""Emptying a verified volume, by either backend.

- `engine`: the walk both backends share (scheduling across workers, the pass's worker
  budget, stats, the stop between two entries, the tenant-xattr rule).
- `trash`: gluster's trash directory as both backends handle it.
- `transport`: what the actor asks of a backend (`Target` in, `Opened` out) and the volume
  checks both make before a wipe.
- FUSE: `fuse` (directory-fd primitives, `wipe_tree`, the final emptiness check) and
  `fuse_transport` (mount, verify, wipe, unmount).
- libgfapi: `gfapi` (the ctypes binding), `gfapi_handles` (the handle primitives and
  `GfapiVolume.wipe`) and `gfapi_transport` (init, identity, wipe, close).

Gluster's own plumbing (CLI, mounts, `mountinfo`, the trash's names) is in `recycler_job.gluster`,
which never imports this package.
"""
