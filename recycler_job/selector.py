"""Kubernetes label selectors in their string form, parsed and matched locally.

The server filters the PV list with the same string, but `decide` matches again client side so
a selector can never be bypassed by a server that ignores it (or a list built another way).
Syntax and semantics follow apimachinery's `labels.Parse`: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
`k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`, joined by commas (a logical AND). This module is
dependency-free so `config` can validate a selector without importing the Kubernetes client.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from recycler_job.names import DNS1123_SUBDOMAIN_MAX, is_dns1123_subdomain


class Operator(StrEnum):
    """A requirement's operator, spelled as in the selector string."""

    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    GREATER_THAN = ">"
    LESS_THAN = "<"


_NAME_MAX = 63
_PREFIX_MAX = DNS1123_SUBDOMAIN_MAX
_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_INTEGER_RE = re.compile(r"^[+-]?[0-9]+$")
# Symbols are matched longest first, as the apimachinery lexer does.
_SYMBOLS = ("!=", "==", "!", "=", "(", ")", ",", ">", "<")
_SPECIAL_CHARS = frozenset("!=(),<>")


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this term (negative operators hold for absent keys)."""
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.EQUALS | Operator.DOUBLE_EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or value not in self.values
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                if value is None or not _INTEGER_RE.match(value):
                    return False
                bound = int(self.values[0])
                if self.operator is Operator.GREATER_THAN:
                    return int(value) > bound
                return int(value) < bound
        return False  # pragma: no cover - the match is exhaustive


@dataclass(frozen=True)
class Selector:
    """A parsed selector: every requirement must hold. No requirements matches everything."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether a PV with `labels` (None = no labels) is selected."""
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    def __str__(self) -> str:
        return self.text


def validate_key(key: str) -> None:
    """Raise ValueError unless `key` is a qualified name, `[prefix/]name`, as Kubernetes wants."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise ValueError(f"label key {key!r}: prefix before '/' is empty")
        if not is_dns1123_subdomain(prefix):
            raise ValueError(
                f"label key {key!r}: prefix {prefix!r} must be a lowercase DNS subdomain "
                f"of at most {_PREFIX_MAX} characters"
            )
    if not name:
        raise ValueError(f"label key {key!r}: name part is empty")
    _check_name(name, f"label key {key!r}: name part is", f"label key {key!r}: name")


def validate_value(value: str) -> None:
    """Raise ValueError unless `value` is a valid label value (may be empty)."""
    if value == "":
        return
    _check_name(value, f"label value {value!r} is", f"label value {value!r}")


def _check_name(name: str, it_is: str, it: str) -> None:
    """The rule label names and values share; `it_is`/`it` start the message."""
    if len(name) > _NAME_MAX:
        raise ValueError(f"{it_is} longer than {_NAME_MAX} characters")
    if not _NAME_RE.match(name):
        raise ValueError(
            f"{it} must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        )


def _tokenize(text: str) -> list[str]:
    """Split into symbols and identifiers; whitespace only separates."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _SPECIAL_CHARS:
            symbol = next(s for s in _SYMBOLS if text.startswith(s, i))
            tokens.append(symbol)
            i += len(symbol)
            continue
        start = i
        while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL_CHARS:
            i += 1
        tokens.append(text[start:i])
    return tokens


class _Parser:
    """Recursive-descent parser over the token list; errors name the offending token."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def fail(self, what: str) -> ValueError:
        return ValueError(f"invalid label selector {self.text!r}: {what}")

    def parse(self) -> tuple[Requirement, ...]:
        if self.peek() is None:
            return ()
        reqs = [self.requirement()]
        while (tok := self.take()) is not None:
            if tok != ",":
                raise self.fail(f"expected ',' or end of selector, found {tok!r}")
            if self.peek() is None:
                raise self.fail("trailing ','")
            reqs.append(self.requirement())
        return tuple(reqs)

    def key(self) -> str:
        tok = self.take()
        return self._word(tok, "key", ("in", "notin"), validate_key)

    def value(self, tok: str | None) -> str:
        # `in`/`notin` are plain identifiers where a value is expected, as upstream.
        return self._word(tok, "value", (), validate_value)

    def _word(
        self, tok: str | None, what: str, reserved: tuple[str, ...], validate: Callable[[str], None]
    ) -> str:
        """`tok` as a label key or value; a parse error when it is missing, a symbol, a
        `reserved` word or invalid."""
        if tok is None or tok in _SYMBOLS or tok in reserved:
            found = "end of selector" if tok is None else repr(tok)
            raise self.fail(f"expected a label {what}, found {found}")
        try:
            validate(tok)
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        return tok

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.key(), Operator.DOES_NOT_EXIST)
        key = self.key()
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, Operator.EXISTS)
        self.take()
        if op in ("=", "==", "!="):
            nxt = self.peek()
            # `k=` selects an empty value, like upstream.
            value = "" if nxt is None or nxt == "," else self.value(self.take())
            return Requirement(key, Operator(op), (value,))
        if op in ("in", "notin"):
            return Requirement(key, Operator(op), self.value_set(key, op))
        if op in (">", "<"):
            tok = self.take()
            if tok is None or not _INTEGER_RE.match(tok):
                found = "end of selector" if tok is None else repr(tok)
                raise self.fail(f"{key} {op}: expected an integer, found {found}")
            return Requirement(key, Operator(op), (tok,))
        raise self.fail(f"expected an operator after {key!r}, found {op!r}")

    def value_set(self, key: str, op: str) -> tuple[str, ...]:
        tok = self.take()
        if tok != "(":
            found = "end of selector" if tok is None else repr(tok)
            raise self.fail(f"after '{key} {op}': expected '(', found {found}")
        values: list[str] = []
        while True:
            tok = self.take()
            if tok == ")" and not values:
                raise self.fail(f"{key} {op} (): the value list is empty")
            values.append(self.value(tok))
            tok = self.take()
            if tok == ")":
                return tuple(values)
            if tok != ",":
                found = "end of selector" if tok is None else repr(tok)
                raise self.fail(f"{key} {op} (...): expected ',' or ')', found {found}")


def parse_selector(text: str) -> Selector:
    """Parse a label selector string; raise ValueError with the reason on bad syntax.

    An empty (or blank) string is the selector that matches everything, as upstream.
    """
    return Selector(text=text.strip(), requirements=_Parser(text).parse())


__all__ = [
    "Operator",
    "Requirement",
    "Selector",
    "parse_selector",
    "validate_key",
    "validate_value",
]
