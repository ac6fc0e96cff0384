"""Config: precedence, every validation error, host lists, booleans, the file, a light --help."""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from recycler_job.config import (
    DEFAULT_FAILED_MESSAGES,
    NAMESPACE_FILE,
    OPTIONS,
    Config,
    ConfigError,
    build_parser,
    load_config,
)
from recycler_job.exit_codes import ExitCode

REPO = Path(__file__).resolve().parents[2]
NO_NS_FILE = "/nonexistent/namespace"


def load(argv: list[str] | None = None, env: dict[str, str] | None = None, **kwargs: Any) -> Config:
    kwargs.setdefault("namespace_file", NO_NS_FILE)
    return load_config(argv or [], env or {}, **kwargs)


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_of(argv: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(argv, env)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults() -> None:
    config = load(env={"HOSTNAME": "pod-x"})
    assert config == Config(
        kubeconfig=None,
        gluster_hosts=(),
        endpoints_namespace=None,
        phases=frozenset({"Failed"}),
        failed_messages=(
            "No recycler plugin found for the volume!",
            "no volume plugin matched",
        ),
        reclaim_policies=frozenset({"Recycle"}),
        selector=None,
        min_age=60.0,
        mode="release",
        max_volumes=None,
        parallel=1,
        wipe_workers=16,
        mount_root="/var/lib/gluster-recycler/mounts",
        mount_timeout=60.0,
        deadline=None,
        lease_name="gluster-recycler",
        lease_namespace="default",
        lease_duration=60,
        dry_run=False,
        debug=False,
        log_format="text",
        report_file=None,
        pushgateway=None,
        config_file=None,
        client_check=True,
        reset_owner=None,
        reset_mode=None,
        identity=f"pod-x-{os.getpid()}",
    )


# --- precedence: flag > env > file > default ---

# (Config field, flag, env var, flag value, env value, file YAML value, expected for each, default)
PRECEDENCE: list[tuple[str, str, str, str, str, str, tuple[Any, Any, Any], Any]] = [
    ("min_age", "--min-age", "MIN_AGE", "10", "20", "30", (10.0, 20.0, 30.0), 60.0),
    (
        "mode",
        "--mode",
        "RECYCLE_MODE",
        "recreate",
        "release",
        "recreate",
        ("recreate", "release", "recreate"),
        "release",
    ),
    ("parallel", "--parallel", "PARALLEL_VOLUMES", "2", "3", "4", (2, 3, 4), 1),
    (
        "phases",
        "--phases",
        "RECYCLE_PHASES",
        "Released",
        "Failed,Released",
        "[Released]",
        (frozenset({"Released"}), frozenset({"Failed", "Released"}), frozenset({"Released"})),
        frozenset({"Failed"}),
    ),
    (
        "gluster_hosts",
        "--gluster-hosts",
        "GLUSTER_HOSTS",
        "a",
        "b;c",
        "[d, e]",
        (("a",), ("b", "c"), ("d", "e")),
        (),
    ),
    (
        "lease_name",
        "--lease-name",
        "LEASE_NAME",
        "flag",
        "env",
        "file",
        ("flag", "env", "file"),
        "gluster-recycler",
    ),
    ("max_volumes", "--max-volumes", "MAX_VOLUMES", "1", "2", "3", (1, 2, 3), None),
    ("report_file", "--report-file", "REPORT_FILE", "/f", "/e", "/y", ("/f", "/e", "/y"), None),
    (
        "pushgateway",
        "--pushgateway",
        "PUSHGATEWAY_URL",
        "http://f:9091",
        "https://e/pg/",
        "http://y",
        ("http://f:9091", "https://e/pg", "http://y"),
        None,
    ),
    (
        "tls_dir",
        "--tls-dir",
        "GLUSTER_TLS_DIR",
        "/tmp",
        "/usr",
        "/var",
        ("/tmp", "/usr", "/var"),
        None,
    ),
]


@pytest.mark.parametrize(
    ("dest", "flag", "env", "flag_value", "env_value", "file_value", "expected", "default"),
    PRECEDENCE,
    ids=[case[0] for case in PRECEDENCE],
)
def test_precedence(
    tmp_path: Path,
    dest: str,
    flag: str,
    env: str,
    flag_value: str,
    env_value: str,
    file_value: str,
    expected: tuple[Any, Any, Any],
    default: Any,
) -> None:
    key = flag[2:]
    path = write(tmp_path, f"{key}: {file_value}\n")
    environ = {env: env_value, "CONFIG_FILE": path}
    assert getattr(load([flag, flag_value], environ), dest) == expected[0]
    assert getattr(load([], environ), dest) == expected[1]
    assert getattr(load([], {"CONFIG_FILE": path}), dest) == expected[2]
    assert getattr(load([]), dest) == default


def test_flag_false_beats_env_true() -> None:
    env = {"DRY_RUN": "true", "DEBUG": "1"}
    assert load([], env).dry_run is True
    config = load(["--no-dry-run", "--no-debug"], env)
    assert config.dry_run is False
    assert config.debug is False


def test_config_flag_beats_config_env(tmp_path: Path) -> None:
    flag_file = write(tmp_path, "parallel: 5\n", "flag.yaml")
    env_file = write(tmp_path, "parallel: 6\n", "env.yaml")
    config = load(["--config", flag_file], {"CONFIG_FILE": env_file})
    assert config.parallel == 5
    assert config.config_file == flag_file
    assert load([], {"CONFIG_FILE": env_file}).parallel == 6


def test_empty_config_flag_disables_the_env_file(tmp_path: Path) -> None:
    env_file = write(tmp_path, "parallel: 6\n")
    config = load(["--config="], {"CONFIG_FILE": env_file})
    assert config.parallel == 1
    assert config.config_file is None


def test_empty_env_counts_as_unset(tmp_path: Path) -> None:
    path = write(tmp_path, "min-age: 30\n")
    assert load([], {"MIN_AGE": "", "CONFIG_FILE": path}).min_age == 30
    assert load([], {"MIN_AGE": "  "}).min_age == 60


def test_unlimited_overrides_a_lower_precedence_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "max-volumes: 3\n")
    assert load(["--config", path]).max_volumes == 3
    assert load(["--config", path, "--max-volumes", "unlimited"]).max_volumes is None
    assert load(["--config", path], {"MAX_VOLUMES": "none"}).max_volumes is None


