"""Benchmark the wipe engine on a real gluster FUSE mount against `find -delete` and `rsync`.

    .venv/bin/python -m bench.wipe [--quick] [--sweep 4,8,16] [--no-write]

Sets up its own one-brick scratch volume (starting glusterd if needed; glusterd is left
running), builds identical trees through the mount (never on the brick: gluster keeps metadata
the brick alone does not have) and times, in the same run:

* ``wipe_tree`` with the default number of workers,
* ``find DIR -mindepth 1 -delete``,
* ``rsync -a --delete empty/ DIR/``,

for three shapes: wide (100,000 small files in 1,000 directories), deep (200-level chains),
large (4 x 256 MiB).  Peak RSS of the wipe is measured in a child process on 10,000 and
200,000 files.  The wide-tree figures are merged into ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recycler_job.wipe import DEFAULT_WORKERS, wipe_tree

RESULTS = Path(__file__).resolve().parent / "results.json"
REPO = Path(__file__).resolve().parent.parent
BUILD_THREADS = 16
SMALL = b"x" * 100


@dataclass(frozen=True)
class Shape:
    name: str
    dirs: int  # wide: directories; deep: chains
    per_dir: int  # wide: files per directory; deep: levels per chain; large: MiB per file
    kind: str  # "wide" | "deep" | "large"

    @property
    def files(self) -> int:
        if self.kind == "large":
            return self.dirs
        return self.dirs * self.per_dir


def shapes(quick: bool) -> list[Shape]:
    if quick:
        return [
            Shape("wide", 100, 100, "wide"),
            Shape("deep", 5, 200, "deep"),
            Shape("large", 4, 16, "large"),
        ]
    return [
        Shape("wide", 1000, 100, "wide"),
        Shape("deep", 20, 200, "deep"),
        Shape("large", 4, 256, "large"),
    ]


# ---- scratch gluster volume ------------------------------------------------------------


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


def _ensure_glusterd() -> None:
    if _run("pgrep", "-x", "glusterd", check=False).returncode == 0:
        return
    _run("glusterd")
    for _ in range(50):
        if _run("gluster", "volume", "list", check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("glusterd did not come up")


@contextmanager
def scratch_volume() -> Iterator[Path]:
    """A started one-brick volume mounted under a temp dir; everything removed afterwards."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("glusterd"):
        raise SystemExit("bench.wipe needs root, /dev/fuse and glusterd")
    _ensure_glusterd()
    base = Path(tempfile.mkdtemp(prefix="wipe-bench-"))
    host = socket.gethostname()
    vol = f"wipebench{os.getpid()}"
    brick, mnt = base / "brick", base / "mnt"
    mnt.mkdir()
    created = mounted = False
    try:
        _run("gluster", "--mode=script", "volume", "create", vol, f"{host}:{brick}", "force")
        created = True
        _run("gluster", "--mode=script", "volume", "start", vol)
        _run("mount", "-t", "glusterfs", f"{host}:/{vol}", str(mnt))
        mounted = True
        yield mnt
    finally:
        if mounted:
            _run("umount", str(mnt), check=False)
        if created:
            _run("gluster", "--mode=script", "volume", "stop", vol, "force", check=False)
            _run("gluster", "--mode=script", "volume", "delete", vol, check=False)
        shutil.rmtree(base, ignore_errors=True)


# ---- tree builders (through the mount, in parallel) -------------------------------------


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _build_wide_dir(root: str, d: int, files: int) -> None:
    sub = os.path.join(root, f"d{d:04d}")
    os.mkdir(sub)
    for i in range(files):
        _write(os.path.join(sub, f"f{i:04d}"), SMALL)


def _build_chain(root: str, c: int, levels: int) -> None:
    path = os.path.join(root, f"c{c:03d}")
    for level in range(levels):
        os.mkdir(path)
        _write(os.path.join(path, f".f{level}"), SMALL)
        path = os.path.join(path, "d")


