"""The PV write bodies: the release patch and the clean copy release a PV the same way."""

from __future__ import annotations

from typing import Any

from recycler_job.decide import APPUIO_FAILED_AT_ANNOTATION, FIRST_SEEN_ANNOTATION
from recycler_job.pv_writes import (
    BOUND_BY_CONTROLLER,
    RECYCLED_ANNOTATION,
    SYSTEM_ANNOTATION_PREFIXES,
    first_seen_patch,
    recreated,
    release_patch,
)
from tests.unit.test_journal import prebound_pv, released_pv

NOW = "2026-12-05T18:00:00Z"


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies `merge_patch`."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def with_stamps(pv: dict[str, Any]) -> dict[str, Any]:
    pv["metadata"]["annotations"][APPUIO_FAILED_AT_ANNOTATION] = "2026-01-02T00:00:00Z"
    return pv


def test_release_of_a_pv_the_controller_bound() -> None:
    pv = with_stamps(released_pv())
    patch = release_patch(pv, NOW)
    assert patch == {
        "metadata": {
            "resourceVersion": "42",
            "annotations": {
                FIRST_SEEN_ANNOTATION: None,
                APPUIO_FAILED_AT_ANNOTATION: None,
                RECYCLED_ANNOTATION: NOW,
                BOUND_BY_CONTROLLER: None,
            },
        },
        "spec": {"claimRef": None},
    }


def test_release_of_a_prebound_pv_keeps_namespace_and_name() -> None:
    pv = with_stamps(prebound_pv())
    patch = release_patch(pv, NOW)
    assert patch["spec"] == {"claimRef": {"uid": None, "resourceVersion": None}}
    assert BOUND_BY_CONTROLLER not in patch["metadata"]["annotations"]
    assert merge(pv, patch)["spec"]["claimRef"] == {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": "ns",
        "name": "c",
    }


def test_patch_and_clean_copy_release_alike() -> None:
    """`--mode patch` and `--mode recreate` leave the same claimRef and user annotations."""
    for pv in (with_stamps(released_pv()), with_stamps(prebound_pv())):
        patched = merge(pv, release_patch(pv, NOW))
        clean = recreated(pv, NOW)
        assert clean["spec"].get("claimRef") == patched["spec"].get("claimRef")
        assert clean["metadata"]["annotations"] == {
            key: value
            for key, value in patched["metadata"]["annotations"].items()
            if not key.startswith(SYSTEM_ANNOTATION_PREFIXES)
        }
        assert clean["metadata"]["annotations"][RECYCLED_ANNOTATION] == NOW
        assert FIRST_SEEN_ANNOTATION not in clean["metadata"]["annotations"]
        assert APPUIO_FAILED_AT_ANNOTATION not in clean["metadata"]["annotations"]


def test_first_seen_patch_is_conditional_on_the_listed_version() -> None:
    assert first_seen_patch(released_pv(), "v") == {
        "metadata": {"resourceVersion": "42", "annotations": {FIRST_SEEN_ANNOTATION: "v"}}
    }
