"""The root of the package's exceptions, and the one family the actor catches.

Every error the package raises on purpose derives from `RecyclerError`, so a caller (or a test)
can tell "the program refused or failed in a known way" from a bug with one `except`. Whatever
can stop one volume's recycle derives from `VolumeError`: act.py catches that one family and
maps each kind to the volume's outcome (the arrow); anything else that reaches it is a bug,
reported as "unexpected" without stopping the other volumes.

    RecyclerError                         errors.py
    ├── ConfigError                       config/spec.py: bad settings, exit 2, nothing touched
    ├── Invalid                           config/spec.py: a converter's reason -> ConfigError
    ├── VolumeError                       errors.py: stops this volume; the pass goes on
    │   ├── VolumeFailure                 act.py: re-check, hosts, release refused -> failed
    │   │   └── ChangedDuringWipe         act.py: a change seen during the wipe -> failed
    │   ├── Interrupted                   act.py: SIGTERM/SIGINT, an earlier 401/403 -> interrupted
    │   ├── DeadlineReached               act.py: --deadline passed -> waiting
    │   ├── NotCurrent                    view.py: the view cannot be proven current -> failed
    │   ├── LeaseLost                     lease.py -> failed
    │   ├── TlsError                      tls.py -> failed (dry run: would-refuse)
    │   ├── KubeError                     api_errors.py -> failed, "<Kind>: message"
    │   │   ├── NotFound, Conflict, Expired, Invalid
    │   │   ├── StillTerminating          journal.py: a re-created PV's old copy is still there
    │   │   └── ClusterUnavailable        unreachable, 401, 403 -> failed; no other volume starts
    │   ├── GlusterError                  gluster/errors.py -> failed
    │   │   ├── MountError
    │   │   │   └── VolumeIdentityError
    │   │   ├── VolumeInUse               -> busy (exit 0), a Warning Event; dry run: would-refuse
    │   │   ├── TrashInTheWay
    │   │   └── BrickOffline              dry run: would-refuse
    │   └── WipeError                     wipe_engine.py -> failed
    │       ├── WipeInterrupted           -> interrupted
    │       ├── WipeNotEmpty
    │       ├── WipeCrossDevice           wipe.py (FUSE)
    │       ├── WipeWrongRoot             wipe.py (FUSE)
    │       └── WipeRootSquashed          gfapi_wipe.py
    ├── HostsRefused                      hosts_lookup.py -> VolumeFailure in act.py
    ├── VolumeChanged                     watch.py: a probe's finding -> ChangedDuringWipe
    ├── GfapiError (and OSError)          gfapi.py: a libgfapi call failed -> WipeError or
    │   ├── GfapiTimeout                  GlusterError in gfapi_wipe.py / gfapi_transport.py
    │   └── GfapiUnavailable
    ├── MountinfoError (and ValueError)   mountinfo.py: caught with OSError by gluster/
    └── Abort                             wipe_engine.py: stops the engine's workers, internal

Outside the volumes, runner.py turns a `KubeError` of the pass's own requests (listing,
replay) into the outcome cluster-unavailable, and cli.py a `ConfigError` into exit 2; the exit
codes are in exit_codes.py.
"""


class RecyclerError(Exception):
    """A failure the program knows about; the message is meant for an admin."""


class VolumeError(RecyclerError):
    """This volume is not recycled now; the kind says which outcome (act.py), the message why."""
