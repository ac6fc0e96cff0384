"""Logs never carry a credential, whatever a message contains."""

from __future__ import annotations

import json
import logging

import pytest

from recycler_job.logs import redact, setup_logging

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "text",
    [
        f"token {JWT}",
        f"Authorization: Bearer {JWT}",
        "Authorization: Bearer abcdefgh12345678",
        "token: s3cr3tvalue99",
        "client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_secrets_are_masked(text: str) -> None:
    masked = redact(text)
    assert "<redacted>" in masked
    for secret in (JWT, "abcdefgh12345678", "s3cr3tvalue99", "MIIEpAIBAAKCAQEA", "LS0tLS1C"):
        assert secret not in masked


def test_plain_messages_are_untouched() -> None:
    text = "pv/data-1: recycled: wiped 3 files; mount 10.0.0.1:/vol"
    assert redact(text) == text


def test_handler_redacts_arguments_and_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(debug=True, log_format="json")
    logging.getLogger("recycler_job.test").debug("request with %s", f"Bearer {JWT}")
    err = capsys.readouterr().err.strip().splitlines()
    entry = json.loads(err[-1])
    assert entry["level"] == "debug"
    assert JWT not in err[-1]
    assert "<redacted>" in entry["message"]
    setup_logging(debug=False, log_format="text")
