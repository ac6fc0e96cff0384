"""probe.py: a hung call on a mount path is given up on."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from recycler_job.gluster import probe
from recycler_job.gluster.errors import MountError


def test_lstat_gives_up_on_a_hung_call(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(path: str) -> os.stat_result:
        release.wait(10)
        raise OSError(errno.EIO, "answered too late")

    monkeypatch.setattr(os, "lstat", hang)
    started = time.monotonic()
    try:
        with pytest.raises(MountError, match=r"did not answer within 0\.2s"):
            probe.lstat("/x", 0.2)
        assert time.monotonic() - started < 2
    finally:
        release.set()
