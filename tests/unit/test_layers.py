"""The layers of docs/design.md, enforced: a module that imports across a layer fails here.

- Only `kube.py` imports the Kubernetes client (`kubernetes`, `openshift`); only the modules
  that talk to the API (API_CALLERS) import `kube`, everything else handles its failures
  through `api_errors`.
- `gluster/` is plumbing: it never imports the actor, the runner, the transports, the wipe
  backends or anything that talks to the API.
- The rules (`decide`) and what they read are pure (PURE): no third-party package, no I/O
  module of the standard library, no package module outside PURE (imports under
  `if TYPE_CHECKING:` are for types only and do not count).

- Beyond these, each module belongs to one layer of LAYERS (docs/design.md lists them in this
  order) and imports only from its own layer and the ones before it; a new module must be
  given a layer here.

The imports are read from the source (ast), so a function-local import counts too.
"""

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "recycler_job"

CLIENT_PACKAGES = frozenset({"kubernetes", "openshift"})
CLIENT_DOOR = "kube"
API_CALLERS = frozenset(
    {"act", "events", "hosts_lookup", "journal", "lease", "runner", "view", CLIENT_DOOR}
)
GLUSTER_FORBIDDEN = ("act", "runner", "cli", "wipe", *sorted(API_CALLERS))
PURE = frozenset(
    {
        "api_errors",
        "clock",
        "decide",
        "errors",
        "exit_codes",
        "names",
        "pv_writes",
        "selector",
        "snapshot",
        "sources",
        "sources.glusterfs",
    }
)
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("pure", PURE),
    ("shared", frozenset({"logs", "failpoints", "report"})),
    ("settings", frozenset({"config"})),
    ("gluster", frozenset({"gluster", "tls"})),
    ("api", frozenset({CLIENT_DOOR, "lease", "events", "journal", "hosts_lookup", "view"})),
    ("wipe", frozenset({"wipe"})),
    ("volume", frozenset({"watch", "act"})),
    ("pass", frozenset({"runner", "metrics", "cli", "__main__", ""})),
)
"""Lowest first; a package name covers its modules (`gluster` covers `gluster.mount`)."""
STDLIB_IO = frozenset(
    {
        "ctypes",
        "fcntl",
        "http",
        "io",
        "logging",
        "os",
        "pathlib",
        "select",
        "shutil",
        "signal",
        "socket",
        "ssl",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "urllib",
    }
)


@dataclass
class Imports:
    """What one module imports: package modules (without `recycler_job.`) and top-level names
    of other packages, each split into run-time imports and those for type checking only."""

    package: set[str] = field(default_factory=set)
    external: set[str] = field(default_factory=set)
    typing_only: set[str] = field(default_factory=set)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of the import nodes inside `if TYPE_CHECKING:` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(sub) for stmt in node.body for sub in ast.walk(stmt)}
    return inside


def _add(found: Imports, name: str, typing_only: bool) -> None:
    if name == "recycler_job" or name.startswith("recycler_job."):
        target = name.removeprefix("recycler_job").removeprefix(".")
        (found.typing_only if typing_only else found.package).add(target)
    elif not typing_only:
        found.external.add(name.split(".", maxsplit=1)[0])


def imports_of(source: str) -> Imports:
    """Every import of a module's source, resolved to package modules where it names one."""
    tree = ast.parse(source)
    for_types = _type_checking_nodes(tree)
    found = Imports()
    for node in ast.walk(tree):
        typing_only = id(node) in for_types
        if isinstance(node, ast.Import):
            for alias in node.names:
                _add(found, alias.name, typing_only)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                # `from recycler_job.gluster import cli` imports the module gluster.cli.
                candidate = f"{node.module}.{alias.name}"
                rel = candidate.removeprefix("recycler_job.")
                inside = candidate.startswith("recycler_job.")
                _add(found, candidate if inside and _is_module(rel) else node.module, typing_only)
    found.package.discard("")
    return found


