"""Empty the root of a verified mount without ever touching anything outside it.

Everything below the root is removed through directory file descriptors (``unlinkat``,
``unlinkat(AT_REMOVEDIR)``, ``fstatat(AT_SYMLINK_NOFOLLOW)`` relative to a directory we opened
``O_NOFOLLOW|O_DIRECTORY``), so a rename or a symlink planted during the wipe cannot redirect it
outside the tree, and a symlink is only ever unlinked, never followed.  Every entry's ``st_dev``
is compared with the root's: an entry on another device is an error and is neither entered nor
removed.

Unlink over a FUSE mount is one network round trip per file, so directories are emptied in
parallel by the shared tree walk of wipe_engine.py (one thread per directory at a time: unlinks
in one directory are serialized by the kernel anyway); this module supplies its file system
primitives.  Directories are streamed with ``scandir``.  Chains deeper than ``_RELOCATE_DEPTH``
are renamed up to the top of the tree so that the number of open directory descriptors stays
bounded even for adversarially deep trees.

Gluster's trash translator (``features.trash``) keeps a ``.trashcan`` directory at the volume
root (or the name ``features.trash-dir`` gives: ``trash`` names every directory handled so,
see gluster/trash.py).  Observed on gluster 10.3 through a FUSE mount (see docs/wipe.md):

* ``features.trash`` never enabled: there is no ``.trashcan``.
* ``features.trash on``: ``.trashcan`` appears at the root.  Unlinking a file (up to
  ``features.trash-max-filesize``) *moves* it to ``.trashcan/<path>_<timestamp>``; unlinking
  inside ``.trashcan`` deletes for good; ``rmdir``/``rename`` of ``.trashcan`` itself fail with
  EPERM.
* ``features.trash off`` again: ``.trashcan`` stays and still cannot be removed (EPERM).
* ``features.trash-internal-op on``: ``.trashcan/internal_op`` is created and its ``rmdir``
  fails with EPERM; with the option off it can be removed.

So the wipe removes everything except ``.trashcan`` first, then empties ``.trashcan`` (which by
then holds whatever the wipe itself moved there), then tries to remove it and its
``internal_op``; EPERM there is accepted and :func:`verify_empty` accepts exactly an empty
``.trashcan`` (or one holding only an empty ``internal_op``) at the root.
"""

from __future__ import annotations

import errno
import os
import stat
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from recycler_job.wipe.engine import (
    DEFAULT_WORKERS,
    SUBDIR_BATCH,
    Counts,
    Engine,
    LocalWork,
    Node,
    StopFlag,
    WipeError,
    WipeStats,
    WorkerBudget,
    ensure_empty,
    is_tenant_xattr,
    wipe,
)
from recycler_job.wipe.engine import (
    wipe_error as _os_error,
)
from recycler_job.wipe.trash import DEFAULT_TRASH as _DEFAULT_TRASH
from recycler_job.wipe.trash import (
    TRASH_INTERNAL_OP,
    empty_trash,
    keeps_on_eperm,
    trash_leftovers,
)

__all__ = [
    "VerifiedRoot",
    "WipeCrossDevice",
    "WipeWrongRoot",
    "open_verified_root",
    "reset_root",
    "verify_empty",
    "wipe_tree",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SUBDIR_BATCH = SUBDIR_BATCH  # a module global, so that tests can make it small
_RELOCATE_DEPTH = 32  # deeper directories are renamed to the top to bound open descriptors

# Test seam: called with (parent_fd, name) just before a subdirectory is opened.
_before_open_dir: Callable[[int, str], None] | None = None

_FdNode = Node[int, str]


class WipeCrossDevice(WipeError):
    """An entry below the root lives on another device (a mount); it was not touched."""


class WipeWrongRoot(WipeError):
    """The directory at the path is not the root of the mount that was verified."""


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _open_root(root: str) -> int:
    """Open the root without following a symlink: a symlinked root is refused, not followed."""
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                if stat.S_ISLNK(os.lstat(root).st_mode):
                    raise WipeError(
                        f"refusing to wipe {root}: it is a symlink", errno=exc.errno
                    ) from exc
            except OSError:
                pass
            raise WipeError(f"refusing to wipe {root}: not a directory", errno=exc.errno) from exc
        raise WipeError(f"cannot open {root}: {_describe(exc)}", errno=exc.errno) from exc


@dataclass(frozen=True)
class VerifiedRoot:
    """An open descriptor of the directory that was checked to be the root of a mount.

    Everything done to the root (wipe, emptiness proof, owner and mode) goes through this
    descriptor: if the mount is detached or replaced after the check, the path leads
    somewhere else, the descriptor does not.
    """

    fd: int
    path: str  # for messages only

    def close(self) -> None:
        os.close(self.fd)

    def request(self) -> None:
        """An fstat through the descriptor. It reaches the glusterfs client once the kernel's
        cached attributes have expired (attribute-timeout, 1 s by default); that client moves
        to a new graph on its next request, and only then lets the old graph disconnect."""
        try:
            os.fstat(self.fd)
        except OSError as exc:
            raise _os_error("stat", self.path, exc) from exc

    def __enter__(self) -> VerifiedRoot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_verified_root(path: str, *, device: int, inode: int | None = None) -> VerifiedRoot:
    """Open ``path`` once (``O_DIRECTORY|O_NOFOLLOW``) and prove it is the verified mount's root.

    ``device`` is the mount's ``st_dev`` from mountinfo (major:minor), ``inode`` the inode its
    root must have (gluster's root is 1); a mismatch means the mount was detached or swapped
    since it was verified, and raises :class:`WipeWrongRoot`.
    """
    fd = _open_root(path)
    try:
        st = os.fstat(fd)
        if st.st_dev != device:
            raise WipeWrongRoot(
                f"refusing to wipe {path}: it is on device "
                f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}, the verified mount is "
                f"{os.major(device)}:{os.minor(device)}: detached or replaced since verified"
            )
        if inode is not None and st.st_ino != inode:
            raise WipeWrongRoot(
                f"refusing to wipe {path}: inode {st.st_ino} is not the mount's root ({inode})"
            )
    except OSError as exc:
        os.close(fd)
        raise _os_error("stat", path, exc) from exc
    except BaseException:
        os.close(fd)
        raise
    return VerifiedRoot(fd=fd, path=path)


