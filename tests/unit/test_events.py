"""Event messages are readable by anyone who may list Events: no credential in them."""

from __future__ import annotations

from typing import Any

from recycler_job.events import EventRecorder


class RecordingApi:
    """Keeps the Events created; none exists before."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def get_or_none(self, kind: Any, name: str, namespace: str | None = None) -> Any:
        return None

    def create(self, kind: Any, body: dict[str, Any], namespace: str | None = None) -> Any:
        self.created.append(body)
        return body


def test_an_event_message_never_carries_an_url_password() -> None:
    api = RecordingApi()
    pv = {"metadata": {"name": "pv1", "uid": "u-1"}}
    recorder = EventRecorder(api, "pod-1")  # type: ignore[arg-type]
    recorder.warning(pv, "RecycleFailed", "mount http://u:pushpass99@gw/x refused")
    (event,) = api.created
    assert event["message"] == "mount http://<redacted>@gw/x refused"
