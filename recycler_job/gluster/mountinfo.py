"""Parses `/proc/self/mountinfo` (proc(5)) into typed entries.

A line looks like::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)

(7) is zero or more optional fields, ended by the single `-` separator (8). The kernel
escapes space, tab, newline and backslash in paths and in the source as `\\ooo` octal
sequences (`\\040` is a space); they are undone here. Paths are decoded with the file
system encoding (`os.fsdecode`), so names that are not UTF-8 survive a round trip.
"""

import os
import re
from dataclasses import dataclass

from recycler_job.errors import RecyclerError

MOUNTINFO_PATH = "/proc/self/mountinfo"

_ESCAPE = re.compile(rb"\\([0-7]{3})")


class MountinfoError(RecyclerError, ValueError):
    """A mountinfo line that does not have the documented shape."""


@dataclass(frozen=True)
class MountEntry:
    """One line of mountinfo."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mount_point: str
    mount_options: tuple[str, ...]
    optional_fields: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def device(self) -> int:
        """The device number as `os.stat().st_dev` reports it for files on this mount."""
        return os.makedev(self.major, self.minor)

    @property
    def read_only(self) -> bool:
        """True when the mount itself (not only the super block) is read-only."""
        return "ro" in self.mount_options


def _unescape(field: bytes) -> str:
    return os.fsdecode(_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field))


def _options(field: bytes) -> tuple[str, ...]:
    return tuple(_unescape(opt) for opt in field.split(b",") if opt)


def parse_line(line: bytes | str) -> MountEntry:
    """Parse one mountinfo line; raises MountinfoError when it is malformed."""
    raw = os.fsencode(line) if isinstance(line, str) else line
    fields = raw.rstrip(b"\n").split(b" ")
    try:
        sep = fields.index(b"-", 6)
    except ValueError:
        raise MountinfoError(f"mountinfo line without separator: {raw[:200]!r}") from None
    if sep + 3 > len(fields) or sep + 4 < len(fields):
        raise MountinfoError(f"mountinfo line with {len(fields)} fields: {raw[:200]!r}")
    try:
        mount_id = int(fields[0])
        parent_id = int(fields[1])
        major_s, minor_s = fields[2].split(b":")
        major, minor = int(major_s), int(minor_s)
    except ValueError:
        raise MountinfoError(f"malformed mountinfo line: {raw[:200]!r}") from None
    return MountEntry(
        mount_id=mount_id,
        parent_id=parent_id,
        major=major,
        minor=minor,
        root=_unescape(fields[3]),
        mount_point=_unescape(fields[4]),
        mount_options=_options(fields[5]),
        optional_fields=tuple(_unescape(f) for f in fields[6:sep]),
        fstype=_unescape(fields[sep + 1]),
        source=_unescape(fields[sep + 2]),
        # The super options are missing on some very old kernels; treat that as none.
        super_options=_options(fields[sep + 3]) if sep + 3 < len(fields) else (),
    )


def parse(text: bytes | str) -> list[MountEntry]:
    """Parse a whole mountinfo file, in file order (earlier mounts first)."""
    raw = os.fsencode(text) if isinstance(text, str) else text
    return [parse_line(line) for line in raw.split(b"\n") if line.strip()]


def read(path: str = MOUNTINFO_PATH) -> list[MountEntry]:
    """Read and parse `path` (the current process's mountinfo by default)."""
    with open(path, "rb") as f:
        return parse(f.read())


def find_mount(mountpoint: str, *, path: str = MOUNTINFO_PATH) -> MountEntry | None:
    """The mount visible at exactly `mountpoint`, or None when it is not a mount point.

    Mounts stack: when several entries name the same mount point the last one is on top,
    and that is the one a path lookup reaches. `mountpoint` is compared as a normalised
    absolute path; symlinks are not resolved (mountinfo never contains them), so pass a
    canonical path.
    """
    wanted = os.path.normpath(mountpoint)
    found: MountEntry | None = None
    for entry in read(path):
        if entry.mount_point == wanted:
            found = entry
    return found


def mounts_below(root: str, *, path: str = MOUNTINFO_PATH) -> list[MountEntry]:
    """Every mount strictly below directory `root`, deepest first, later mounts first.

    That is the order in which they can be unmounted.
    """
    prefix = os.path.normpath(root).rstrip("/") + "/"
    entries = read(path)
    below = [
        (index, entry)
        for index, entry in enumerate(entries)
        if entry.mount_point.startswith(prefix) and entry.mount_point != prefix
    ]
    below.sort(key=lambda item: (item[1].mount_point.count("/"), item[0]), reverse=True)
    return [entry for _, entry in below]
