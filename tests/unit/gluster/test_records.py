"""records.py: only a recorded gluster mount directly in the mount root is ours."""

from __future__ import annotations

import os
from pathlib import Path

from recycler_job.gluster import records
from recycler_job.gluster.mountinfo import MountEntry
from recycler_job.gluster.records import FSTYPE, is_own_mount

# --------------------------------------------------------------------------------------
# the mark of our own mounts


def mount_entry(mount_point: str, source: str, fstype: str = FSTYPE) -> MountEntry:
    return MountEntry(
        mount_id=100,
        parent_id=1,
        major=0,
        minor=99,
        root="/",
        mount_point=mount_point,
        mount_options=("rw",),
        optional_fields=(),
        fstype=fstype,
        source=source,
        super_options=(),
    )


def test_only_a_recorded_gluster_mount_directly_in_the_root_is_ours(tmp_path: Path) -> None:
    root = os.path.realpath(tmp_path / "mounts")
    ours = os.path.join(root, "pv-a")
    records.write_record(ours, "h1:/vol_a")
    assert is_own_mount(mount_entry(ours, "h1:/vol_a"), root)
    # another source, another file system, no record, deeper, or not named like a PV
    assert not is_own_mount(mount_entry(ours, "h1:/vol_b"), root)
    assert not is_own_mount(mount_entry(ours, "h1:/vol_a", "tmpfs"), root)
    assert not is_own_mount(mount_entry(os.path.join(root, "pv-b"), "h1:/vol_a"), root)
    assert not is_own_mount(mount_entry(os.path.join(ours, "x"), "h1:/vol_a"), root)
    odd = os.path.join(root, "Not_A_PV")
    records.write_record(odd, "h1:/vol_a")
    assert not is_own_mount(mount_entry(odd, "h1:/vol_a"), root)
    records.remove_record(ours)
    assert not is_own_mount(mount_entry(ours, "h1:/vol_a"), root)
