"""What an option is: one `Option` per `Config` field, declared once with `option(...)`.

argparse, the environment, the file, `--help` and the README table are all derived from the
`Option` a field carries, so adding a setting is one declaration in options.py.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from recycler_job.errors import RecyclerError


class ConfigError(RecyclerError):
    """Configuration rejected; the message is one line naming the option and the bad value."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class Invalid(RecyclerError):
    """A converter's complaint; the loader adds where the value came from."""

    def __init__(self, reason: str, *, show_value: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.show_value = show_value


Converter = Callable[[object], Any]
_T = TypeVar("_T")
_OPTION = "option"  # the key of a Config field's metadata that holds its Option


@dataclass(frozen=True)
class Option:
    """One setting: its flag, environment variable, file key, converter, default and help.

    Declared once, on its Config field (`option`); argparse, the environment, the file,
    `--help` and the README table are all derived from it.
    """

    env: str | None
    convert: Converter
    help: str
    metavar: str | None = None
    default_help: str | None = None  # None: derived from the default
    flag: str = ""  # "": --<name with '-'>
    in_file: bool = True
    hidden: bool = False
    negative: bool = False  # `env` and the file key no-KEY give the opposite (NO_CLIENT_CHECK)
    dest: str = ""  # filled in from the field
    default: object = None  # likewise

    @property
    def boolean(self) -> bool:
        """A switch: --x/--no-x on the command line, true/false elsewhere."""
        return isinstance(self.default, bool)

    @property
    def file_key(self) -> str:
        return self.flag[2:]

    @property
    def usage(self) -> tuple[str, ...]:
        """How the option is spelled on the command line, as `--help` and the README show it."""
        if self.boolean:
            return (self.flag, "--no-" + self.file_key)
        return (f"{self.flag} {self.metavar}" if self.metavar else self.flag,)

    @property
    def default_text(self) -> str:
        if self.default_help is not None:
            return self.default_help
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, frozenset):
            return ",".join(sorted(value))
        if isinstance(value, tuple):
            return "|".join(str(item) for item in value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    @property
    def help_text(self) -> str:
        """The `--help` line: what it does, then its variable and default."""
        env = f"env {self.env}; " if self.env else ""
        return f"{self.help} [{env}default: {self.default_text}]"


def option(
    default: _T,
    env: str | None,
    convert: Converter,
    help: str,
    *,
    metavar: str | None = None,
    default_help: str | None = None,
    **more: Any,
) -> _T:
    """A Config field with its default and its Option: the one declaration of a setting."""
    spec = Option(env, convert, help, metavar, default_help, **more)
    return field(default=default, metadata={_OPTION: spec})


def options_of(config_class: type) -> tuple[Option, ...]:
    """The Options of a dataclass declared with `option`, in field order, completed from the
    field: its name, its default, and the flag derived from the name."""
    return tuple(
        replace(
            f.metadata[_OPTION],
            dest=f.name,
            default=f.default,
            flag=f.metadata[_OPTION].flag or "--" + f.name.replace("_", "-"),
        )
        for f in fields(config_class)
    )
