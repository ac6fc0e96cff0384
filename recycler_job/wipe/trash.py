"""Gluster's trash directory as both wipe backends handle it (see gluster/trash.py).

A whole-volume wipe keeps the trash for last: the wipe itself fills it. Observed on gluster
10.3 (docs/wipe.md): a removed trash comes back, ``rmdir`` of ``.trashcan`` (and, with
``features.trash-internal-op on``, of ``.trashcan/internal_op``) fails with EPERM, so an
emptied trash that stays is accepted, and nothing else is.
"""

from __future__ import annotations

from recycler_job.gluster import trash as gluster_trash

TRASH_DIR = gluster_trash.DEFAULT_NAME
TRASH_INTERNAL_OP = gluster_trash.INTERNAL_OP
DEFAULT_TRASH = frozenset({TRASH_DIR})
