"""Gluster's trash directory as both wipe backends handle it (see gluster/trash.py).

A whole-volume wipe keeps the trash for last: the wipe itself fills it. Observed on gluster
10.3 (docs/wipe.md): a removed trash comes back, ``rmdir`` of ``.trashcan`` (and, with
``features.trash-internal-op on``, of ``.trashcan/internal_op``) fails with EPERM, so an
emptied trash that stays is accepted, and nothing else is.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable, Sequence

from recycler_job.gluster import trash as gluster_trash
from recycler_job.wipe.engine import Engine, K, Node, R, wipe_error

TRASH_DIR = gluster_trash.DEFAULT_NAME
TRASH_INTERNAL_OP = gluster_trash.INTERNAL_OP
DEFAULT_TRASH = frozenset({TRASH_DIR})


def _internal_op(like: K) -> K:
    """``internal_op`` as the backend names entries (str over FUSE, bytes over gfapi)."""
    return os.fsencode(TRASH_INTERNAL_OP) if isinstance(like, bytes) else TRASH_INTERNAL_OP


def keeps_on_eperm(parent: Node[R, K], name: K, trash: frozenset[K]) -> bool:
    """Whether the subdirectory ``name`` of ``parent`` is a trash's ``internal_op``, which
    gluster may refuse to remove (EPERM): it then stays, and the wipe goes on."""
    return parent.top and parent.name in trash and name == _internal_op(name)


def empty_trash(
    engine: Engine[R, K],
    label: str,
    *,
    unlink_if_not_dir: Callable[[], bool],
    open_dir: Callable[[], Node[R, K] | None],
    remove_dir: Callable[[], bool],
    tolerated: frozenset[int] = frozenset(),
) -> None:
    """Empty a trash directory after the rest (the wipe itself filled it), then try to remove it.

    The backend's primitives: ``unlink_if_not_dir`` unlinks (never follows) an entry of the
    trash's name that is not a directory, True when it did or the entry is gone;
    ``open_dir`` opens the directory without following it and ``track``s it (None: gone);
    ``remove_dir`` removes it (False: its parent is gone). EPERM (gluster refuses) and ENOENT
    are accepted, and ``tolerated`` errnos on top: the emptiness check that follows decides.
    """
    if unlink_if_not_dir():
        return
    node = open_dir()
    if node is None:
        return
    engine.run(node, label)
    engine.release(node)
    try:
        if not remove_dir():
            return
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EPERM) or exc.errno in tolerated:
            return  # EPERM: gluster's trash translator refuses; it stays, empty
        raise wipe_error("rmdir", label, exc) from exc
    engine.main_counts.dirs += 1


def trash_leftovers(
    name: K, names: Sequence[K], internal_op: Callable[[], Sequence[K] | None]
) -> list[K]:
    """What is left in the trash ``name`` (listing ``names``) beyond an empty ``internal_op``.

    ``internal_op`` lists that directory, or gives None when it is not a real directory
    (a leftover itself).
    """
    inner = _internal_op(name)
    if list(names) != [inner]:
        return [posixpath.join(name, n) for n in names]
    found = internal_op()
    if found is None:
        return [posixpath.join(name, inner)]
    return [posixpath.join(name, inner, n) for n in found]