def _build_large(root: str, i: int, mib: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(os.path.join(root, f"big{i}"), "wb") as f:
        for _ in range(mib):
            f.write(chunk)


def build(shape: Shape, root: str) -> float:
    """Create ``shape`` below ``root`` (created); returns seconds taken."""
    os.mkdir(root)
    t0 = time.monotonic()
    with ThreadPoolExecutor(BUILD_THREADS) as pool:
        if shape.kind == "wide":
            jobs = [pool.submit(_build_wide_dir, root, d, shape.per_dir) for d in range(shape.dirs)]
        elif shape.kind == "deep":
            jobs = [pool.submit(_build_chain, root, c, shape.per_dir) for c in range(shape.dirs)]
        else:
            jobs = [pool.submit(_build_large, root, i, shape.per_dir) for i in range(shape.dirs)]
        for job in jobs:
            job.result()
    return time.monotonic() - t0


# ---- the contenders --------------------------------------------------------------------


def _wipe_ours(root: str, workers: int) -> None:
    wipe_tree(root, workers=workers)


def _wipe_find(root: str) -> None:
    subprocess.run(["find", root, "-mindepth", "1", "-delete"], check=True)


def _wipe_rsync(root: str, empty: str) -> None:
    subprocess.run(["rsync", "-a", "--delete", f"{empty}/", f"{root}/"], check=True)


def _timed(fn: Callable[[], None], root: str) -> float:
    subprocess.run(["sync"], check=False)
    t0 = time.monotonic()
    fn()
    elapsed = time.monotonic() - t0
    left = os.listdir(root)
    if left:
        raise RuntimeError(f"{root} not empty after wipe: {left[:5]}")
    os.rmdir(root)
    return elapsed


def compare(shape: Shape, mnt: Path, empty: str, workers: int, rounds: int) -> dict[str, float]:
    """Time the three contenders on identical trees; median over ``rounds``.

    The machine is shared, so each round first builds all three trees and then times the
    contenders back to back (rotating the order between rounds): they see the same load.
    """
    contenders: dict[str, Callable[[str], None]] = {
        "wipe": lambda r: _wipe_ours(r, workers),
        "find": _wipe_find,
        "rsync": lambda r: _wipe_rsync(r, empty),
    }
    labels = list(contenders)
    times: dict[str, list[float]] = {label: [] for label in labels}
    for rnd in range(rounds):
        order = labels[rnd % len(labels) :] + labels[: rnd % len(labels)]
        roots = {label: str(mnt / f"{shape.name}-{label}") for label in order}
        built = sum(build(shape, roots[label]) for label in order)
        print(f"  {shape.name}: built 3 x {shape.files} files in {built:.1f}s", flush=True)
        for label in order:
            root = roots[label]
            seconds = _timed(lambda fn=contenders[label], root=root: fn(root), root)  # type: ignore[misc]
            times[label].append(seconds)
            print(
                f"  {shape.name:5} {label:5} removed {shape.files} files in {seconds:6.2f}s "
                f"= {shape.files / seconds:8.0f} files/s",
                flush=True,
            )
    out: dict[str, float] = {}
    for label in labels:
        seconds = statistics.median(times[label])
        out[f"{label}_s"] = seconds
        out[f"{label}_files_per_s"] = shape.files / seconds
    out["ratio_vs_find"] = out["find_s"] / out["wipe_s"]
    return out


def peak_rss_mib(mnt: Path, files: int) -> float:
    """Peak RSS of a child process that wipes a wide tree of ``files`` files."""
    dirs = max(1, files // 100)
    shape = Shape(f"rss{files}", dirs, files // dirs, "wide")
    root = str(mnt / shape.name)
    build(shape, root)
    code = "import sys; from recycler_job.wipe import wipe_tree; wipe_tree(sys.argv[1])"
    proc = subprocess.Popen([sys.executable, "-c", code, root], cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"wipe child failed with {proc.returncode}")
    os.rmdir(root)
    return usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def sweep(mnt: Path, counts: list[int], quick: bool) -> None:
    shape = shapes(quick)[0]
    for workers in counts:
        root = str(mnt / f"sweep{workers}")
        build(shape, root)
        seconds = _timed(lambda root=root, w=workers: _wipe_ours(root, w), root)  # type: ignore[misc]
        print(f"  workers={workers:3}: {shape.files / seconds:8.0f} files/s", flush=True)


def run(quick: bool, sweep_counts: list[int] | None = None, rounds: int = 1) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with scratch_volume() as mnt, tempfile.TemporaryDirectory() as empty:
        if sweep_counts:
            print("worker sweep (wide tree):")
            sweep(mnt, sweep_counts, quick)
        per_shape: dict[str, dict[str, float]] = {}
        print(f"wipe_tree (workers={DEFAULT_WORKERS}) vs find -delete vs rsync --delete:")
        for shape in shapes(quick):
            per_shape[shape.name] = compare(shape, mnt, empty, DEFAULT_WORKERS, rounds)
        small, big = (2_000, 20_000) if quick else (10_000, 200_000)
        rss_small = peak_rss_mib(mnt, small)
        rss_big = peak_rss_mib(mnt, big)
    print()
    print(f"{'shape':6} {'wipe f/s':>10} {'find f/s':>10} {'rsync f/s':>10} {'wipe/find':>10}")
    for name, r in per_shape.items():
        print(
            f"{name:6} {r['wipe_files_per_s']:10.0f} {r['find_files_per_s']:10.0f} "
            f"{r['rsync_files_per_s']:10.0f} {r['ratio_vs_find']:10.2f}"
        )
    print(f"peak RSS of wipe: {rss_small:.1f} MiB on {small} files, {rss_big:.1f} MiB on {big}")
    wide = per_shape["wide"]
    results.update(
        {
            "wipe_files_per_s": round(wide["wipe_files_per_s"], 1),
            "find_delete_files_per_s": round(wide["find_files_per_s"], 1),
            "rsync_files_per_s": round(wide["rsync_files_per_s"], 1),
            "wipe_ratio_vs_find": round(wide["ratio_vs_find"], 3),
            "wipe_peak_rss_mib_10k": round(rss_small, 1),
            "wipe_peak_rss_mib_200k": round(rss_big, 1),
            "wipe_default_workers": DEFAULT_WORKERS,
            "wipe_bench_quick": quick,
            "wipe_bench_rounds": rounds,
        }
    )
    for name in ("deep", "large"):
        r = per_shape[name]
        results[f"wipe_{name}_files_per_s"] = round(r["wipe_files_per_s"], 1)
        results[f"find_delete_{name}_files_per_s"] = round(r["find_files_per_s"], 1)
        results[f"rsync_{name}_files_per_s"] = round(r["rsync_files_per_s"], 1)
        results[f"wipe_{name}_ratio_vs_find"] = round(r["ratio_vs_find"], 3)
    return results


def merge_results(new: dict[str, Any], path: Path = RESULTS) -> dict[str, Any]:
    """Update ``path`` (JSON object) with ``new``, keeping keys other benchmarks wrote."""
    merged: dict[str, Any] = {}
    if path.exists():
        merged = json.loads(path.read_text())
    merged.update(new)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.wipe", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller trees (smoke run)")
    parser.add_argument("--sweep", help="comma-separated worker counts to time first")
    parser.add_argument("--rounds", type=int, default=1, help="median over this many rounds")
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.sweep.split(",")] if args.sweep else None
    results = run(args.quick, counts, args.rounds)
    print(json.dumps(results, indent=2, sort_keys=True))
    if not args.no_write:
        merge_results(results)
        print(f"merged into {RESULTS}")
    return results


if __name__ == "__main__":
    main()