def _open(root: str | VerifiedRoot) -> tuple[int, str]:
    """A descriptor of ``root`` that the caller closes, and the path to show in messages."""
    if isinstance(root, VerifiedRoot):
        try:
            return os.dup(root.fd), root.path
        except OSError as exc:
            raise _os_error("dup", root.path, exc) from exc
    return _open_root(root), root


class _FdEngine(Engine[int, str]):
    """The tree walk over a FUSE mount: everything relative to directory descriptors."""

    def __init__(
        self,
        root: str,
        dev: int,
        workers: int,
        stop: StopFlag | None,
        trash: frozenset[str] = _DEFAULT_TRASH,
        *,
        budget: WorkerBudget | None = None,
    ) -> None:
        super().__init__(root, workers, stop, budget)
        self.dev = dev
        self.trash = trash  # names of trash directories at the root (emptied last)

    def remove_dir(self, parent: _FdNode, node: _FdNode) -> None:
        os.rmdir(node.name, dir_fd=parent.ref)

    def close_ref(self, ref: int) -> None:
        os.close(ref)

    def show(self, name: str) -> str:
        return name

    def scan(self, node: _FdNode, local: LocalWork[int, str], counts: Counts) -> None:
        """One streaming pass: unlink non-directories, dispatch up to a batch of subdirectories.

        The non-directories of one directory are unlinked by the thread that scans it, never in
        parallel: the kernel holds the parent directory's lock across the whole FUSE round trip
        of an unlink, so parallel unlinks in one directory only queue up on that lock (see
        docs/performance.md, "One directory's unlinks").  Parallelism is across directories.
        """
        found = False
        early = False
        subdirs = 0
        try:
            with os.scandir(node.ref) as it:
                for entry in it:
                    self.check()
                    name = entry.name
                    if name in node.skip:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        node.ghosts = found = True  # gone, or not yet visible: look again
                        continue
                    if st.st_dev != self.dev:
                        raise WipeCrossDevice(
                            f"{self.path(node, name)} is on another device "
                            f"({st.st_dev} != {self.dev}); not removed"
                        )
                    found = True
                    if stat.S_ISDIR(st.st_mode):
                        # Handed to the pool at once: another worker empties it while this
                        # scan goes on (the scan's own count in ``pending`` keeps this
                        # directory from being settled before its entries are gone).
                        self.dispatch_child(node, name, local)
                        subdirs += 1
                        if subdirs >= _SUBDIR_BATCH:
                            early = True
                            break
                    else:
                        self._unlink(node, name, st.st_size, counts)
        except OSError as exc:
            raise _os_error("scan", self.path(node), exc) from exc
        node.found = found
        if early:
            node.more = True

    def _unlink(self, node: _FdNode, name: str, size: int, counts: Counts) -> None:
        try:
            os.unlink(name, dir_fd=node.ref)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.EPERM) and self._is_dir(node, name):
                node.needs_rescan = True  # swapped for a directory since the scan
                return
            raise _os_error("unlink", self.path(node, name), exc) from exc
        counts.files += 1
        counts.bytes += size

    def _is_dir(self, node: _FdNode, name: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(name, dir_fd=node.ref, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def dispatch_child(self, node: _FdNode, name: str, local: LocalWork[int, str]) -> None:
        parent = node
        if node.depth + 1 > _RELOCATE_DEPTH and self.top is not None:
            # Rename the subtree to the top so that its ancestors can be closed and removed.
            new_name = f".recycler-deep-{uuid.uuid4().hex}"
            try:
                os.rename(name, new_name, src_dir_fd=node.ref, dst_dir_fd=self.top.ref)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise _os_error("relocate", self.path(node, name), exc) from exc
            parent, name = self.top, new_name
        super().dispatch_child(parent, name, local)

    def open_child(self, parent: _FdNode, name: str) -> _FdNode | None:
        """Open a subdirectory without following symlinks or leaving the device; None if gone."""
        hook = _before_open_dir
        if hook is not None:
            hook(parent.ref, name)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.ref)
        except FileNotFoundError:
            parent.ghosts = True
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                parent.needs_rescan = True  # replaced by a non-directory: unlink it next pass
                return None
            if exc.errno != errno.EACCES:
                raise _os_error("open", self.path(parent, name), exc) from exc
            reopened = self._open_unreadable(parent, name)
            if reopened is None:
                return None
            fd = reopened
        node = _FdNode(fd, parent, name, parent.depth + 1)
        self.track(node)
        try:
            st = os.fstat(fd)
            if st.st_dev != self.dev:
                raise WipeCrossDevice(
                    f"{self.path(parent, name)} is on another device "
                    f"({st.st_dev} != {self.dev}); not removed"
                )
            if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
        except OSError as exc:
            raise _os_error("open", self.path(parent, name), exc) from exc
        node.keep_on_eperm = keeps_on_eperm(parent, name, self.trash)
        return node

    def _open_unreadable(self, parent: _FdNode, name: str) -> int | None:
        """Make a directory we may not read (mode 0) readable, via an O_PATH handle on it.

        ``chmod`` by name would follow a symlink swapped in after the scan; the O_PATH handle
        pins the inode, and ``/proc/self/fd`` lets us chmod exactly that inode.
        """
        try:
            pfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent.ref)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                parent.needs_rescan = True
                return None
            raise _os_error("open", self.path(parent, name), exc) from exc
        try:
            st = os.fstat(pfd)
            if st.st_dev != self.dev:
                raise WipeCrossDevice(
                    f"{self.path(parent, name)} is on another device; not removed"
                )
            os.chmod(f"/proc/self/fd/{pfd}", stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.ref)
            if os.fstat(fd).st_ino != st.st_ino:
                os.close(fd)
                parent.needs_rescan = True
                return None
            return fd
        except OSError as exc:
            raise _os_error("open", self.path(parent, name), exc) from exc
        finally:
            os.close(pfd)


