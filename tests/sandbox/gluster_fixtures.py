"""pytest fixtures for the real GlusterFS server (loaded from tests/conftest.py).

`gluster_server` (session): glusterd running, a `GlusterServer` that cleans up after
itself. `gluster_volume` (function): a factory making scratch volumes named `grt-...`,
stopped, deleted and removed after the test. `matrix_server` / `matrix_volume`: the same for
each server version of the matrix in turn (9.2, 10.3, 11.1; tests/sandbox/gluster_versions.py).

Without root, /dev/fuse or the gluster binaries the tests are skipped with the reason,
except in CI (`CI=true`), where they fail: CI must never skip them silently.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from typing import Protocol

import pytest

from tests.sandbox.gluster import (
    GlusterSandboxError,
    GlusterServer,
    GlusterVolumeHandle,
    new_volume_name,
)
from tests.sandbox.gluster_versions import HOST_VERSION, VERSIONS, VersionedGlusterServer
from tests.sandbox.requirements import (
    gluster_unavailable_reason,
    missing,
    netns_unavailable_reason,
)


class VolumeFactory(Protocol):
    """The `gluster_volume` fixture: makes one scratch volume per call."""

    def __call__(
        self,
        *,
        bricks: int = 1,
        replica: int | None = None,
        subdir: str | None = None,
        options: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> GlusterVolumeHandle: ...


@pytest.fixture(scope="session")
def gluster_server() -> Iterator[GlusterServer]:
    """glusterd on this machine (started when not running) for the whole session."""
    reason = gluster_unavailable_reason()
    if reason is not None:
        missing(reason)
    server = GlusterServer()
    try:
        server.ensure_running()
    except (GlusterSandboxError, OSError) as exc:
        server.close()
        missing(f"glusterd could not be started: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session", params=VERSIONS, ids=lambda v: f"gluster-{v}")
def matrix_server(request: pytest.FixtureRequest) -> Iterator[GlusterServer]:
    """Each server version of the matrix in turn (tests/sandbox/gluster_versions.py): this
    machine's glusterd for 10.3, a chroot's glusterd in its own network namespace for the
    others. One server per version for the whole session."""
    version: str = request.param
    if version == HOST_VERSION:
        yield request.getfixturevalue("gluster_server")
        return
    reason = gluster_unavailable_reason() or netns_unavailable_reason()
    if reason is not None:
        missing(reason)
    server = VersionedGlusterServer(version)
    try:
        server.ensure_running()
    except (GlusterSandboxError, OSError, subprocess.SubprocessError) as exc:
        server.close()
        missing(f"glusterd {version} could not be started: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def matrix_volume(matrix_server: GlusterServer) -> Iterator[VolumeFactory]:
    """`gluster_volume` on the matrix's server of the current version."""
    yield from _volumes(matrix_server)


@pytest.fixture
def gluster_volume(gluster_server: GlusterServer) -> Iterator[VolumeFactory]:
    """A factory for scratch volumes; each is unmounted afterwards, then stopped and deleted
    in the background (GlusterServer.delete_volume_later)."""
    yield from _volumes(gluster_server)


def _volumes(gluster_server: GlusterServer) -> Iterator[VolumeFactory]:
    created: list[str] = []

    def create(
        *,
        bricks: int = 1,
        replica: int | None = None,
        subdir: str | None = None,
        options: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> GlusterVolumeHandle:
        volume_name = name or new_volume_name()
        created.append(volume_name)
        return gluster_server.create_volume(
            volume_name, bricks=bricks, replica=replica, subdir=subdir, options=options
        )

    yield create
    errors: list[str] = []
    for volume_name in reversed(created):
        try:
            gluster_server.delete_volume_later(volume_name)  # close() reports its errors
        except GlusterSandboxError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("gluster volume teardown: " + "; ".join(errors), pytrace=False)
