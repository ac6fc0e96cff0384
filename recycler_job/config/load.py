"""Loading: the command-line parser, the YAML file, and each option's value by precedence
(flags > environment > file > defaults), validated into a `Config` before any work."""

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import yaml

from recycler_job.config import convert
from recycler_job.config.options import OPTIONS, Config
from recycler_job.config.spec import ConfigError, Invalid, Option
from recycler_job.exit_codes import ExitCode

DISTRIBUTION = "gluster-recycler"
"""The package's name in pyproject.toml; its installed metadata carries the version."""
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
"""The pod's namespace, mounted with the service account token; the lease lives there by default."""

_EXIT_CODE_HELP = {
    ExitCode.OK: (
        "pass completed (a volume in use is left for a later run: outcome busy), nothing to "
        "do, dry run, or another run holds the lease"
    ),
    ExitCode.VOLUME_FAILED: (
        "at least one volume could not be recycled, the lease was lost, or an unexpected "
        "error stopped the pass"
    ),
    ExitCode.BAD_CONFIG: "configuration rejected before anything was touched",
    ExitCode.CLUSTER_UNAVAILABLE: "API unreachable, unauthorized or forbidden",
    ExitCode.INTERRUPTED: (
        "SIGTERM/SIGINT: stopped starting volumes, cleaned up, released the lease"
    ),
}
_BY_DEST = {opt.dest: opt for opt in OPTIONS}
_FILE_KEYS = {opt.file_key: opt for opt in OPTIONS if opt.in_file}
# The flag spelling of a negative option (no-client-check) is a file key too, with its meaning.
_NEGATIVE_FILE_KEYS = {"no-" + opt.file_key: opt for opt in OPTIONS if opt.negative}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _epilog() -> str:
    codes = "\n".join(f"  {int(code)}  {_EXIT_CODE_HELP[code]}" for code in ExitCode)
    return (
        "Precedence: flags > environment > config file > defaults. Boolean variables take\n"
        "true/false, 1/0, yes/no; empty variables count as unset. In the config file, list\n"
        "options take a YAML list; quote reset-owner and reset-mode.\n\n"
        f"exit codes:\n{codes}"
    )


class _Parser(argparse.ArgumentParser):
    """Turns argparse's usage-and-exit(2) into a one-line ConfigError; `--help` still exits 0."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"command line: {message}")


def version() -> str:
    """The installed distribution's version: pyproject.toml is its one source."""
    from importlib import metadata  # noqa: PLC0415 (only --version needs it)

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; every default is None so `load_config` sees what was given."""
    parser = _Parser(
        prog="gluster-recycler",
        description="Wipe released GlusterFS PersistentVolumes and return them to the pool "
        "(one pass, then exit).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    for opt in OPTIONS:
        help_text = argparse.SUPPRESS if opt.hidden else opt.help_text
        if opt.boolean:
            parser.add_argument(
                opt.flag,
                dest=opt.dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                opt.flag, dest=opt.dest, default=None, metavar=opt.metavar, help=help_text
            )
    parser.add_argument(
        "--version",
        action="version",
        version=f"gluster-recycler {version()}",
        help="print the version and exit",
    )
    return parser


def _read_file(path: str) -> dict[str, object]:
    """The file's options keyed by Config field; unknown or duplicate keys are errors."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {path!r}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"config file {path!r}: invalid YAML: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r}: expected a mapping of option: value")
    found: dict[str, object] = {}
    for key, raw in data.items():
        value = raw
        norm = key.replace("_", "-") if isinstance(key, str) else None
        if norm in _NEGATIVE_FILE_KEYS:
            dest = _NEGATIVE_FILE_KEYS[norm].dest
            if raw is not None:
                try:
                    value = not convert.to_bool(raw)
                except Invalid as exc:
                    raise ConfigError(
                        f"config file {path!r}, key {key!r}: {exc.reason} (got {_show(raw)})"
                    ) from None
        elif norm in _FILE_KEYS:
            dest = _FILE_KEYS[norm].dest
        else:
            raise ConfigError(f"config file {path!r}: unknown key {key!r}")
        if dest in found:
            raise ConfigError(f"config file {path!r}: key {key!r} is given twice")
        found[dest] = value
    return {dest: value for dest, value in found.items() if value is not None}


