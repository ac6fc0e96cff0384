"""Shared fixtures: the real control plane and the real GlusterFS server (tests/sandbox).

Also the compatibility subset: the tests marked `compat` here run on every Kubernetes version
of testenv/ (`make test`; `K8S_VERSION=1.21 pytest -m compat tests/integration`), the rest on
the default version only. The list lives here, in one place, so that the matrix is visible
at a glance; a name in it that matches no test fails the collection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recycler_job.kube import Kube
from tests.sandbox.controlplane import ControlPlane, SandboxError
from tests.sandbox.requirements import missing

pytest_plugins = ["tests.sandbox.gluster_fixtures", "tests.sandbox.pushgateway"]

# What every supported version must do: install the manifests with its own kubectl (dry run
# and for real), a Job from the CronJob's template, a release pass and a recreate pass, the
# Lease, min-age through the first-seen annotation (where lastPhaseTransitionTime does not
# exist), and the PV controller making a PV Available and binding a new claim to it.
COMPAT: dict[str, set[str] | None] = {  # file -> test names (None: the whole file)
    "tests/integration/test_manifests.py": None,
    "tests/integration/test_sandbox.py": {
        "test_recycle_pv_binds_then_fails_with_the_controllers_own_message",
        "test_pv_without_claim_ref_becomes_available",
        "test_stale_resource_version_gets_409_on_lease_update",
    },
    "tests/integration/test_recycle.py": {
        "test_release_mode_wipes_everything_and_returns_the_pv",
        "test_recreate_mode_keeps_labels_annotations_and_class",
    },
    "tests/integration/test_lease.py": {
        "test_missing_lease_is_created_and_a_second_run_sees_the_holder",
        "test_expired_lease_is_taken_over_and_transitions_count",
        "test_release_lets_the_next_run_in_at_once",
        "test_renew_detects_a_takeover",
    },
    "tests/integration/test_grace.py": None,
    "tests/integration/test_uninstall.py": None,
    "tests/integration/test_migration.py": None,
    # The cluster view: watches, bookmarks, the proof of currency and the relist after 410.
    "tests/integration/test_view.py": None,
}
# Tests of a COMPAT file that run on the default version only: slow, and what they check does
# not change with the version. The CronJob controller's schedule (up to 80 s of waiting for a
# minute boundary): the manifest's schedule is a plain five-field cron line, which every
# version's controller parses with the same library; that each version accepts the CronJob
# and makes a Job from its template stays in the subset
# (test_manual_job_from_the_cronjob_carries_the_configuration).
DEFAULT_ONLY: dict[str, set[str]] = {
    "tests/integration/test_manifests.py": {"test_cronjob_controller_starts_a_job_on_schedule"},
}
# The GlusterFS server-version matrix (9.2, 10.3, 11.1; tests/sandbox/gluster_versions.py):
# marked `gluster_compat`, so that `pytest -m gluster_compat` runs it alone.
GLUSTER_COMPAT: dict[str, set[str] | None] = {
    "tests/integration/test_gluster_matrix.py": None,
}
REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gluster_compat: the GlusterFS server-version matrix (tests/conftest.py)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the compatibility subsets; a listed name its module does not define is an error."""
    unknown: set[str] = set()
    for subset, marker in (
        (COMPAT, pytest.mark.compat),
        (GLUSTER_COMPAT, pytest.mark.gluster_compat),
    ):
        for item in items:
            path = Path(str(item.path)).resolve()
            rel = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else ""
            if rel not in subset:
                continue
            names = subset[rel]
            module = getattr(item, "module", None)
            excluded = DEFAULT_ONLY.get(rel, set()) if subset is COMPAT else set()
            unknown |= {
                f"{rel}::{n}" for n in (names or set()) | excluded if not hasattr(module, n)
            }
            name = getattr(item, "originalname", item.name)
            if (names is None or name in names) and name not in excluded:
                item.add_marker(marker)
    if unknown:
        raise pytest.UsageError(f"tests/conftest.py: no such test {sorted(unknown)}")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One real etcd + kube-apiserver + kube-controller-manager for the whole session."""
    plane = ControlPlane()
    try:
        plane.start()
    except (SandboxError, OSError) as exc:
        missing(f"control plane could not start: {exc}")
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    """Our own adapter, as the admin."""
    return Kube.connect(str(control_plane.kubeconfig))


@pytest.fixture
def unique() -> str:
    """A short unique suffix for cluster-scoped object names.

    It starts with a letter: an all-digit or `1e5...` suffix used as a label value would be
    read as a number by YAML and refused by kubectl.
    """
    return "u" + uuid.uuid4().hex[:7]
