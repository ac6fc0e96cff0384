"""Empty a PV's directory over libgfapi: the second wipe transport, next to FUSE + fd wipe.

    with open_volume("vol", ["h1", "h2"], log_file="/tmp/gfapi.log") as vol:
        if not volume_ids_match(vol.volume_id(), gluster.volume_info(...).volume_id):
            ...  # refuse
        stats = vol.wipe("pv/data", stop=stop_event)   # WipeStats, like wipe.wipe_tree

The rules are wipe.py's, expressed for gfapi:

* There is no mount: the process reaches nothing of its own file system.  Inside the volume,
  every entry is looked up by name relative to its parent's *handle* (a gfid), without
  following it; the PV directory (volume root or ``spec.glusterfs.path`` subdir) is resolved
  one component at a time and refused if any component is not a real directory.  A symlink is
  only ever unlinked (``glfs_h_unlink`` removes the link, whatever it points at).
* The PV directory itself stays; everything below it goes, dotfiles and non-UTF-8 names
  included (names are bytes end to end).
* The calling thread and every worker act as uid/gid 0 (``gfapi.as_root``), so modes like
  0000/0500 do not stop the wipe.  Before anything is deleted, a probe file is created in the
  PV directory: if the server squashes root (``server.root-squash on``) it is owned by the
  anonymous uid (or cannot be created at all), and the wipe stops with
  :class:`WipeRootSquashed` instead of failing half-way on the first file owned by someone else.
* The trash directory (``.trashcan``, or the name ``features.trash-dir`` gives: ``trash``
  names them, see gluster/trash.py) at the volume root follows wipe/trash.py (kept last,
  emptied, removal tried, an empty one tolerated; a file or symlink of that name is unlinked).
  For a subdir PV, ``<trash>/<subdir>`` -- where the trash translator put what this wipe
  unlinked -- is emptied and removed too.
* The PV directory's own extended attributes of the old tenant (``user.*``, POSIX ACLs) are
  removed once it is empty; gluster's ``trusted.*``/``security.*`` stay.
* Parallel: a pool of threads shares the one ``glfs_t``.  Unlike a FUSE mount (where the
  kernel holds the parent directory's lock across each unlink), gfapi does not serialize
  unlinks within one directory, so the scanner of a directory hands batches of names (128, or
  fewer large files) to the other workers.  Memory stays bounded: batches go through a bounded
  queue (the scanner unlinks a batch itself when the queue is full), at most ``_SUBDIR_BATCH``
  subdirectories are taken per scan (the directory is re-scanned for more), the tree is walked
  without recursion, and only a handle (no open directory stream) is kept per directory on the
  current path.
* ``stop`` is checked between entries; the wipe returns promptly with
  :class:`~recycler_job.wipe.engine.WipeInterrupted` and the caller's ``with`` block then frees the
  ``glfs_t``.  Any other error (ENOTCONN of a stopped volume, EIO, ...) aborts with a
  :class:`~recycler_job.wipe.engine.WipeError` carrying ``errno`` and the progress made.
* At the end the PV directory is listed once more and must be empty (a tolerated empty
  ``.trashcan`` at the volume root aside).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence

from recycler_job import tls
from recycler_job.gluster import client_cache
from recycler_job.wipe import engine as wipe_engine
from recycler_job.wipe import gfapi
from recycler_job.wipe.engine import (
    DEFAULT_WORKERS,
    Counts,
    Engine,
    LocalWork,
    Node,
    StopFlag,
    WipeError,
    WipeStats,
    WorkerBudget,
    is_tenant_xattr,
    wipe_error,
)
from recycler_job.wipe.gfapi import GfapiError, Handle, Stat
from recycler_job.wipe.trash import (
    TRASH_DIR,
    TRASH_INTERNAL_OP,
    empty_trash,
    keeps_on_eperm,
    trash_leftovers,
)

__all__ = [
    "GfapiVolume",
    "WipeRootSquashed",
    "client_list_name",
    "open_volume",
    "split_subdir",
    "volume_ids_match",
]

_TRASH = frozenset({TRASH_DIR})
_INTERNAL_OP = TRASH_INTERNAL_OP.encode()
_UNLINK_BATCH = 128  # names handed to another worker at once
# ... or fewer, once their sizes add up to this: the brick frees a large file's blocks inside
# its unlink (tens of ms per 64 MiB on ext4), so large files go to several workers at once.
_UNLINK_BATCH_BYTES = 32 << 20
_GHOST_WAIT_S = 15.0  # how long a listed trash directory may stay without a gfid
_PROBE_PREFIX = ".recycler-probe-"


class WipeRootSquashed(WipeError):
    """The bricks do not let this client act as root (``server.root-squash``); nothing deleted."""


# ---- volume identity ---------------------------------------------------------------------


def volume_ids_match(gfapi_id: str, cli_id: str) -> bool:
    """True when both strings name the same UUID (case and dashes as gluster may print them)."""
    try:
        return uuid.UUID(gfapi_id) == uuid.UUID(cli_id)
    except ValueError:
        return False


_PR_GET_NAME = 16


def client_list_name() -> str:
    """How this process's gfapi client shows in ``gluster volume status VOL client-list``.

    libgfapi announces itself as ``gfapi.`` + the process name (``comm``: the base name of
    the executed file, at most 15 bytes). That is not argv[0] for a script: the image's
    entrypoint ``gluster-recycler`` shows as ``gfapi.gluster-recycle`` while its argv[0] is
    the interpreter. FUSE clients show as ``fuse``.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    name = ctypes.create_string_buffer(16)
    if libc.prctl(_PR_GET_NAME, name, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_GET_NAME)")
    return "gfapi." + name.value.decode("utf-8", "replace")