def package_imports() -> dict[str, Imports]:
    return {
        _module_name(path): imports_of(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _in(name: str, layer: "tuple[str, ...] | frozenset[str]") -> bool:
    """`name` is one of `layer`'s modules or inside one of its packages."""
    return any(name == item or name.startswith(item + ".") for item in layer)


def layer_of(name: str) -> int | None:
    """The index in LAYERS of the layer `name` belongs to (None: no layer)."""
    for index, (_, members) in enumerate(LAYERS):
        if name in members or _in(name, tuple(m for m in members if m)):
            return index
    return None


def _order(name: str, imports: Imports) -> list[str]:
    """An import of a later layer, or a module in no layer."""
    mine = layer_of(name)
    if mine is None:
        return [f"{name} is in no layer: give it one in tests/unit/test_layers.py LAYERS"]
    return [
        f"{name} ({LAYERS[mine][0]}) imports {dep} ({LAYERS[theirs][0]}): a later layer"
        for dep in sorted(imports.package)
        if (theirs := layer_of(dep)) is not None and theirs > mine
    ]


def violations(modules: dict[str, Imports]) -> list[str]:
    """One line per import that crosses a layer."""
    found: list[str] = []
    for name, imports in sorted(modules.items()):
        found += _order(name, imports)
        if name != CLIENT_DOOR:
            found += [
                f"{name} imports {ext}: only {CLIENT_DOOR} may use the Kubernetes client"
                for ext in sorted(imports.external & CLIENT_PACKAGES)
            ]
        if name not in API_CALLERS:
            found += [
                f"{name} imports {CLIENT_DOOR}: not one of the API callers {sorted(API_CALLERS)}"
                for dep in sorted(imports.package)
                if dep == CLIENT_DOOR
            ]
        if _in(name, ("gluster",)):
            found += [
                f"{name} imports {dep}: gluster/ is below the actor, runner and transports"
                for dep in sorted(imports.package)
                if _in(dep, GLUSTER_FORBIDDEN)
            ]
        if name in PURE:
            found += [
                f"{name} imports {dep}: a pure module imports only pure ones"
                for dep in sorted(imports.package)
                if dep and dep not in PURE
            ]
            found += [
                f"{name} imports {ext}: a pure module does no I/O"
                for ext in sorted(imports.external)
                if ext in STDLIB_IO or ext not in sys.stdlib_module_names
            ]
    return found


def test_no_module_imports_across_a_layer() -> None:
    modules = package_imports()
    assert {"kube", "decide", "snapshot", "gluster.mount", "act"} <= set(modules)
    assert violations(modules) == []


def test_the_rules_see_every_kind_of_crossing() -> None:
    """Each rule reports a forbidden import (so the test above can fail)."""
    bad = {
        "events": imports_of("from kubernetes import client\n"),
        "decide": imports_of(
            "from typing import TYPE_CHECKING\n"
            "from recycler_job import kube\n"
            "if TYPE_CHECKING:\n    from recycler_job.config import Config\n"
        ),
        "snapshot": imports_of("import socket\nimport yaml\nimport re\n"),
        "gluster.mount": imports_of("def f():\n    from recycler_job.act import Actor\n"),
        "gluster.cli": imports_of("from recycler_job.wipe import fuse_transport\n"),
        "report": imports_of("from recycler_job.kube import PV\n"),
    }
    assert violations(bad) == [
        "decide (pure) imports kube (api): a later layer",
        "decide imports kube: not one of the API callers " + str(sorted(API_CALLERS)),
        "decide imports kube: a pure module imports only pure ones",
        "events imports kubernetes: only kube may use the Kubernetes client",
        "gluster.cli (gluster) imports wipe.fuse_transport (wipe): a later layer",
        "gluster.cli imports wipe.fuse_transport: gluster/ is below the actor, runner and "
        "transports",
        "gluster.mount (gluster) imports act (volume): a later layer",
        "gluster.mount imports act: gluster/ is below the actor, runner and transports",
        "report (shared) imports kube (api): a later layer",
        "report imports kube: not one of the API callers " + str(sorted(API_CALLERS)),
        "snapshot imports socket: a pure module does no I/O",
        "snapshot imports yaml: a pure module does no I/O",
    ]


def test_a_module_in_no_layer_is_reported() -> None:
    assert violations({"newthing": imports_of("import re\n")}) == [
        "newthing is in no layer: give it one in tests/unit/test_layers.py LAYERS"
    ]


def test_every_layer_member_exists() -> None:
    """A layer that names a module the package no longer has is out of date."""
    modules = set(package_imports())
    for layer, members in LAYERS:
        assert all(member in modules for member in members), layer


def test_the_wipe_reads_only_its_own_settings() -> None:
    """`wipe/` gets `WipeSettings` from the actor and never reads the run's Config."""
    assert [
        name
        for name, imports in package_imports().items()
        if _in(name, ("wipe",))
        and any(_in(dep, ("config",)) for dep in imports.package | imports.typing_only)
    ] == []
