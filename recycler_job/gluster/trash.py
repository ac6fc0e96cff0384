"""Gluster's trash directory: its name on a volume, and the rules both wipe backends follow.

The trash translator keeps its directory at the volume root under the name of
``features.trash-dir`` (default ``.trashcan``), and its ``internal_op`` inside it. Both
backends (wipe.py over FUSE, gfapi_wipe.py over libgfapi) take the names from here:

* At the root of a whole-volume PV, an entry of one of :meth:`Trash.root_names` (the
  configured name, and ``.trashcan``, which a volume keeps after the trash is renamed or
  turned off) is handled last: a *directory* is emptied and its removal tried (gluster
  refuses it with EPERM once it has been the trash; an empty one is then accepted); anything
  else (a tenant's file or symlink of that name, with the trash off) is an ordinary entry and
  is unlinked, never followed.
* A subdirectory PV whose path lies in the trash (``vol/.trashcan``, ``vol/.trashcan/...``,
  with either name) is refused whatever the trash setting: its wipe would purge gluster's own
  ``internal_op`` or the trash of other paths.
* A subdirectory PV's trash is ``<name>/<subdir>`` for each of these names (gfapi empties it;
  FUSE cannot reach it and refuses a subdirectory PV while the trash is on).
"""

from __future__ import annotations

from dataclasses import dataclass

from recycler_job.gluster.errors import GlusterError, TrashInTheWay
from recycler_job.gluster.parse import VolumeInfo

DEFAULT_NAME = ".trashcan"
INTERNAL_OP = "internal_op"
DIR_OPTION = "features.trash-dir"


@dataclass(frozen=True)
class Trash:
    """Where a volume's trash translator keeps its directory, and whether it is on."""

    name: str = DEFAULT_NAME
    on: bool = False

    @classmethod
    def of(cls, info: VolumeInfo) -> Trash:
        """The trash of ``info``'s volume (``features.trash-dir``, ``features.trash``).

        GlusterError for a name that is not one plain directory entry: the wipe could not
        tell which directory is the trash.
        """
        raw = info.options.get(DIR_OPTION, DEFAULT_NAME)
        name = raw.strip().strip("/")
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise GlusterError(
                f"volume {info.name}: unusable {DIR_OPTION} {raw!r}: cannot tell its trash "
                "directory; not wiped"
            )
        return cls(name=name, on=info.trash)

    @property
    def root_names(self) -> frozenset[str]:
        """Names at the volume root handled as a trash directory (see the module doc)."""
        return frozenset({self.name, DEFAULT_NAME})

    def check_pv_path(self, volume: str, subdir: str | None) -> None:
        """Refuse (TrashInTheWay) a subdirectory PV that lies in the trash; nothing is removed."""
        parts = [p for p in (subdir or "").split("/") if p]
        if parts and parts[0] in self.root_names:
            raise TrashInTheWay(
                f"the PV's path {volume}/{'/'.join(parts)} lies in gluster's trash directory "
                f"{parts[0]!r} ({DIR_OPTION} is {self.name!r}): wiping it would purge gluster's "
                "own internal_op or the trash of other paths; not wiped"
            )