def _env(environ: Mapping[str, str], name: str | None) -> str | None:
    if name is None:
        return None
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def _convert(opt: Option, raw: object, where: str) -> Any:
    try:
        return opt.convert(raw)
    except Invalid as exc:
        got = f" (got {_show(raw)})" if exc.show_value else ""
        raise ConfigError(f"{where}: {exc.reason}{got}") from None


_UNSET = object()


def _value(
    opt: Option,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    file_values: Mapping[str, object],
    config_file: str | None,
) -> Any:
    """The option's value by precedence (flag > environment > file), or _UNSET."""
    if (flag_value := getattr(args, opt.dest)) is not None:
        return _convert(opt, flag_value, f"option {opt.flag}")
    if (env_value := _env(environ, opt.env)) is not None:
        value = _convert(opt, env_value, f"environment variable {opt.env} ({opt.flag})")
        return not value if opt.negative else value
    if opt.dest in file_values:
        where = f"config file {config_file!r}, key {opt.file_key!r} ({opt.flag})"
        return _convert(opt, file_values[opt.dest], where)
    return _UNSET


def _default_namespace(environ: Mapping[str, str], namespace_file: str) -> tuple[str, str]:
    """(namespace, where it came from): POD_NAMESPACE, else the in-cluster file, else default."""
    if (value := _env(environ, "POD_NAMESPACE")) is not None:
        return value, "environment variable POD_NAMESPACE (default of --lease-namespace)"
    if os.path.exists(namespace_file):
        try:
            with open(namespace_file, encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"namespace file {namespace_file!r} (default of --lease-namespace): "
                f"cannot read: {exc.strerror or exc}"
            ) from None
        return value, f"namespace file {namespace_file!r} (default of --lease-namespace)"
    return "default", "built-in default of --lease-namespace"


def load_config(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    namespace_file: str = NAMESPACE_FILE,
) -> Config:
    """Parse `argv` (without the program name) and `environ` into a validated Config.

    Raises ConfigError on any bad input; `--help` prints and raises SystemExit(0).
    """
    args = build_parser().parse_args(list(argv))
    # The file is found first (flag > environment; `--config ""` means no file), then read.
    found = _value(_BY_DEST["config_file"], args, environ, {}, None)
    config_file: str | None = None if found is _UNSET else found
    file_values = _read_file(config_file) if config_file else {}
    values: dict[str, Any] = {"config_file": config_file}
    for opt in OPTIONS:
        if opt.dest not in values:
            value = _value(opt, args, environ, file_values, config_file)
            if value is not _UNSET:
                values[opt.dest] = value

    if "lease_namespace" not in values:
        raw, where = _default_namespace(environ, namespace_file)
        values["lease_namespace"] = _convert(_BY_DEST["lease_namespace"], raw, where)
    if "identity" not in values:
        host = _env(environ, "HOSTNAME") or socket.gethostname() or "gluster-recycler"
        values["identity"] = f"{host.strip()}-{os.getpid()}"

    config = Config(**values)
    if config.backend == "gfapi" and (
        config.reset_owner is not None or config.reset_mode is not None
    ):
        raise ConfigError(
            "--reset-owner/--reset-mode: not supported with --backend gfapi "
            "(use --backend fuse, or set the owner and mode of the volume root by hand)"
        )
    if "Failed" in config.phases and not config.failed_messages:
        raise ConfigError(
            "--failed-messages/FAILED_MESSAGES: no message given, but --phases includes Failed "
            "(no Failed PV could ever be recycled)"
        )
    return config