# --- gluster hosts ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", ("a",)),
        ("a;b", ("a", "b")),
        ("a,b", ("a", "b")),
        ("a;b;c", ("a", "b", "c")),
        ("a,b,c", ("a", "b", "c")),
        ("a;b;c;d", ("a", "b", "c", "d")),
        ("a,b,c,d", ("a", "b", "c", "d")),
        ("a;b,c;d", ("a", "b", "c", "d")),
        ("a,b;c", ("a", "b", "c")),
        (" a ; b ;; c ,", ("a", "b", "c")),
        (
            "gluster-1.example.com;10.0.0.2;fe80::1",
            ("gluster-1.example.com", "10.0.0.2", "fe80::1"),
        ),
        ("a;b;a", ("a", "b")),
        ("", ()),
    ],
)
def test_gluster_hosts(value: str, expected: tuple[str, ...]) -> None:
    assert load(["--gluster-hosts", value]).gluster_hosts == expected
    assert load([], {"GLUSTER_HOSTS": value}).gluster_hosts == (expected or ())


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("[a, b, c]", ("a", "b", "c")),
        ("[a, 'b;c', 'd,e']", ("a", "b", "c", "d", "e")),
        ("'a;b;c'", ("a", "b", "c")),
    ],
)
def test_gluster_hosts_in_file(tmp_path: Path, yaml_value: str, expected: tuple[str, ...]) -> None:
    path = write(tmp_path, f"gluster_hosts: {yaml_value}\n")
    assert load(["--config", path]).gluster_hosts == expected


@pytest.mark.parametrize("value", ["-oremount", "a;-x", "a b", "a;host/x", "a;$(id)"])
def test_bad_gluster_host(value: str) -> None:
    message = error_of([f"--gluster-hosts={value}"])
    assert "--gluster-hosts" in message
    assert "is not a host name" in message


@pytest.mark.parametrize("value", ["pushgateway:9091", "ftp://x", "http://", "http://a b"])
def test_bad_pushgateway_url(value: str) -> None:
    message = error_of([f"--pushgateway={value}"])
    assert "--pushgateway" in message
    assert "http:// or https:// URL" in message


