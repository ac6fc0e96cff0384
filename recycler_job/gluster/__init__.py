"""GlusterFS plumbing, one concern a module; data flows down this list, never up.

* `errors`: the exceptions, each with a one-line message.
* `process`: runs `mount`, `umount` and `gluster` in their own process group, with a timeout.
* `hosts`: validates host lists, builds mount sources and options, compares pools by address.
* `parse`: pure parsers of the `gluster` CLI's output (volume info and status XML, client texts).
* `cli`: runs the `gluster` CLI against the hosts in turn and parses what it answers.
* `clients`: the connected-client check (is the volume in use by anyone but gluster itself?).
* `bricks`: brick health (every brick online, the same brick processes before and after).
* `probe`: looks at a mount path without hanging on a dead FUSE mount; reads mountinfo.
* `identity`: proves a verified mount is the volume the PV names (bricks, node uuids, trash).
* `records`: the mark that tells this tool's own mounts from everybody else's.
* `mount`: mount, verify, unmount, and clean up what a killed run left.

Safety rules these modules keep:

* A mount is only trusted after `mount.verify_mounted`: `mount.glusterfs` can exit 0 although
  nothing is mounted (a subdirectory that does not exist reproduces it), and then the
  mountpoint is a plain local directory.
* Nothing here ever removes a directory recursively: mountpoints are removed with
  `rmdir`, so a directory that still holds files is left where it is and reported.
* Only our own mounts are ever unmounted: the mount id `mount_volume` returned, or a mount
  carrying the record `mount_volume` writes before mounting (`records.is_own_mount`).
* Failures raise `GlusterError` (or `MountError`, `VolumeInUse`) with a one-line message;
  "could not check" is an error, never a pass.
"""
