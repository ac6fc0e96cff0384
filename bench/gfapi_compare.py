"""Throughput of the gfapi wipe against the FUSE wipe and ``find -delete``, on identical trees.

    .venv/bin/python -m bench.gfapi_compare [--quick] [--workers 8] [--rounds 1]

Uses bench.wipe's scratch volume and tree builders (trees are built through a FUSE mount,
never on the brick).  Per shape and round, three identical trees are built, then timed back to
back (the order rotates between rounds, the machine being shared):

* ``find DIR -mindepth 1 -delete`` on a fresh FUSE mount,
* ``recycler_job.wipe.wipe_tree`` on a fresh FUSE mount,
* ``GfapiVolume.wipe(subdir)`` on a fresh ``glfs_t`` (connection set up before the clock
  starts; ``glfs_init`` and ``glfs_fini`` are reported separately: fini costs 1-10 s in
  gluster 10.3 whatever was done).

Prints files/s per contender and the ratio to ``find -delete`` measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.wipe import Shape, build, scratch_volume
from recycler_job.gfapi_wipe import open_volume
from recycler_job.wipe import DEFAULT_WORKERS, wipe_tree


def shapes(quick: bool) -> list[Shape]:
    if quick:
        return [
            Shape("wide", 40, 100, "wide"),
            Shape("flat", 1, 4000, "wide"),
            Shape("large", 4, 16, "large"),
        ]
    return [
        Shape("wide", 200, 100, "wide"),  # 20,000 files in 200 directories
        Shape("flat", 1, 20_000, "wide"),  # 20,000 files in one directory
        Shape("large", 4, 256, "large"),  # 4 x 256 MiB
    ]


@contextmanager
def fresh_mount(volume: str) -> Iterator[str]:
    """A new FUSE mount of ``volume`` (no warm caches from building the trees)."""
    path = tempfile.mkdtemp(prefix="gfapi-bench-mnt-")
    subprocess.run(
        ["mount", "-t", "glusterfs", f"{socket.gethostname()}:/{volume}", path], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=False)
        os.rmdir(path)


def _check_empty_and_remove(root: str) -> None:
    left = os.listdir(root)
    if left:
        raise RuntimeError(f"{root} not empty after wipe: {left[:5]}")
    os.rmdir(root)


def time_find(volume: str, name: str) -> float:
    with fresh_mount(volume) as mnt:
        root = os.path.join(mnt, name)
        t0 = time.monotonic()
        subprocess.run(["find", root, "-mindepth", "1", "-delete"], check=True)
        elapsed = time.monotonic() - t0
        _check_empty_and_remove(root)
    return elapsed


def time_fuse(volume: str, name: str, workers: int) -> float:
    with fresh_mount(volume) as mnt:
        root = os.path.join(mnt, name)
        t0 = time.monotonic()
        wipe_tree(root, workers=workers)
        elapsed = time.monotonic() - t0
        _check_empty_and_remove(root)
    return elapsed


def time_gfapi(volume: str, name: str, workers: int, log: str, fixed: dict[str, float]) -> float:
    t0 = time.monotonic()
    vol = open_volume(volume, [socket.gethostname()], log_file=log)
    fixed.setdefault("init", time.monotonic() - t0)
    try:
        t0 = time.monotonic()
        vol.wipe(name, workers=workers)
        elapsed = time.monotonic() - t0
    finally:
        t1 = time.monotonic()
        vol.close()
        fixed.setdefault("fini", time.monotonic() - t1)
    return elapsed


def compare(
    shape: Shape, mnt: Path, workers: int, rounds: int, log: str, fixed: dict[str, float]
) -> dict[str, float]:
    volume = f"wipebench{os.getpid()}"
    contenders: dict[str, Callable[[str], float]] = {
        "find": lambda n: time_find(volume, n),
        "fuse": lambda n: time_fuse(volume, n, workers),
        "gfapi": lambda n: time_gfapi(volume, n, workers, log, fixed),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(rounds):
        for k in names:
            build(shape, str(mnt / f"{shape.name}-{k}-{r}"))
        subprocess.run(["sync"], check=False)
        for k in names[r % len(names) :] + names[: r % len(names)]:
            times[k].append(contenders[k](f"{shape.name}-{k}-{r}"))
    return {k: statistics.median(v) for k, v in times.items()}


def run(quick: bool, workers: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"workers": workers, "rounds": rounds, "shapes": {}}
    fixed: dict[str, float] = {}
    with scratch_volume() as mnt, tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "gfapi.log")
        for shape in shapes(quick):
            seconds = compare(shape, mnt, workers, rounds, log, fixed)
            entries = shape.files
            rates = {k: entries / s for k, s in seconds.items()}
            results["shapes"][shape.name] = {
                "files": entries,
                "seconds": seconds,
                "files_per_s": rates,
                "vs_find": {k: seconds["find"] / s for k, s in seconds.items()},
            }
            row = "  ".join(
                f"{k} {seconds[k]:6.2f}s {rates[k]:8.0f}/s x{seconds['find'] / seconds[k]:.2f}"
                for k in seconds
            )
            print(f"{shape.name:6s} {entries:6d} files: {row}", flush=True)
    results["gfapi_fixed_seconds"] = fixed
    print(f"gfapi connection: init {fixed.get('init', 0):.2f}s, fini {fixed.get('fini', 0):.2f}s")
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    results = run(args.quick, args.workers, args.rounds)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
