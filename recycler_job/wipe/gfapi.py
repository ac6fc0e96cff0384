"""A small ctypes binding of libgfapi: talk to a gluster volume from user space, without a mount.

Only what the wipe needs is bound, and only through *handles* (``glfs_h_*``): every name is
looked up relative to a directory handle (a gfid held by the client), never as a path from the
root, so nothing is resolved through a symlink and no path of the local file system exists at
all.  Everything runs without root and without capabilities; ``as_root()`` makes the *bricks*
treat the calling thread as uid/gid 0 (they trust the client's ids unless ``server.root-squash``
is on).  The ids are per thread in libgfapi, so every thread that touches the volume calls it.

One :class:`Volume` is one ``glfs_t``: ``glfs_fini`` runs on every exit path of the ``with``
block (after a failed ``glfs_init`` as well), after the handles still open are closed.

``glfs_init`` and ``glfs_fini`` have no timeout of their own (a frozen brick or glusterd
holds ``glfs_init`` for as long as it is frozen), so each runs in a daemon thread of its own
and is given up after ``timeout`` seconds (``glfs_init`` also as soon as ``interrupt``
raises).  An ``glfs_init`` given up on raises :class:`GfapiTimeout` (or what ``interrupt``
raised): no :class:`Volume` exists, so nothing can be wiped through it; its thread keeps the
``glfs_t`` and calls ``glfs_fini`` itself if the call ever returns.  A ``glfs_fini`` given up
on is left running (``fini_result`` stays None): the process exits at the end of the pass.

``glfs_fini`` of glusterfs 10 takes up to 10 s whatever was done: it shuts the bricks'
connections down in its first milliseconds, then waits in the protocol/client translator's
fini until the connection's frame-bail timer (armed at the first request, firing every 10 s,
``call_bail`` in rpc-clnt.c) drops its reference, because ``gf_timer_call_cancel`` refuses
to cancel it once ``cleanup_started`` is set.  Nothing of ours is in flight then (the call
pool and the pin count are 0 when it starts).  A caller that can prove the bricks no longer
list its client gives :meth:`Volume.close` a ``disconnected`` check: ``close`` returns as soon
as it is true, and the rest of the fini (freeing memory, joining threads) goes on in its
daemon thread (``fini_detached``).

Signatures follow ``/usr/include/glusterfs/api/glfs.h`` and ``glfs-handles.h`` (glusterfs 10).
``ctypes.CDLL`` releases the GIL for the length of each C call, so threads sharing one
``Volume`` really run their network round trips in parallel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import threading
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from recycler_job.errors import RecyclerError

__all__ = [
    "DEFAULT_PORT",
    "GfapiError",
    "GfapiTimeout",
    "GfapiUnavailable",
    "Handle",
    "Stat",
    "Volume",
    "as_root",
    "load",
]

LIBRARY = "libgfapi.so.0"
DEFAULT_PORT = 24007
LOG_WARNING = 5  # gf_loglevel_t GF_LOG_WARNING
_DIRENT_BUFFER = 512  # glfs.h: "512 byte buffer (for @dirent) is sufficient"
_DIRENT_NAME_OFFSET = 19  # struct dirent: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name
_SET_ATTR_MODE = 0x1  # GFAPI_SET_ATTR_MODE
DEFAULT_TIMEOUT_S = 60.0  # glfs_init / glfs_fini bound when the caller gives none
_WAIT_POLL_S = 0.05
_DISCONNECT_POLL_S = 0.1  # between two ``disconnected`` checks while glfs_fini runs


class GfapiError(RecyclerError, OSError):
    """A libgfapi call failed; ``errno`` is what the library set."""


class GfapiTimeout(GfapiError):
    """``glfs_init`` did not return within its bound; the connection was given up on."""


class GfapiUnavailable(GfapiError):
    """libgfapi.so.0 cannot be loaded, or this architecture's ``struct stat`` is unknown."""


class _StatX8664(ctypes.Structure):
    _fields_ = (
        ("st_dev", ctypes.c_uint64),
        ("st_ino", ctypes.c_uint64),
        ("st_nlink", ctypes.c_uint64),
        ("st_mode", ctypes.c_uint32),
        ("st_uid", ctypes.c_uint32),
        ("st_gid", ctypes.c_uint32),
        ("_pad0", ctypes.c_int32),
        ("st_rdev", ctypes.c_uint64),
        ("st_size", ctypes.c_int64),
        ("st_blksize", ctypes.c_int64),
        ("st_blocks", ctypes.c_int64),
        ("st_times", ctypes.c_int64 * 6),
        ("_reserved", ctypes.c_int64 * 3),
    )


