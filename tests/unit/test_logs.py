"""Logs never carry a credential, whatever a message contains."""

from __future__ import annotations

import json
import logging
import re

import pytest

from recycler_job.cli import main
from recycler_job.logs import mask_url, redact, setup_logging

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
        "could not push metrics to http://metrics:pushpass99@gw:9091: refused",
        "push to https://metrics:push@pass99@gw/metrics failed",
        "{'pushgateway': 'http://pushpass99@gw:9091'}",
    ],
)
def test_secrets_are_masked(text: str) -> None:
    masked = redact(text)
    assert "<redacted>" in masked
    for secret in (JWT, "abcdefgh12345678", "s3cr3tvalue99", "MIIEpAIBAAKCAQEA", "LS0tLS1C"):
        assert secret not in masked
    assert "pushpass99" not in masked and "pass99" not in masked


def test_an_url_keeps_all_but_its_user_and_password() -> None:
    assert mask_url("http://u:p@gw:9091/x") == "http://<redacted>@gw:9091/x"
    assert redact("to http://u:p@gw:9091/x.") == "to http://<redacted>@gw:9091/x."
    for plain in ("http://gw:9091/a@b", "https://gw/?q=a@b", "mail ops@example.com"):
        assert redact(plain) == plain


def test_bad_config_error_never_shows_an_url_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pushgateway", "http://u:pushpass99@gw bad"], {"HOME": "/"}) == 2
    err = capsys.readouterr().err
    assert "--pushgateway" in err
    assert "pushpass99" not in err


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
    assert "<redacted>" in entry["msg"]
    setup_logging(debug=False, log_format="text")


def test_json_lines_have_rfc3339_millisecond_utc_time_and_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(debug=False, log_format="json")
    logging.getLogger("recycler_job.act").error(
        "pv/%s: not recycled", "a", extra={"pv": "a", "outcome": "failed", "step": "mount"}
    )
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert {k: entry[k] for k in ("level", "logger", "msg", "pv", "outcome", "step")} == {
        "level": "error",
        "logger": "recycler_job.act",
        "msg": "pv/a: not recycled",
        "pv": "a",
        "outcome": "failed",
        "step": "mount",
    }
    setup_logging(debug=False, log_format="text")


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--log-format", "json"], {}),
        (["--log-format=json"], {}),
        ([], {"LOG_FORMAT": "json"}),
    ],
)
def test_bad_config_error_is_json_when_json_was_asked_for(
    capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str]
) -> None:
    assert main([*argv, "--parallel", "x"], {"HOME": "/", **env}) == 2
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["level"] == "error"
    assert "--parallel" in entry["msg"]
