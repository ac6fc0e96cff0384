"""Runs a program with a timeout in its own process group; never raises for an exit code."""

import contextlib
import logging
import os
import shlex
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import sh

from recycler_job.gluster.errors import GlusterError, one_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """How a program ended and what it printed."""

    exit_code: int | None  # None when the command was killed after `timeout`
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    def message(self) -> str:
        """What to show for a failure: stderr, else stdout, else the exit code."""
        return one_line(self.stderr) or one_line(self.stdout) or f"exit code {self.exit_code}"


def _command(name: str) -> "sh.Command":
    # Resolved on every call, from the PATH of that moment.
    try:
        return sh.Command(name)
    except sh.CommandNotFound:
        raise GlusterError(f"`{name}` not found on PATH") from None


def run(name: str, args: Sequence[str], *, timeout: float) -> Result:
    """Run `name args...` in its own process group; SIGKILL the group after `timeout` s.

    Never raises for an exit code: the caller decides what it means.
    """
    command = _command(name)
    log.debug("running: %s", shlex.join([name, *args]))
    proc = command(
        *args,
        _bg=True,
        _bg_exc=False,
        _new_group=True,
        _tty_out=False,
        _ok_code=list(range(256)),
    )
    expired = threading.Event()

    def expire() -> None:
        # The whole group: `mount` runs mount.glusterfs, which runs glusterfs.
        if proc.process.exit_code is not None:
            return
        expired.set()
        pgid = proc.pgid
        if pgid and pgid != os.getpgrp():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        # A plain wait(): sh's wait(timeout=...) can return before all output is read.
        proc.wait()
    except sh.ErrorReturnCode:
        pass  # killed by a signal; the exit code says which
    finally:
        timer.cancel()
    stdout = bytes(proc.process.stdout or b"").decode("utf-8", "replace")
    stderr = bytes(proc.process.stderr or b"").decode("utf-8", "replace")
    exit_code: int | None = None if expired.is_set() else proc.process.exit_code
    log.debug(
        "%s %s: %s",
        name,
        "timed out" if exit_code is None else f"exited {exit_code}",
        one_line(stderr + "\n" + stdout, limit=1000),
    )
    return Result(exit_code=exit_code, stdout=stdout, stderr=stderr)