class _StatGeneric(ctypes.Structure):
    """asm-generic ``struct stat`` (aarch64)."""

    _fields_ = (
        ("st_dev", ctypes.c_uint64),
        ("st_ino", ctypes.c_uint64),
        ("st_mode", ctypes.c_uint32),
        ("st_nlink", ctypes.c_uint32),
        ("st_uid", ctypes.c_uint32),
        ("st_gid", ctypes.c_uint32),
        ("st_rdev", ctypes.c_uint64),
        ("_pad1", ctypes.c_uint64),
        ("st_size", ctypes.c_int64),
        ("st_blksize", ctypes.c_int32),
        ("_pad2", ctypes.c_int32),
        ("st_blocks", ctypes.c_int64),
        ("st_times", ctypes.c_int64 * 6),
        ("_reserved", ctypes.c_int32 * 2),
    )


_STAT_LAYOUTS: dict[str, type[ctypes.Structure]] = {
    "x86_64": _StatX8664,
    "aarch64": _StatGeneric,
}


@dataclass(frozen=True)
class Stat:
    """The few ``struct stat`` fields the wipe uses."""

    mode: int
    size: int
    uid: int
    gid: int
    ino: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def known(self) -> bool:
        """False when the server sent no attributes (readdirplus of an entry without a gfid)."""
        return self.mode != 0


class _Lib:
    """The loaded library with argument and result types declared."""

    def __init__(self) -> None:
        layout = _STAT_LAYOUTS.get(platform.machine())
        if layout is None:
            raise GfapiUnavailable(
                errno.ENOSYS, f"struct stat layout of {platform.machine()} is not known"
            )
        self.stat_type = layout
        try:
            lib = ctypes.CDLL(LIBRARY, use_errno=True)
        except OSError as exc:
            raise GfapiUnavailable(errno.ENOENT, f"cannot load {LIBRARY}: {exc}") from exc
        p = ctypes.c_void_p
        c_int, c_char_p, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t
        stat_p = ctypes.POINTER(layout)
        signatures: dict[str, tuple[Any, list[Any]]] = {
            "glfs_new": (p, [c_char_p]),
            "glfs_set_volfile_server": (c_int, [p, c_char_p, c_char_p, c_int]),
            "glfs_set_logging": (c_int, [p, c_char_p, c_int]),
            "glfs_set_xlator_option": (c_int, [p, c_char_p, c_char_p, c_char_p]),
            "glfs_init": (c_int, [p]),
            "glfs_fini": (c_int, [p]),
            "glfs_get_volumeid": (c_int, [p, c_char_p, c_size_t]),
            "glfs_setfsuid": (c_int, [ctypes.c_uint32]),
            "glfs_setfsgid": (c_int, [ctypes.c_uint32]),
            "glfs_setfsgroups": (c_int, [c_size_t, p]),
            "glfs_h_lookupat": (p, [p, p, c_char_p, stat_p, c_int]),
            "glfs_h_creat": (p, [p, p, c_char_p, c_int, ctypes.c_uint32, stat_p]),
            "glfs_h_mkdir": (p, [p, p, c_char_p, ctypes.c_uint32, stat_p]),
            "glfs_h_unlink": (c_int, [p, p, c_char_p]),
            "glfs_h_close": (c_int, [p]),
            "glfs_h_stat": (c_int, [p, p, stat_p]),
            "glfs_h_setattrs": (c_int, [p, p, stat_p, c_int]),
            "glfs_h_opendir": (p, [p, p]),
            "glfs_readdirplus_r": (c_int, [p, stat_p, p, ctypes.POINTER(p)]),
            "glfs_closedir": (c_int, [p]),
            "glfs_h_getxattrs": (c_int, [p, p, c_char_p, p, c_size_t]),
            "glfs_h_removexattrs": (c_int, [p, p, c_char_p]),
        }
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        self.lib = lib

    def new_stat(self) -> ctypes.Structure:
        return self.stat_type()


_loaded: _Lib | None = None
_load_lock = threading.Lock()


def load() -> _Lib:
    """Load libgfapi once; :class:`GfapiUnavailable` when it is missing."""
    global _loaded  # noqa: PLW0603 -- one library per process
    with _load_lock:
        if _loaded is None:
            _loaded = _Lib()
        return _loaded


def _error(op: str, what: str | bytes | None = None) -> GfapiError:
    code = ctypes.get_errno() or errno.EIO
    shown = what.decode("utf-8", "backslashreplace") if isinstance(what, bytes) else what
    message = f"{op}: {os.strerror(code)}"
    return GfapiError(code, message, shown) if shown is not None else GfapiError(code, message)


