"""pytest fixtures for the real GlusterFS server (loaded from tests/conftest.py).

`gluster_server` (session): glusterd running, a `GlusterServer` that cleans up after
itself. `gluster_volume` (function): a factory making scratch volumes named `grt-...`,
stopped, deleted and removed after the test.

Without root, /dev/fuse or the gluster binaries the tests are skipped with the reason,
except in CI (`CI=true`), where they fail: CI must never skip them silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import pytest

from tests.sandbox.gluster import (
    GlusterSandboxError,
    GlusterServer,
    GlusterVolumeHandle,
    new_volume_name,
)
from tests.sandbox.requirements import gluster_unavailable_reason, missing


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


@pytest.fixture
def gluster_volume(gluster_server: GlusterServer) -> Iterator[VolumeFactory]:
    """A factory for scratch volumes; each is unmounted, stopped and deleted afterwards."""
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
            gluster_server.delete_volume(volume_name)
        except GlusterSandboxError as exc:
            errors.append(str(exc))
    if errors:
        pytest.fail("gluster volume teardown: " + "; ".join(errors), pytrace=False)
