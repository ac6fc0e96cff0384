"""The trash rules both wipe backends share (recycler_job/gluster/trash.py)."""

from __future__ import annotations

import pytest

from recycler_job.gluster.errors import GlusterError, TrashInTheWay
from recycler_job.gluster.parse import VolumeInfo
from recycler_job.gluster.trash import DEFAULT_NAME, Trash


def info(**options: str) -> VolumeInfo:
    return VolumeInfo("vol", "0" * 8 + "-0000-0000-0000-" + "0" * 12, (), options)


def test_default_name_and_state() -> None:
    assert Trash.of(info()) == Trash(DEFAULT_NAME, on=False)
    assert Trash.of(info(**{"features.trash": "on"})) == Trash(".trashcan", on=True)


def test_features_trash_dir_renames_the_trash() -> None:
    trash = Trash.of(info(**{"features.trash": "on", "features.trash-dir": ".Trash"}))
    assert trash.name == ".Trash"
    # The default name stays special too: a volume keeps its old .trashcan after a rename.
    assert trash.root_names == {".Trash", ".trashcan"}
    assert Trash.of(info(**{"features.trash-dir": "/.Trash/"})).name == ".Trash"


@pytest.mark.parametrize("value", ["", "/", "a/b", ".", ".."])
def test_an_unusable_trash_dir_refuses_the_volume(value: str) -> None:
    with pytest.raises(GlusterError, match=r"features\.trash-dir"):
        Trash.of(info(**{"features.trash-dir": value}))


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize(
    "subdir", [".trashcan", ".trashcan/internal_op", ".trashcan/pv/data", "/.Trash/x", ".Trash"]
)
def test_pv_in_the_trash_is_refused_whatever_the_setting(subdir: str, on: bool) -> None:
    trash = Trash(".Trash", on=on)
    with pytest.raises(TrashInTheWay, match="lies in gluster's trash directory"):
        trash.check_pv_path("vol", subdir)


@pytest.mark.parametrize(
    "subdir", [None, "", "pv/data", "pv/.trashcan", ".trashcanx", "internal_op"]
)
def test_pv_outside_the_trash_is_allowed(subdir: str | None) -> None:
    Trash(".Trash", on=True).check_pv_path("vol", subdir)