# --- booleans ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        (" true ", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
    ],
)
@pytest.mark.parametrize(("var", "dest"), [("DRY_RUN", "dry_run"), ("DEBUG", "debug")])
def test_boolean_env(var: str, dest: str, value: str, expected: bool) -> None:
    assert getattr(load([], {var: value}), dest) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "on", "off", "y", "t", "true1"])
@pytest.mark.parametrize("var", ["DRY_RUN", "DEBUG", "NO_CLIENT_CHECK"])
def test_bad_boolean_env(var: str, value: str) -> None:
    message = error_of([], {var: value})
    assert var in message
    assert repr(value) in message


def test_client_check() -> None:
    assert load().client_check is True
    assert load(["--no-client-check"]).client_check is False
    assert load([], {"NO_CLIENT_CHECK": "true"}).client_check is False
    assert load([], {"NO_CLIENT_CHECK": "0"}).client_check is True
    assert load(["--client-check"], {"NO_CLIENT_CHECK": "yes"}).client_check is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no-client-check: true\n", False),
        ("no_client_check: false\n", True),
        ("client-check: false\n", False),
        ("client_check: yes\n", True),
    ],
)
def test_client_check_in_file(tmp_path: Path, text: str, expected: bool) -> None:
    assert load(["--config", write(tmp_path, text)]).client_check is expected


# --- values that parse ---


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("90", 90.0),
        ("1.5", 1.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("2h", 7200.0),
        (" 10 m ", 600.0),
        # Go's time.ParseDuration syntax, as kubectl and Kubernetes' own flags take it.
        ("1h30m", 5400.0),
        ("90s", 90.0),
        ("1h0m0.5s", 3600.5),
        ("2m30s", 150.0),
        ("1500ms", 1.5),
        ("0s", 0.0),
    ],
)
def test_durations(value: str, seconds: float) -> None:
    assert load(["--min-age", value]).min_age == seconds


def test_other_durations() -> None:
    config = load(["--mount-timeout", "2m", "--deadline", "1h", "--lease-duration", "2m"])
    assert config.mount_timeout == 120.0
    assert config.deadline == 3600.0
    assert config.lease_duration == 120


def test_choices_are_case_insensitive_and_canonical() -> None:
    config = load(["--phases", "failed, RELEASED", "--reclaim-policies", "retain,Recycle"])
    assert config.phases == frozenset({"Failed", "Released"})
    assert config.reclaim_policies == frozenset({"Retain", "Recycle"})
    assert load(["--mode", "ReCreate", "--log-format", "JSON"]).mode == "recreate"


def test_failed_messages_flag_splits_on_pipe_only() -> None:
    config = load(["--failed-messages", "Recycle failed, see log | other message|"])
    assert config.failed_messages == ("Recycle failed, see log", "other message")


