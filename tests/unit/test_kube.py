"""The client's retries: a read may be sent twice, a write never after it may have arrived."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from recycler_job.kube import Kube, retry_policy

WRITES = ("DELETE", "PUT", "POST", "PATCH")
URL = "/api/v1/persistentvolumes/pv1"


def _lost_reply() -> list[Exception]:
    return [
        ReadTimeoutError(None, URL, "Read timed out."),
        ProtocolError("Connection aborted.", ConnectionResetError()),
    ]


@pytest.mark.parametrize("method", WRITES)
def test_a_write_whose_reply_was_lost_is_never_sent_again(method: str) -> None:
    for error in _lost_reply():
        with pytest.raises(type(error)):
            retry_policy().increment(method, URL, error=error)


@pytest.mark.parametrize("method", WRITES)
def test_an_error_that_is_neither_read_nor_connect_is_not_retried(method: str) -> None:
    with pytest.raises(MaxRetryError):
        retry_policy().increment(method, URL, error=SSLError("bad record mac"))


@pytest.mark.parametrize("method", ("GET", *WRITES))
def test_a_connection_that_never_opened_is_retried_once(method: str) -> None:
    error = NewConnectionError(None, "Connection refused")
    again = retry_policy().increment(method, URL, error=error)
    with pytest.raises(MaxRetryError):
        again.increment(method, URL, error=error)


def test_a_read_is_retried_once() -> None:
    for error in _lost_reply():
        again = retry_policy().increment("GET", URL, error=error)
        with pytest.raises(MaxRetryError):
            again.increment("GET", URL, error=error)


def test_the_client_uses_the_policy(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    kube = Kube.connect(str(path))
    retries = kube._dyn.client.rest_client.pool_manager.connection_pool_kw["retries"]
    assert retries.allowed_methods == frozenset({"GET", "HEAD"})
    with pytest.raises(ReadTimeoutError):
        retries.increment("DELETE", URL, error=_lost_reply()[0])
