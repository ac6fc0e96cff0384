"""The actor's two paths: a dry-run configuration never reaches the path that wipes."""

from __future__ import annotations

import threading
from typing import cast

import pytest

from recycler_job.act import Actor, DryRunActor
from recycler_job.clock import utcnow
from recycler_job.config import load_config
from recycler_job.decide import DecideSettings
from recycler_job.events import EventRecorder
from recycler_job.kube import Kube


def actor(kind: type[Actor], *flags: str) -> Actor:
    config = load_config(list(flags), {})
    return kind(
        kube=cast(Kube, None),
        config=config,
        settings=DecideSettings.from_config(config),
        events=EventRecorder(None, "test", dry_run=config.dry_run),
        journal=None,
        keeper=None,
        stop=threading.Event(),
        clock=utcnow,
    )


def test_a_dry_run_configuration_refuses_the_actor_that_wipes() -> None:
    with pytest.raises(ValueError, match="DryRunActor"):
        actor(Actor, "--dry-run")
    assert isinstance(actor(DryRunActor, "--dry-run"), DryRunActor)
    assert type(actor(Actor)) is Actor
