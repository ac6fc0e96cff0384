"""errors.py: messages fit on one line."""

from __future__ import annotations

from recycler_job.gluster.errors import GlusterError, VolumeInUse


def test_errors_are_one_line() -> None:
    assert str(GlusterError("a\nb\n\n c ")) == "a; b; c"
    assert str(VolumeInUse("x\ny")) == "x; y"