def split_subdir(subdir: str | None) -> list[bytes]:
    """The components of a PV subdir (``spec.glusterfs.path`` minus the volume); [] for the root.

    ValueError for ``.``/``..`` components: the PV directory is never reached by climbing.
    """
    parts = [p for p in (subdir or "").split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise ValueError(f"bad subdirectory {subdir!r}: {part!r} component")
    return [os.fsencode(p) for p in parts]


# ---- the engine --------------------------------------------------------------------------


_Dir = Node[Handle, bytes]


def _join(path: str, name: bytes) -> str:
    shown = name.decode("utf-8", "backslashreplace")
    return f"{path.rstrip('/')}/{shown}"


class _GfapiEngine(Engine[Handle, bytes]):
    """The tree walk over libgfapi: every entry looked up relative to its parent's handle."""

    thread_name = "gfapi-wipe"

    def __init__(
        self,
        vol: gfapi.Volume,
        label: str,
        workers: int,
        stop: StopFlag | None,
        trash: frozenset[bytes] = frozenset(),
        *,
        budget: WorkerBudget | None = None,
    ) -> None:
        super().__init__(label, workers, stop, budget)
        self.vol = vol
        self.trash = trash  # names of trash directories at the volume root

    def worker_started(self) -> None:
        gfapi.as_root()

    def remove_dir(self, parent: _Dir, node: _Dir) -> None:
        self.vol.unlink(parent.ref, node.name)

    def close_ref(self, ref: Handle) -> None:
        ref.close()

    def show(self, name: bytes) -> str:
        return name.decode("utf-8", "backslashreplace")

    def scan(self, node: _Dir, local: LocalWork[Handle, bytes], counts: Counts) -> None:
        """Stream ``node``: hand out batches of non-directories, dispatch subdirectories."""
        found = False
        batch: list[tuple[bytes, int]] = []
        batch_bytes = 0
        subdirs = 0
        try:
            entries = self.vol.listdir(node.ref)
            try:
                for name, listed in entries:
                    self.check()
                    if name in node.skip:
                        continue
                    found = True
                    st = listed if listed.known else self._lookup_type(node, name)
                    if st is None:
                        continue
                    if st.is_dir:
                        # To the pool at once, not after the scan (see wipe.py's scan).
                        self.dispatch_child(node, name, local)
                        subdirs += 1
                        if subdirs >= wipe_engine.SUBDIR_BATCH:
                            node.more = True
                            break
                        continue
                    batch.append((name, st.size))
                    batch_bytes += st.size
                    if len(batch) >= _UNLINK_BATCH or batch_bytes >= _UNLINK_BATCH_BYTES:
                        self.hand_out(node, batch, counts)
                        batch = []
                        batch_bytes = 0
            finally:
                entries.close()
        except GfapiError as exc:
            raise wipe_error("scan", self.path(node), exc) from exc
        if batch:
            self.unlink_batch(node, batch, counts)
        node.found = found

    def _lookup(self, node: _Dir, name: bytes) -> tuple[Handle, Stat] | None:
        """The entry ``name`` of ``node``, not followed; None (and a re-scan) when it is gone."""
        try:
            return self.vol.lookup(node.ref, name)
        except GfapiError as exc:
            if exc.errno == errno.ENOENT:
                node.ghosts = True
                return None
            raise wipe_error("lookup", self.path(node, name), exc) from exc

    def _lookup_type(self, node: _Dir, name: bytes) -> Stat | None:
        """Attributes of an entry readdirplus sent none for; None if it is gone."""
        found = self._lookup(node, name)
        if found is None:
            return None
        found[0].close()
        return found[1]

    def unlink_batch(self, node: _Dir, entries: list[tuple[bytes, int]], counts: Counts) -> None:
        for name, size in entries:
            self.check()
            try:
                self.vol.unlink(node.ref, name)
            except GfapiError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                    node.needs_rescan = True  # became a directory since the scan
                    continue
                raise wipe_error("unlink", self.path(node, name), exc) from exc
            counts.files += 1
            counts.bytes += size

    def open_child(self, parent: _Dir, name: bytes) -> _Dir | None:
        """A handle on a subdirectory, looked up without following; None if it changed."""
        found = self._lookup(parent, name)
        if found is None:
            return None
        handle, st = found
        if not st.is_dir:
            handle.close()
            parent.needs_rescan = True  # replaced by a non-directory: unlink it next pass
            return None
        node = _Dir(handle, parent, name, parent.depth + 1)
        node.keep_on_eperm = keeps_on_eperm(parent, name, self.trash)
        self.track(node)
        return node


# ---- the transport -----------------------------------------------------------------------


class GfapiVolume(contextlib.AbstractContextManager["GfapiVolume"]):
    """One volume opened over libgfapi for a ``with`` block (see :func:`open_volume`)."""

    def __init__(self, volume: gfapi.Volume) -> None:
        self.volume = volume
        self.stuck = False  # a worker never came back from a gfapi call: fini would be unsafe

    @property
    def name(self) -> str:
        return self.volume.name

    def volume_id(self) -> str:
        try:
            return self.volume.volume_id()
        except GfapiError as exc:
            raise WipeError(f"volume id of {self.name}: {exc.strerror}", errno=exc.errno) from exc

    def request(self) -> None:
        """One request to the bricks, a lookup of the root: libgfapi moves to a new graph
        (the volume's client graph changed, or two volfile answers raced at ``glfs_init``)
        on its next request, and only then lets the old graph disconnect."""
        try:
            handle, _ = self.volume.root()
        except GfapiError as exc:
            raise WipeError(f"lookup of / on {self.name}: {exc.strerror}", errno=exc.errno) from exc
        handle.close()

    def close(self, disconnected: Callable[[float], bool] | None = None) -> None:
        """``glfs_fini`` -- skipped only when a worker is still inside a gfapi call (the
        process is about to exit then; freeing the ``glfs_t`` under it would crash it).
        ``disconnected``: see :meth:`gfapi.Volume.close`."""
        if not self.stuck:
            self.volume.close(disconnected)

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- resolving the PV directory --

    def _resolve(
        self, parts: Sequence[bytes], label: str, *, wait_for_gfid: bool = False
    ) -> Handle | None:
        """The handle of ``/parts...``: every component a real directory; None if missing.

        ``wait_for_gfid`` (looking for a trash directory): a component that its parent lists
        but that cannot be looked up yet (the trash translator's directories get their gfid
        about a second after they appear, see wipe.py) is retried with a backoff instead of
        being taken for missing, and a component that is not a directory means there is no
        trash there (it is a tenant's entry, wiped with the rest), not a refusal.
        """
        gfapi.as_root()
        try:
            handle, _ = self.volume.root()
        except GfapiError as exc:
            raise wipe_error("lookup", f"{self.name}:/", exc) from exc
        path = f"{self.name}:"
        for part in parts:
            path = _join(path, part)
            try:
                child, st = self._lookup_dir_entry(handle, part, wait_for_gfid)
            except GfapiError as exc:
                handle.close()
                if exc.errno == errno.ENOENT:
                    return None
                raise wipe_error("lookup", path, exc) from exc
            handle.close()
            if wait_for_gfid and not st.is_dir:
                child.close()
                return None
            if st.is_symlink:
                child.close()
                raise WipeError(f"refusing to wipe {label}: {path} is a symlink")
            if not st.is_dir:
                child.close()
                raise WipeError(f"refusing to wipe {label}: {path} is not a directory")
            handle = child
        return handle

    def _lookup_dir_entry(
        self, parent: Handle, name: bytes, wait_for_gfid: bool
    ) -> tuple[Handle, Stat]:
        delay = wipe_engine.GHOST_BACKOFF_S
        deadline = time.monotonic() + _GHOST_WAIT_S
        while True:
            try:
                return self.volume.lookup(parent, name)
            except GfapiError as exc:
                if exc.errno != errno.ENOENT or not wait_for_gfid:
                    raise
                listed = any(n == name for n, _ in self.volume.listdir(parent))
                if not listed or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, wipe_engine.GHOST_BACKOFF_MAX_S)

    def _label(self, parts: Sequence[bytes]) -> str:
        sub = "/".join(p.decode("utf-8", "backslashreplace") for p in parts)
        return f"{self.name}:/{sub}"

    # -- checks --

    def _check_root_allowed(self, top: Handle, label: str) -> None:
        """Prove the bricks let us act as root, before anything is deleted.

        A probe file is created in the PV directory: owned by uid 0 when the server trusts
        our ids; owned by the anonymous uid (or refused with EACCES) under root squashing.
        """
        probe = (_PROBE_PREFIX + uuid.uuid4().hex).encode()
        try:
            handle, st = self.volume.create(top, probe)
        except GfapiError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise WipeRootSquashed(
                    f"cannot act as root on {label}: creating a probe file failed "
                    f"({exc.strerror}); is server.root-squash on? Nothing was deleted",
                    errno=exc.errno,
                ) from exc
            raise wipe_error("probe", label, exc) from exc
        handle.close()
        try:
            self.volume.unlink(top, probe)
        except GfapiError as exc:
            raise wipe_error("remove probe in", label, exc) from exc
        if st.uid != 0 or st.gid != 0:
            raise WipeRootSquashed(
                f"cannot act as root on {label}: a file created as root is owned by "
                f"{st.uid}:{st.gid} (server.root-squash on?); nothing was deleted",
                errno=errno.EACCES,
            )

    # -- the wipe --

    def wipe(
        self,
        subdir: str | None = None,
        *,
        workers: int = DEFAULT_WORKERS,
        stop: StopFlag | None = None,
        trash: Collection[str] = _TRASH,
        budget: WorkerBudget | None = None,
    ) -> WipeStats:
        """Remove everything below the PV directory (kept), then verify it is empty.

        Same contract as :func:`recycler_job.wipe.fuse.wipe_tree`: ``stop`` (an Event or a
        thread-safe callable) raises :class:`WipeInterrupted` promptly; any failure is a
        :class:`WipeError` with ``errno`` and ``.stats``. ``trash``: the names of the volume's
        trash directories (``Trash.root_names``); ``budget``: the slots shared with the pass's
        other wipes (see :func:`recycler_job.wipe.fuse.wipe_tree`).
        """
        if workers < 1:
            raise ValueError("workers must be at least 1")
        parts = split_subdir(subdir)
        label = self._label(parts)
        started = time.monotonic()
        names = frozenset(os.fsencode(n) for n in trash)
        engine = _GfapiEngine(self.volume, label, workers, stop, names, budget=budget)
        top_handle = self._resolve(parts, label)
        if top_handle is None:
            raise WipeError(f"refusing to wipe {label}: it does not exist", errno=errno.ENOENT)
        top = _Dir(top_handle, None, parts[-1] if parts else b"")
        if not parts:
            top.skip = names
        try:
            return wipe_engine.wipe(
                engine,
                top,
                label,
                started,
                prepare=lambda: self._check_root_allowed(top_handle, label),
                trash=sorted(names),
                empty_trash=lambda name: self._wipe_trash(parts, engine, name),
                verify=lambda: self._verify(top_handle, label, names if not parts else frozenset()),
                strip_tenant_xattrs=lambda: self._strip_tenant_xattrs(top_handle, label),
                close_top=top_handle.close,
            )
        finally:
            self.stuck = self.stuck or engine.stuck > 0

    def _wipe_trash(self, parts: Sequence[bytes], engine: _GfapiEngine, name: bytes) -> None:
        """Empty the trash ``name`` (volume root PV) or ``<name>/<subdir>`` (subdir PV) last;
        at the volume root, an entry ``name`` that is not a directory is unlinked."""
        trash_parts = [name, *parts]
        label = self._label(trash_parts)

        def open_dir() -> _Dir | None:
            handle = self._resolve(trash_parts, label, wait_for_gfid=True)
            if handle is None:
                return None
            node = _Dir(handle, None, trash_parts[-1])
            engine.track(node)
            return node

        def remove_dir() -> bool:
            parent_parts = trash_parts[:-1]
            parent = self._resolve(parent_parts, self._label(parent_parts))
            if parent is None:
                return False
            try:
                self.volume.unlink(parent, trash_parts[-1])
            finally:
                parent.close()
            return True

        empty_trash(
            engine,
            label,
            unlink_if_not_dir=lambda: not parts and self._unlink_if_not_dir(name, label, engine),
            open_dir=open_dir,
            remove_dir=remove_dir,
            # .trashcan/<subdir> refilled since: the emptiness check that follows decides
            tolerated=frozenset({errno.ENOTEMPTY, errno.EEXIST}) if parts else frozenset(),
        )

    def _unlink_if_not_dir(self, name: bytes, label: str, engine: _GfapiEngine) -> bool:
        """Unlink the root's entry ``name`` (never followed) unless it is a directory; True
        when it was not one (or is gone)."""
        root, _ = self.volume.root()
        try:
            try:
                child, st = self.volume.lookup(root, name)
            except GfapiError as exc:
                if exc.errno == errno.ENOENT:
                    return False  # perhaps listed without a gfid yet: _resolve waits for it
                raise wipe_error("lookup", label, exc) from exc
            child.close()
            if st.is_dir:
                return False
            try:
                self.volume.unlink(root, name)
            except GfapiError as exc:
                if exc.errno != errno.ENOENT:
                    raise wipe_error("unlink", label, exc) from exc
                return True
            engine.main_counts.files += 1
            engine.main_counts.bytes += st.size
            return True
        finally:
            root.close()

    def _strip_tenant_xattrs(self, handle: Handle, label: str) -> None:
        """Remove the PV directory's extended attributes and ACLs of the old tenant
        (``is_tenant_xattr``); gluster's own stay."""
        try:
            for name in self.volume.listxattr(handle):
                if is_tenant_xattr(name):
                    try:
                        self.volume.removexattr(handle, name)
                    except GfapiError as exc:
                        if exc.errno != errno.ENODATA:
                            raise
        except GfapiError as exc:
            raise wipe_error("remove the old tenant's xattrs of", label, exc) from exc

    def _verify(self, handle: Handle, label: str, trash: frozenset[bytes]) -> None:
        def leftovers() -> Iterator[bytes]:
            for name, st in self.volume.listdir(handle):
                if name in trash and st.is_dir:
                    yield from self._trash_leftovers(handle, name)
                else:
                    yield name

        try:
            wipe_engine.ensure_empty(label, leftovers())
        except GfapiError as exc:
            raise wipe_error("verify", label, exc) from exc

    def _trash_leftovers(self, root: Handle, name: bytes) -> list[bytes]:
        """What is left in the trash ``name`` beyond an empty ``internal_op``."""
        trash, _ = self.volume.lookup(root, name)
        try:
            listed = list(self.volume.listdir(trash))

            def internal_op() -> list[bytes] | None:
                if not listed[0][1].is_dir:
                    return None
                inner, _ = self.volume.lookup(trash, _INTERNAL_OP)
                try:
                    return [n for n, _ in self.volume.listdir(inner)]
                finally:
                    inner.close()

            return trash_leftovers(name, [n for n, _ in listed], internal_op)
        finally:
            trash.close()