def wipe_tree(
    root: str | VerifiedRoot,
    *,
    workers: int = DEFAULT_WORKERS,
    stop: StopFlag | None = None,
    trash: Collection[str] = _DEFAULT_TRASH,
    budget: WorkerBudget | None = None,
) -> WipeStats:
    """Remove everything below ``root`` (kept), then :func:`verify_empty` it.

    At most ``workers`` threads work on it, and no more entries are in flight than
    ``budget`` (shared with the pass's other wipes) allows; without one, ``workers``.

    ``trash``: the names at ``root`` handled as gluster's trash directory (``Trash.root_names``
    for a whole-volume mount; none for a subdirectory mount).

    ``root`` is a path (opened here, symlink refused) or a :class:`VerifiedRoot`, which is
    used as it is: the path is never looked up again.

    ``stop`` (an Event, or a thread-safe callable: it is called from the worker threads) is
    checked between entries; when it is raised the wipe stops promptly with
    :class:`WipeInterrupted` and leaves the rest in place.  Any error other than an entry
    vanishing (ENOENT) aborts the wipe with a :class:`WipeError` carrying the progress made in
    ``.stats``: a disconnected mount (ENOTCONN, EIO) must fail the volume, not be retried or
    mistaken for a clean one.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    started = time.monotonic()
    root_fd, root = _open(root)
    try:
        dev = _owner_access(root_fd, root)
        engine = _FdEngine(root, dev, workers, stop, frozenset(trash), budget=budget)
    except BaseException:
        os.close(root_fd)
        raise
    top = _FdNode(root_fd, None, "")
    top.skip = engine.trash
    return wipe(
        engine,
        top,
        root,
        started,
        trash=sorted(engine.trash),
        empty_trash=lambda name: _wipe_trash(root, root_fd, engine, name),
        verify=lambda: _verify_dir(root_fd, root, engine.trash),
        strip_tenant_xattrs=lambda: _strip_tenant_xattrs(root_fd, root),
        close_top=lambda: os.close(root_fd),
    )


def _owner_access(fd: int, path: str) -> int:
    """Give the owner rwx on the directory ``fd`` (a tenant's 0000 root is still wiped);
    its device."""
    try:
        st = os.fstat(fd)
        if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
    except OSError as exc:
        raise _os_error("stat", path, exc) from exc
    return st.st_dev


def _wipe_trash(root: str, root_fd: int, engine: _FdEngine, name: str) -> None:
    """The trash ``name`` at the root, by the rule of wipe/trash.py, through ``root_fd``."""
    path = os.path.join(root, name)

    def unlink_if_not_dir() -> bool:
        try:
            st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        except OSError as exc:
            raise _os_error("stat", path, exc) from exc
        if st.st_dev != engine.dev:
            raise WipeCrossDevice(f"{path} is on another device; not removed")
        if stat.S_ISDIR(st.st_mode):
            return False
        try:
            os.unlink(name, dir_fd=root_fd)
        except FileNotFoundError:
            return True
        except OSError as exc:
            raise _os_error("unlink", path, exc) from exc
        engine.main_counts.files += 1
        engine.main_counts.bytes += st.st_size
        return True

    def open_dir() -> _FdNode | None:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _os_error("open", path, exc) from exc
        node = _FdNode(fd, None, name)
        engine.track(node)
        try:
            if os.fstat(fd).st_dev != engine.dev:
                raise WipeCrossDevice(f"{path} is on another device; not removed")
        except OSError as exc:
            raise _os_error("stat", path, exc) from exc
        return node

    def remove_dir() -> bool:
        os.rmdir(name, dir_fd=root_fd)
        return True

    empty_trash(
        engine, path, unlink_if_not_dir=unlink_if_not_dir, open_dir=open_dir, remove_dir=remove_dir
    )


def verify_empty(root: str | VerifiedRoot, *, trash: Collection[str] = _DEFAULT_TRASH) -> None:
    """Raise :class:`WipeNotEmpty` unless ``root`` is empty.

    The only thing tolerated is gluster's trash directory (one of the names ``trash``, a real
    directory on the same device) that is empty or holds nothing but an empty ``internal_op``
    directory, because the server refuses to remove those.
    """
    fd, path = _open(root)
    try:
        _verify_dir(fd, path, frozenset(trash))
    finally:
        os.close(fd)


def _verify_dir(fd: int, root: str, trash: frozenset[str]) -> None:
    """:func:`verify_empty` on an open directory (``wipe_tree`` checks the very inode it wiped)."""

    def leftovers() -> Iterator[str]:
        dev = os.fstat(fd).st_dev
        with os.scandir(fd) as it:
            for entry in it:
                inside = _trash_leftovers(fd, dev, entry.name) if entry.name in trash else None
                yield from [entry.name] if inside is None else inside

    try:
        ensure_empty(root, leftovers())
    except OSError as exc:
        raise _os_error("verify", root, exc) from exc


def _trash_leftovers(root_fd: int, dev: int, name: str) -> list[str] | None:
    """What is left inside the trash ``name``; None when it is not an acceptable trash
    directory."""
    try:
        st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(st.st_mode) or st.st_dev != dev:
        return None
    fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)

    def internal_op() -> list[str] | None:
        ist = os.stat(TRASH_INTERNAL_OP, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISDIR(ist.st_mode) or ist.st_dev != dev:
            return None
        ifd = os.open(TRASH_INTERNAL_OP, _DIR_FLAGS, dir_fd=fd)
        try:
            return os.listdir(ifd)
        finally:
            os.close(ifd)

    try:
        return trash_leftovers(name, os.listdir(fd), internal_op)
    finally:
        os.close(fd)


def _strip_tenant_xattrs(fd: int, root: str) -> None:
    """Remove the root's extended attributes and ACLs the old tenant set (``is_tenant_xattr``),
    through the verified descriptor; gluster's own (``trusted.*``, ``security.*``) stay."""
    try:
        for name in os.listxattr(fd):
            if is_tenant_xattr(name):
                try:
                    os.removexattr(fd, name)
                except OSError as exc:
                    if exc.errno != errno.ENODATA:
                        raise _os_error(f"remove xattr {name} of", root, exc) from exc
    except OSError as exc:
        if exc.errno == errno.ENOTSUP:
            return  # no extended attributes at all on this file system
        raise _os_error("list xattrs of", root, exc) from exc


def reset_root(root: str | VerifiedRoot, owner: tuple[int, int] | None, mode: int | None) -> None:
    """Give the emptied root the owner and mode the next tenant expects (through the fd)."""
    if mode is not None and not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {mode:#o} out of range")
    fd, path = _open(root)
    try:
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        if mode is not None:
            os.fchmod(fd, mode)  # after chown: chown clears set-id bits
    except OSError as exc:
        raise _os_error("reset", path, exc) from exc
    finally:
        os.close(fd)
