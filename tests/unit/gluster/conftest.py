"""The fake `gluster` every client-check and CLI test uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.gluster.fakes import FakeGluster


@pytest.fixture
def fake_gluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGluster:
    return FakeGluster(tmp_path, monkeypatch)