def open_volume(
    volume: str,
    hosts: Sequence[str],
    *,
    log_file: str,
    port: int = gfapi.DEFAULT_PORT,
    log_level: int = gfapi.LOG_WARNING,
    timeout: float = gfapi.DEFAULT_TIMEOUT_S,
    interrupt: Callable[[], None] | None = None,
) -> GfapiVolume:
    """Connect to ``volume`` through every host of ``hosts`` (failover); use it in ``with``.

    A failed connection is a :class:`WipeError` with errno; the ``glfs_t`` is freed on every
    path (also when ``glfs_init`` fails). ``glfs_init`` and ``glfs_fini`` are given up on
    after ``timeout`` seconds each, ``glfs_init`` also when ``interrupt`` raises (what it
    raises propagates); see gfapi.py.
    """
    start = tls.log_size(log_file)
    try:
        vol = gfapi.Volume(
            volume,
            hosts,
            log_file,
            port=port,
            log_level=log_level,
            # md-cache keeps readdirplus attributes: one brick fop per file (client_cache.py)
            xlator_options=[*tls.xlator_options(volume), *client_cache.xlator_options(volume)],
            timeout=timeout,
            interrupt=interrupt,
        )
    except GfapiError as exc:
        why = tls.explain(log_file, start=start)
        raise WipeError(
            f"cannot connect to volume {volume}: {exc.strerror}" + (f"; {why}" if why else ""),
            errno=exc.errno,
        ) from exc
    return GfapiVolume(vol)