def _to_stat(raw: Any) -> Stat:
    return Stat(
        mode=int(raw.st_mode),
        size=int(raw.st_size),
        uid=int(raw.st_uid),
        gid=int(raw.st_gid),
        ino=int(raw.st_ino),
    )


def as_root() -> None:
    """Make this thread's libgfapi calls carry uid 0, gid 0 and no supplementary groups."""
    lib = load().lib
    ctypes.set_errno(0)
    if lib.glfs_setfsuid(0) != 0 or lib.glfs_setfsgid(0) != 0:
        raise _error("glfs_setfsuid/glfs_setfsgid")
    if lib.glfs_setfsgroups(0, None) != 0:
        raise _error("glfs_setfsgroups")


class _Call:
    """``fn(fs)`` (``glfs_init``, ``glfs_fini``) in a daemon thread of its own, so that the
    caller can stop waiting for it."""

    def __init__(self, fn: Any, fs: int, *, name: str) -> None:
        self._fn = fn
        self._fs = fs
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned: Any = None  # what to call on the glfs_t once it returns
        self.result: int | None = None
        self.errno = 0
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        ctypes.set_errno(0)
        result = int(self._fn(self._fs))
        with self._lock:
            self.result, self.errno = result, ctypes.get_errno()
            self._done.set()
            then = self._abandoned
        if then is not None:
            then(self._fs)  # glfs_fini of an init given up on: its connection goes now

    def wait(self, timeout: float, interrupt: Callable[[], None] | None) -> bool:
        """True once the call returned; False after ``timeout``; ``interrupt`` may raise."""
        deadline = time.monotonic() + timeout
        while not self._done.wait(min(_WAIT_POLL_S, max(0.0, deadline - time.monotonic()))):
            if interrupt is not None:
                interrupt()
            if time.monotonic() >= deadline:
                return False
        return True

    def abandon(self, then: Any) -> bool:
        """Stop waiting: ``then(fs)`` runs when the call returns. False if it already had."""
        with self._lock:
            if self._done.is_set():
                return False
            self._abandoned = then
            return True


def _check_name(name: bytes) -> None:
    """One directory entry: never a path, never ``.``/``..`` (no resolution beyond one step)."""
    if not name or b"/" in name or name in (b".", b"..") or b"\0" in name:
        raise GfapiError(errno.EINVAL, f"not a plain entry name: {name!r}")


