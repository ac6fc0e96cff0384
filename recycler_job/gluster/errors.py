"""The errors of the gluster modules: one line each, so they fit an Event and a log line."""

from recycler_job.errors import VolumeError


def one_line(text: str, limit: int = 400) -> str:
    """`text` on one line (its lines joined with "; "), cut to `limit` characters."""
    line = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class GlusterError(VolumeError):
    """A gluster command, mount or check failed; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, limit=2000))


class MountError(GlusterError):
    """A mount could not be made, verified or removed."""


class VolumeInUse(GlusterError):
    """The volume has clients other than gluster's own daemons connected."""


class VolumeIdentityError(MountError):
    """The mount cannot be proven to be the volume the PV names (another pool, say)."""


class TrashInTheWay(GlusterError):
    """The trash translator would keep copies of the wiped files out of the mount's reach."""


class BrickOffline(GlusterError):
    """A brick of the volume is not running (or was restarted): a wipe would miss its files."""
