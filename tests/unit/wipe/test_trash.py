"""The trash rule both backends share, on str (FUSE) and bytes (gfapi) names."""

from __future__ import annotations

from recycler_job.wipe.engine import Node
from recycler_job.wipe.trash import keeps_on_eperm, trash_leftovers


def test_only_an_empty_internal_op_is_tolerated_in_the_trash() -> None:
    trash, op = ".trashcan", "internal_op"
    assert trash_leftovers(trash, [], lambda: None) == []
    assert trash_leftovers(trash, [op], lambda: []) == []
    assert trash_leftovers(trash, [op], lambda: None) == [".trashcan/internal_op"]
    assert trash_leftovers(trash, [op], lambda: ["x"]) == [".trashcan/internal_op/x"]
    assert trash_leftovers(trash, ["f", op], lambda: []) == [".trashcan/f", ".trashcan/internal_op"]


def test_the_trash_rule_on_bytes_names() -> None:
    assert trash_leftovers(b".trashcan", [b"internal_op"], lambda: []) == []
    assert trash_leftovers(b".trashcan", [b"internal_op"], lambda: [b"x"]) == [
        b".trashcan/internal_op/x"
    ]


def test_internal_op_is_kept_on_eperm_only_directly_in_a_trash_top() -> None:
    top: Node[int, str] = Node(0, None, ".trashcan")
    top.top = True
    assert keeps_on_eperm(top, "internal_op", frozenset({".trashcan"}))
    assert not keeps_on_eperm(top, "other", frozenset({".trashcan"}))
    assert not keeps_on_eperm(top, "internal_op", frozenset({".Trash"}))
    inner: Node[int, str] = Node(1, top, "internal_op", 1)
    assert not keeps_on_eperm(inner, "internal_op", frozenset({"internal_op"}))
    btop: Node[int, bytes] = Node(0, None, b".trashcan")
    btop.top = True
    assert keeps_on_eperm(btop, b"internal_op", frozenset({b".trashcan"}))
