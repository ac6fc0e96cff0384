"""Process exit codes: admins read them from `kubectl get jobs` and pod status."""

from enum import IntEnum


class ExitCode(IntEnum):
    """How a pass ended."""

    OK = 0  # pass completed (volumes in use included), nothing to do, dry run, or lease held
    VOLUME_FAILED = 1  # a volume could not be recycled, the Lease was lost, or an unexpected error
    BAD_CONFIG = 2  # configuration rejected before anything was touched
    CLUSTER_UNAVAILABLE = 3  # API unreachable, unauthorized or forbidden
    INTERRUPTED = 4  # SIGTERM/SIGINT: stopped starting volumes, cleaned up, released the lease