class Handle:
    """A ``glfs_object`` (an inode the client holds by gfid); close it before the fini."""

    __slots__ = ("_ptr", "_volume")

    def __init__(self, volume: Volume, ptr: int) -> None:
        self._volume = volume
        self._ptr: int | None = ptr

    @property
    def ptr(self) -> int:
        if self._ptr is None:
            raise GfapiError(errno.EBADF, "handle already closed")
        return self._ptr

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._volume._forget(self)
            self._volume.lib.glfs_h_close(ptr)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Volume:
    """One ``glfs_t`` connected to ``volume`` through every host of ``hosts``.

    ``log_file`` must be writable by the process (libgfapi logs there; the default would be
    below /var/log, not writable by a non-root user). ``xlator_options`` are
    ``(translator pattern, key, value)`` set before ``glfs_init``, as ``glusterfs
    --xlator-option`` would (the TLS files, for one). ``timeout`` bounds ``glfs_init`` and
    ``glfs_fini`` each; ``interrupt`` is called every 50 ms while ``glfs_init`` runs and gives
    it up by raising (see the module doc).
    """

    def __init__(
        self,
        volume: str,
        hosts: Sequence[str],
        log_file: str,
        *,
        port: int = DEFAULT_PORT,
        log_level: int = LOG_WARNING,
        xlator_options: Sequence[tuple[str, str, str]] = (),
        timeout: float = DEFAULT_TIMEOUT_S,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("at least one host is needed")
        self.name = volume
        self.hosts = tuple(hosts)
        self._loaded = load()
        self.lib: Any = self._loaded.lib
        self._handles: set[Handle] = set()
        self._handles_lock = threading.Lock()
        self.closed = False
        self.fini_result: int | None = None
        self.timeout = timeout
        self.fini_abandoned = False  # glfs_fini did not return within ``timeout``
        self.fini_detached = False  # close() returned on ``disconnected``; the fini goes on
        ctypes.set_errno(0)
        fs = self.lib.glfs_new(volume.encode())
        if not fs:
            raise _error("glfs_new", volume)
        self._fs: int = fs
        try:
            for host in self.hosts:
                if self.lib.glfs_set_volfile_server(fs, b"tcp", host.encode(), port) != 0:
                    raise _error("glfs_set_volfile_server", host)
            if self.lib.glfs_set_logging(fs, log_file.encode(), log_level) != 0:
                raise _error("glfs_set_logging", log_file)
            for pattern, key, value in xlator_options:
                if (
                    self.lib.glfs_set_xlator_option(
                        fs, pattern.encode(), key.encode(), value.encode()
                    )
                    != 0
                ):
                    raise _error("glfs_set_xlator_option", f"{pattern}.{key}")
        except BaseException:
            self.close()
            raise
        self._init(interrupt)

    def _init(self, interrupt: Callable[[], None] | None) -> None:
        """``glfs_init`` in a daemon thread, waited for at most ``timeout`` seconds."""
        what = f"glfs_init of volume {self.name} via {','.join(self.hosts)}"
        call = _Call(self.lib.glfs_init, self._fs, name=f"glfs-init-{self.name}")
        try:
            finished = call.wait(self.timeout, interrupt)
        except BaseException:  # interrupted: give up on the call, or fini if it just returned
            if call.abandon(self.lib.glfs_fini):
                self.closed = True  # the init thread owns the glfs_t now (and finis it)
            else:
                self.close()
            raise
        if not finished and call.abandon(self.lib.glfs_fini):
            self.closed = True
            raise GfapiTimeout(
                errno.ETIMEDOUT, f"{what}: no answer within {self.timeout:g} s; given up"
            )
        if call.result != 0:
            ctypes.set_errno(call.errno)
            error = _error(what)
            self.close()
            raise error

    # ---- lifetime ------------------------------------------------------------------------

    def close(self, disconnected: Callable[[float], bool] | None = None) -> None:
        """Close the handles left open, then ``glfs_fini`` (once), waited for at most
        ``timeout`` seconds.

        ``disconnected(seconds_left)``, asked while the fini runs (first right after it
        started, then every 100 ms), says whether the bricks no longer list this client;
        once it is true, ``close`` returns and the fini finishes in its thread
        (``fini_detached``). Nothing can use the ``glfs_t`` by then: ``closed`` is set
        and every handle closed before the fini starts.
        """
        if self.closed:
            return
        self.closed = True
        with self._handles_lock:
            left = list(self._handles)
        for handle in left:
            handle.close()
        call = _Call(self.lib.glfs_fini, self._fs, name=f"glfs-fini-{self.name}")
        deadline = time.monotonic() + self.timeout
        while True:
            left_s = deadline - time.monotonic()
            if disconnected is None or left_s <= 0:
                finished = call.wait(max(0.0, left_s), None)
                break
            if disconnected(left_s):
                finished = call.wait(0, None)
                self.fini_detached = not finished
                break
            if call.wait(min(_DISCONNECT_POLL_S, max(0.0, deadline - time.monotonic())), None):
                finished = True
                break
        if finished:
            self.fini_result = call.result
        elif not self.fini_detached:
            self.fini_abandoned = True  # still running: the process exits soon anyway

    def __enter__(self) -> Volume:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _forget(self, handle: Handle) -> None:
        with self._handles_lock:
            self._handles.discard(handle)

    def _handle(self, ptr: int) -> Handle:
        handle = Handle(self, ptr)
        with self._handles_lock:
            self._handles.add(handle)
        return handle

    @property
    def fs(self) -> int:
        if self.closed:
            raise GfapiError(errno.EBADF, f"volume {self.name} already closed")
        return self._fs

    # ---- operations ----------------------------------------------------------------------

    def volume_id(self) -> str:
        """The Volume ID as gluster prints it (lower-case UUID)."""
        buf = ctypes.create_string_buffer(16)
        ctypes.set_errno(0)
        got = self.lib.glfs_get_volumeid(self.fs, buf, 16)
        if got != 16:
            if got < 0:
                raise _error("glfs_get_volumeid", self.name)
            raise GfapiError(errno.EPROTO, f"glfs_get_volumeid returned {got} bytes")
        return str(uuid.UUID(bytes=buf.raw))

    def root(self) -> tuple[Handle, Stat]:
        """The volume root (``/``)."""
        raw = self._loaded.new_stat()
        ctypes.set_errno(0)
        ptr = self.lib.glfs_h_lookupat(self.fs, None, b"/", ctypes.byref(raw), 0)
        if not ptr:
            raise _error("lookup", "/")
        return self._handle(ptr), _to_stat(raw)

    def lookup(self, parent: Handle, name: bytes) -> tuple[Handle, Stat]:
        """The entry ``name`` of ``parent``, not followed if it is a symlink."""
        _check_name(name)
        raw = self._loaded.new_stat()
        ctypes.set_errno(0)
        ptr = self.lib.glfs_h_lookupat(self.fs, parent.ptr, name, ctypes.byref(raw), 0)
        if not ptr:
            raise _error("lookup", name)
        return self._handle(ptr), _to_stat(raw)

    def stat(self, handle: Handle) -> Stat:
        raw = self._loaded.new_stat()
        ctypes.set_errno(0)
        if self.lib.glfs_h_stat(self.fs, handle.ptr, ctypes.byref(raw)) != 0:
            raise _error("stat")
        return _to_stat(raw)

    def chmod(self, handle: Handle, mode: int) -> None:
        raw = self._loaded.new_stat()
        raw.st_mode = mode
        ctypes.set_errno(0)
        if self.lib.glfs_h_setattrs(self.fs, handle.ptr, ctypes.byref(raw), _SET_ATTR_MODE) != 0:
            raise _error("chmod")

    def create(self, parent: Handle, name: bytes, mode: int = 0o600) -> tuple[Handle, Stat]:
        """Create a new regular file (``O_EXCL``: never opens an existing one)."""
        _check_name(name)
        raw = self._loaded.new_stat()
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        ctypes.set_errno(0)
        ptr = self.lib.glfs_h_creat(self.fs, parent.ptr, name, flags, mode, ctypes.byref(raw))
        if not ptr:
            raise _error("create", name)
        return self._handle(ptr), _to_stat(raw)

    def mkdir(self, parent: Handle, name: bytes, mode: int = 0o755) -> tuple[Handle, Stat]:
        """Create a directory ``name`` in ``parent``."""
        _check_name(name)
        raw = self._loaded.new_stat()
        ctypes.set_errno(0)
        ptr = self.lib.glfs_h_mkdir(self.fs, parent.ptr, name, mode, ctypes.byref(raw))
        if not ptr:
            raise _error("mkdir", name)
        return self._handle(ptr), _to_stat(raw)

    def unlink(self, parent: Handle, name: bytes) -> None:
        """Remove the entry ``name`` of ``parent``: ``unlink``, or ``rmdir`` for a directory.

        (``glfs_h_unlink`` looks the name up without following it and picks the call by the
        type it finds, so a symlink is removed, never its target.)
        """
        _check_name(name)
        ctypes.set_errno(0)
        if self.lib.glfs_h_unlink(self.fs, parent.ptr, name) != 0:
            raise _error("unlink", name)

    def listxattr(self, handle: Handle) -> list[bytes]:
        """The names of the extended attributes of ``handle`` (``glfs_h_getxattrs`` with no
        name lists them)."""
        size = 4096
        while True:
            buf = ctypes.create_string_buffer(size)
            ctypes.set_errno(0)
            got = self.lib.glfs_h_getxattrs(self.fs, handle.ptr, None, buf, size)
            if got >= 0:
                return [n for n in buf.raw[:got].split(b"\0") if n]
            if ctypes.get_errno() != errno.ERANGE or size >= 1 << 20:
                raise _error("listxattr")
            size *= 4

    def removexattr(self, handle: Handle, name: bytes) -> None:
        ctypes.set_errno(0)
        if self.lib.glfs_h_removexattrs(self.fs, handle.ptr, name) != 0:
            raise _error("removexattr", name)

    def listdir(self, handle: Handle) -> Generator[tuple[bytes, Stat], None, None]:
        """Stream the entries of a directory (without ``.``/``..``) with their attributes.

        ``glfs_readdirplus_r`` is thread safe and re-entrant; each call of this generator opens
        its own directory stream, closed when the generator is closed or exhausted.
        """
        ctypes.set_errno(0)
        fd = self.lib.glfs_h_opendir(self.fs, handle.ptr)
        if not fd:
            raise _error("opendir")
        try:
            raw = self._loaded.new_stat()
            dirent = ctypes.create_string_buffer(_DIRENT_BUFFER)
            result = ctypes.c_void_p()
            base = ctypes.addressof(dirent)
            while True:
                ctypes.memset(ctypes.byref(raw), 0, ctypes.sizeof(raw))
                ctypes.set_errno(0)
                ret = self.lib.glfs_readdirplus_r(
                    fd, ctypes.byref(raw), dirent, ctypes.byref(result)
                )
                if ret != 0:
                    if ret > 0:
                        ctypes.set_errno(ret)
                    raise _error("readdir")
                if not result.value:
                    return
                name = ctypes.string_at(base + _DIRENT_NAME_OFFSET)
                if name in (b".", b".."):
                    continue
                yield name, _to_stat(raw)
        finally:
            self.lib.glfs_closedir(fd)