def test_failed_messages_list_in_file_is_verbatim(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        failed-messages:
          - "No recycler plugin found for the volume!"
          - "a, b | c"
        """,
    )
    assert load(["--config", path]).failed_messages == (
        "No recycler plugin found for the volume!",
        "a, b | c",
    )


def test_failed_messages_may_be_empty_when_failed_is_not_recycled() -> None:
    config = load(["--phases", "Released", "--failed-messages", "|"])
    assert config.failed_messages == ()


def test_selector_is_kept_as_text() -> None:
    assert load(["--selector", " tier=scratch,!keep "]).selector == "tier=scratch,!keep"
    assert load(["--selector", ""]).selector is None


def test_mount_root_is_normalised() -> None:
    assert load(["--mount-root", "/srv//mounts/"]).mount_root == "/srv/mounts"


def test_mount_root_next_to_the_refused_ones_is_accepted() -> None:
    assert load(["--mount-root", "/mnt/recycler"]).mount_root == "/mnt/recycler"
    assert load(["--mount-root", "/var/lib/kubeletx"]).mount_root == "/var/lib/kubeletx"


def test_mount_root_reaching_kubelet_through_a_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "kubelet"
    link.symlink_to("/var/lib/kubelet")
    with pytest.raises(ConfigError, match="inside /var/lib/kubelet"):
        load(["--mount-root", str(link / "pods")])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1000:2000", (1000, 2000)), ("0:0", (0, 0)), ("4294967294:1", (4294967294, 1))],
)
def test_reset_owner(value: str, expected: tuple[int, int]) -> None:
    assert load(["--reset-owner", value]).reset_owner == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0775", 0o775),
        ("775", 0o775),
        ("0o2775", 0o2775),
        ("2775", 0o2775),
        ("0", 0),
        ("7777", 0o7777),
        ("07777", 0o7777),
    ],
)
def test_reset_mode(value: str, expected: int) -> None:
    assert load(["--reset-mode", value]).reset_mode == expected


def test_owner_and_mode_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, "reset-owner: '1000:50'\nreset-mode: '0750'\n")
    config = load(["--config", path])
    assert config.reset_owner == (1000, 50)
    assert config.reset_mode == 0o750
    path = write(tmp_path, "reset_owner: [1000, 50]\n", "list.yaml")
    assert load(["--config", path]).reset_owner == (1000, 50)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("reset-owner: 1000:50\n", "quote UID:GID"),  # YAML 1.1: base 60, 60050
        ("reset-mode: 0775\n", "quote the mode"),  # YAML 1.1: octal, 509
        ("reset-mode: 775\n", "quote the mode"),  # decimal 775 is not mode 0775
    ],
)
def test_ambiguous_yaml_numbers_are_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(["--config", write(tmp_path, text)])


# --- validation errors: one line, naming the option, the variable and the bad value ---

# (option, env var, bad value, reason fragment)
BAD_VALUES: list[tuple[str, str, str, str]] = [
    ("--phases", "RECYCLE_PHASES", "Bound", "unknown phase 'Bound'"),
    ("--phases", "RECYCLE_PHASES", ",", "at least one phase"),
    ("--reclaim-policies", "RECLAIM_POLICIES", "Recycle,Keep", "unknown reclaim policy 'Keep'"),
    ("--selector", "PV_SELECTOR", "a b", "expected an operator"),
    ("--selector", "PV_SELECTOR", "tier in ()", "value list is empty"),
    ("--min-age", "MIN_AGE", "abc", "expected seconds"),
    ("--min-age", "MIN_AGE", "-5", "expected seconds"),
    ("--min-age", "MIN_AGE", "5d", "expected seconds"),
    ("--min-age", "MIN_AGE", "1h30", "expected seconds"),
    ("--min-age", "MIN_AGE", "1mm", "expected seconds"),
    ("--min-age", "MIN_AGE", "h", "expected seconds"),
    ("--min-age", "MIN_AGE", "1h-30m", "expected seconds"),
    ("--min-age", "MIN_AGE", "1 30m", "expected seconds"),
    ("--min-age", "MIN_AGE", "99999999999h", "out of range"),
    ("--min-age", "MIN_AGE", "nan", "expected seconds"),
    ("--mode", "RECYCLE_MODE", "wipe", "choose one of release, recreate"),
    ("--max-volumes", "MAX_VOLUMES", "0", "positive integer"),
    ("--max-volumes", "MAX_VOLUMES", "-1", "positive integer"),
    ("--max-volumes", "MAX_VOLUMES", "1.5", "expected an integer"),
    ("--parallel", "PARALLEL_VOLUMES", "0", "between 1 and 64"),
    ("--parallel", "PARALLEL_VOLUMES", "65", "between 1 and 64"),
    ("--parallel", "PARALLEL_VOLUMES", "two", "expected an integer"),
    ("--wipe-workers", "WIPE_WORKERS", "0", "between 1 and 256"),
    ("--wipe-workers", "WIPE_WORKERS", "257", "between 1 and 256"),
    ("--mount-root", "MOUNT_ROOT", "mounts", "absolute path"),
    ("--mount-root", "MOUNT_ROOT", "/", "filesystem root"),
    ("--mount-root", "MOUNT_ROOT", "/a/..", "filesystem root"),
    ("--mount-root", "MOUNT_ROOT", "/mnt", "must not be /mnt"),
    ("--mount-root", "MOUNT_ROOT", "/mnt/", "must not be /mnt"),
    ("--mount-root", "MOUNT_ROOT", "/var/lib/kubelet", "inside /var/lib/kubelet"),
    ("--mount-root", "MOUNT_ROOT", "/var/lib/kubelet/pods/x", "inside /var/lib/kubelet"),
    ("--mount-timeout", "MOUNT_TIMEOUT", "0", "greater than zero"),
    ("--mount-timeout", "MOUNT_TIMEOUT", "soon", "expected seconds"),
    ("--deadline", "RUN_DEADLINE", "0s", "greater than zero"),
    ("--deadline", "RUN_DEADLINE", "1 day", "expected seconds"),
    ("--lease-name", "LEASE_NAME", "Bad_Name", "DNS-1123 subdomain"),
    ("--lease-name", "LEASE_NAME", "a" * 254, "DNS-1123 subdomain"),
    ("--lease-namespace", "LEASE_NAMESPACE", "kube.system", "DNS-1123 label"),
    ("--lease-duration", "LEASE_DURATION", "14", "between 15 and 3600"),
    ("--lease-duration", "LEASE_DURATION", "3601", "between 15 and 3600"),
    ("--lease-duration", "LEASE_DURATION", "20.5", "whole number of seconds"),
    ("--log-format", "LOG_FORMAT", "xml", "choose one of text, json"),
    ("--endpoints-namespace", "GLUSTER_ENDPOINTS_NAMESPACE", "Gluster", "DNS-1123 label"),
    ("--reset-owner", "RESET_OWNER", "1000", "expected UID:GID"),
    ("--reset-owner", "RESET_OWNER", "root:root", "expected UID:GID"),
    ("--reset-owner", "RESET_OWNER", "1:4294967295", "between 0 and 4294967294"),
    ("--reset-mode", "RESET_MODE", "0999", "octal mode"),
    ("--reset-mode", "RESET_MODE", "17777", "octal mode"),
    ("--reset-mode", "RESET_MODE", "rwx", "octal mode"),
    ("--gluster-hosts", "GLUSTER_HOSTS", "a;-b", "is not a host name"),
]


@pytest.mark.parametrize(
    ("flag", "env", "value", "fragment"),
    BAD_VALUES,
    ids=[f"{case[0]}={case[2][:20]}" for case in BAD_VALUES],
)
def test_bad_value_from_flag(flag: str, env: str, value: str, fragment: str) -> None:
    message = error_of([flag, value])
    assert message.startswith(f"option {flag}:")
    assert fragment in message
    assert value[:20] in message


@pytest.mark.parametrize(
    ("flag", "env", "value", "fragment"),
    BAD_VALUES,
    ids=[f"{case[1]}={case[2][:20]}" for case in BAD_VALUES],
)
def test_bad_value_from_env(flag: str, env: str, value: str, fragment: str) -> None:
    message = error_of([], {env: value})
    assert message.startswith(f"environment variable {env} ({flag}):")
    assert fragment in message
    assert value[:20] in message


def test_bad_value_from_file(tmp_path: Path) -> None:
    path = write(tmp_path, "parallel: 100\n")
    with pytest.raises(ConfigError) as info:
        load(["--config", path])
    assert str(info.value) == (
        f"config file {path!r}, key 'parallel' (--parallel): must be between 1 and 64 (got 100)"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("parallel: true\n", "expected an integer (got True)"),
        ("min-age: yes\n", "expected seconds"),
        ("lease-name: 123\n", "expected a string (got 123)"),
        ("phases: {a: b}\n", "expected a string or a list of strings"),
        ("gluster-hosts: [a, 1]\n", "expected a string or a list of strings"),
        ("failed-messages: [ok, 1]\n", "expected a list of strings"),
        ("failed-messages: 12\n", "'|'-separated messages or a list"),
        ("dry-run: maybe\n", "expected true/false"),
        ("no-client-check: maybe\n", "expected true/false"),
        ("reset-owner: [1, 2, 3]\n", "expected UID:GID or a list"),
    ],
)
def test_bad_types_in_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="config file") as info:
        load(["--config", path])
    assert fragment in str(info.value)
    assert repr(text.split(":", maxsplit=1)[0]) in str(info.value)


def test_failed_phase_needs_a_message() -> None:
    message = error_of(["--failed-messages", " | "])
    assert "--failed-messages" in message
    assert "FAILED_MESSAGES" in message


def test_hidden_identity() -> None:
    assert load(["--identity", "tester"]).identity == "tester"
    message = error_of(["--identity", " "])
    assert "--identity" in message


def test_identity_from_hostname() -> None:
    assert load([], {"HOSTNAME": "recycler-29001-abcde"}).identity == (
        f"recycler-29001-abcde-{os.getpid()}"
    )
    assert load().identity.endswith(f"-{os.getpid()}")


def test_long_bad_values_are_shortened_and_escaped() -> None:
    message = error_of(["--mode", "x\n" * 100])
    assert "\n" not in message
    assert len(message) < 200


# --- command line errors never become SystemExit(2) ---


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--nope"], "unrecognized arguments: --nope"),
        (["--parallel"], "argument --parallel: expected one argument"),
        (["stray"], "unrecognized arguments: stray"),
        (["--par", "2"], "unrecognized arguments: --par"),  # no abbreviations
        (["--dry-run=yes"], "ignored explicit argument 'yes'"),
    ],
)
def test_command_line_errors(argv: list[str], fragment: str) -> None:
    message = error_of(argv)
    assert message.startswith("command line: ")
    assert fragment in message


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load(["--help"])
    assert info.value.code == 0
    assert "usage: gluster-recycler" in capsys.readouterr().out


def test_help_shows_env_and_default_for_every_option() -> None:
    parser = build_parser()
    text = parser.format_help()
    for action in parser._actions:
        if action.help in (None, "==SUPPRESS==") or action.dest in ("help", "version"):
            continue
        assert "default:" in str(action.help), action.dest
        assert "[env " in str(action.help), action.dest
    for env in ("KUBECONFIG", "GLUSTER_HOSTS", "FAILED_MESSAGES", "NO_CLIENT_CHECK", "RESET_MODE"):
        assert env in text
    assert "--identity" not in text


def test_each_option_is_declared_once_and_help_is_derived_from_it() -> None:
    """Field, flag, variable, default and help come from one declaration per option."""
    assert [opt.dest for opt in OPTIONS] == [f.name for f in fields(Config)]
    actions = {a.dest: a for a in build_parser()._actions if a.dest not in ("help", "version")}
    assert set(actions) == {opt.dest for opt in OPTIONS}
    defaults = Config()
    for opt in OPTIONS:
        action = actions[opt.dest]
        assert opt.default == getattr(defaults, opt.dest)
        assert tuple(action.option_strings) == tuple(u.split()[0] for u in opt.usage)
        if opt.hidden:
            assert action.help == argparse.SUPPRESS
            continue
        assert action.help == f"{opt.help} [env {opt.env}; default: {opt.default_text}]"
        assert action.metavar == opt.metavar


def test_help_text_states_the_declared_default_and_variable() -> None:
    text = " ".join(build_parser().format_help().split())
    assert "[env WIPE_WORKERS; default: 16]" in text
    assert "[env MIN_AGE; default: 60]" in text
    assert "[env RECYCLE_PHASES; default: Failed]" in text
    assert "[env NO_CLIENT_CHECK; default: on]" in text
    assert "[env FAILED_MESSAGES; default: No recycler plugin found for the volume!|no" in text


def test_a_negative_option_reads_its_variable_and_file_key_inverted(tmp_path: Path) -> None:
    (negative,) = [opt for opt in OPTIONS if opt.negative]
    assert (negative.dest, negative.env) == ("client_check", "NO_CLIENT_CHECK")
    assert load([], {"NO_CLIENT_CHECK": "true"}).client_check is False
    assert load(["--config", write(tmp_path, "no-client-check: true\n")]).client_check is False
    assert load(["--config", write(tmp_path, "client-check: false\n")]).client_check is False


@pytest.mark.parametrize("path", ["manifests/configmap.yaml", "overlays/openshift/template.yaml"])
def test_the_shipped_configmap_holds_the_declared_defaults(path: str) -> None:
    """The ConfigMap spells the defaults out for admins; the declaration is their source."""
    docs = [doc for doc in yaml.safe_load_all((REPO / path).read_text()) if doc]
    objects = [obj for doc in docs for obj in (doc.get("objects") or [doc])]
    (configmap,) = [
        o for o in objects if o["kind"] == "ConfigMap" and "config" in o["metadata"]["name"]
    ]
    by_env = {opt.env: opt for opt in OPTIONS if opt.env}
    checked = 0
    for env, raw in configmap["data"].items():
        value = str(raw)
        if not value or "${" in value:  # empty means the default; ${X} is a template parameter
            continue
        opt = by_env[env]
        assert getattr(load([], {env: value}), opt.dest) == opt.default, (
            f"{path}: {env}={value!r} is not the default of {opt.flag} ({opt.default_text})"
        )
        checked += 1
    assert checked >= 10


def test_help_epilog_lists_every_exit_code() -> None:
    epilog = build_parser().epilog or ""
    for code in ExitCode:
        assert f"  {int(code)}  " in epilog
    assert "'|'" in build_parser().format_help()  # the failed-messages separator is documented


def test_help_does_not_import_the_cluster_clients() -> None:
    script = textwrap.dedent(
        """\
        import sys
        import recycler_job.config
        try:
            recycler_job.config.load_config(["--help"], {})
        except SystemExit:
            pass
        print(sorted(m for m in ("kubernetes", "openshift", "sh") if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --- the YAML file ---


def test_file_keys_with_dashes_or_underscores(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        gluster-hosts: [g1, g2, g3]
        endpoints_namespace: storage
        phases: [Failed, Released]
        reclaim_policies: Recycle,Retain
        selector: "tier=scratch"
        min_age: 2m
        max-volumes: 5
        dry_run: true
        debug: yes
        log-format: json
        deadline: 600
        """,
    )
    config = load(["--config", path])
    assert config.gluster_hosts == ("g1", "g2", "g3")
    assert config.endpoints_namespace == "storage"
    assert config.phases == frozenset({"Failed", "Released"})
    assert config.reclaim_policies == frozenset({"Recycle", "Retain"})
    assert config.selector == "tier=scratch"
    assert config.min_age == 120.0
    assert config.max_volumes == 5
    assert config.dry_run is True
    assert config.debug is True
    assert config.log_format == "json"
    assert config.deadline == 600.0
    assert config.config_file == path


def test_file_null_means_default(tmp_path: Path) -> None:
    path = write(tmp_path, "min-age: null\nparallel:\n")
    config = load(["--config", path])
    assert config.min_age == 60.0
    assert config.parallel == 1


def test_empty_file(tmp_path: Path) -> None:
    assert load(["--config", write(tmp_path, "")]).parallel == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("paralel: 2\n", "unknown key 'paralel'"),
        ("config: other.yaml\n", "unknown key 'config'"),
        ("identity: shared\n", "unknown key 'identity'"),
        ("1: x\n", "unknown key 1"),
        ("gluster-hosts: a\ngluster_hosts: b\n", "key 'gluster_hosts' is given twice"),
        ("client-check: true\nno-client-check: true\n", "given twice"),
        ("- a\n- b\n", "expected a mapping"),
        ("just a string\n", "expected a mapping"),
        ("a: [1, 2\n", "invalid YAML"),
        ("a: b\n\tc: d\n", "invalid YAML"),
    ],
)
def test_bad_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(["--config", path])
    message = str(info.value)
    assert message.startswith(f"config file {path!r}")
    assert fragment in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        load([], {"CONFIG_FILE": path})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        load(["--config", str(tmp_path)])


# --- lease namespace default chain ---


def test_lease_namespace_default_chain(tmp_path: Path) -> None:
    ns_file = tmp_path / "namespace"
    ns_file.write_text("storage-system\n")
    assert load(namespace_file=str(ns_file)).lease_namespace == "storage-system"
    assert load([], {"POD_NAMESPACE": "from-env"}, namespace_file=str(ns_file)).lease_namespace == (
        "from-env"
    )
    assert load([], {"POD_NAMESPACE": "pod", "LEASE_NAMESPACE": "lease"}).lease_namespace == "lease"
    assert load(["--lease-namespace", "flag"], {"LEASE_NAMESPACE": "env"}).lease_namespace == "flag"
    assert load(namespace_file=str(tmp_path / "missing")).lease_namespace == "default"


def test_lease_namespace_file_beats_pod_namespace(tmp_path: Path) -> None:
    path = write(tmp_path, "lease-namespace: from-file\n")
    assert load(["--config", path], {"POD_NAMESPACE": "pod"}).lease_namespace == "from-file"


def test_bad_namespace_file(tmp_path: Path) -> None:
    ns_file = tmp_path / "namespace"
    ns_file.write_text("Not A Namespace")
    with pytest.raises(ConfigError, match="namespace file") as info:
        load(namespace_file=str(ns_file))
    assert "--lease-namespace" in str(info.value)


def test_default_namespace_file_is_the_service_account_one() -> None:
    assert NAMESPACE_FILE == "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


# --- as_dict / redacted ---


def test_as_dict_is_json_ready() -> None:
    config = load(["--phases", "Released,Failed", "--reset-owner", "1:2", "--gluster-hosts", "a;b"])
    data = config.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["phases"] == ["Failed", "Released"]
    assert data["gluster_hosts"] == ["a", "b"]
    assert data["reset_owner"] == [1, 2]
    assert data["failed_messages"] == list(DEFAULT_FAILED_MESSAGES)
    assert config.redacted() == data  # nothing secret in Config today


def test_redacted_masks_secret_looking_fields() -> None:
    @dataclass(frozen=True)
    class WithSecrets(Config):
        api_token: str | None = "s3cr3t"
        db_password: str | None = None

    data = WithSecrets().redacted()
    assert data["api_token"] == "<redacted>"
    assert data["db_password"] is None
    assert data["lease_name"] == "gluster-recycler"
    assert "s3cr3t" not in json.dumps(data)


def test_claim_namespace_endpoints_are_opt_in(tmp_path: Path) -> None:
    """Tenants control Endpoints in their namespace: reading them there must be asked for."""
    assert load().endpoints_from_claim_namespace is False
    assert load(["--endpoints-from-claim-namespace"]).endpoints_from_claim_namespace is True
    env = {"GLUSTER_ENDPOINTS_FROM_CLAIM_NAMESPACE": "true"}
    assert load([], env).endpoints_from_claim_namespace is True
    assert (
        load(["--no-endpoints-from-claim-namespace"], env).endpoints_from_claim_namespace is False
    )
    path = write(tmp_path, "endpoints-from-claim-namespace: yes\n")
    assert load(["--config", path]).endpoints_from_claim_namespace is True
    assert "GLUSTER_ENDPOINTS_FROM_CLAIM_NAMESPACE" in error_of(
        [], {"GLUSTER_ENDPOINTS_FROM_CLAIM_NAMESPACE": "maybe"}
    )


def test_backend_defaults_to_fuse_and_takes_gfapi() -> None:
    assert load().backend == "fuse"
    assert load(["--backend", "gfapi"]).backend == "gfapi"
    assert load(env={"WIPE_BACKEND": "GFAPI"}).backend == "gfapi"
    assert "--backend" in error_of(["--backend", "nfs"])


def test_log_dir_is_writable_in_a_read_only_root_pod_by_default() -> None:
    """/tmp is where the restricted manifests mount an emptyDir."""
    assert load().log_dir.startswith("/tmp/")
    assert load(env={"GLUSTER_LOG_DIR": "/logs/"}).log_dir == "/logs"
    assert "absolute" in error_of(["--log-dir", "logs"])


def test_gfapi_refuses_owner_and_mode_reset() -> None:
    """The gfapi transport does not chown/chmod: refused up front, not ignored."""
    assert "not supported with --backend gfapi" in error_of(
        ["--backend", "gfapi", "--reset-owner", "1:1"]
    )
    assert "not supported with --backend gfapi" in error_of(
        ["--backend", "gfapi", "--reset-mode", "0775"]
    )


def test_redacted_masks_the_password_of_an_url() -> None:
    config = load(["--pushgateway", "http://metrics:pushpass99@gateway:9091"])
    assert config.pushgateway == "http://metrics:pushpass99@gateway:9091"  # used as given
    data = config.redacted()
    assert data["pushgateway"] == "http://<redacted>@gateway:9091"
    assert "pushpass99" not in json.dumps(data)
