"""The wipe of both backends against `find -delete`, on identical trees, with and without latency.

    .venv/bin/python -m bench.wipe [--quick] [--modes latency,loopback] [--rounds N]
                                   [--sweep 8,16,32] [--no-rss] [--no-write]

Needs root, /dev/fuse and glusterd (tests/sandbox/gluster.py starts it when it is not running,
and removes every volume and mount it made, also on failure). Per mode, one one-brick scratch
volume on this machine:

* ``latency``: the brick loads the ``debug/delay-gen`` translator, which delays every UNLINK,
  LOOKUP, OPENDIR, READDIRP and RMDIR by 2 ms (bench.common.LATENCY_OPTIONS, set before the
  volume starts): each of those is a round trip to a brick 2 ms away. The headline figures.
* ``loopback``: no delay; bricks and wipe share the machine's CPUs.

Trees (built over gfapi, never on the brick; large files through a FUSE mount): wide (many
directories of 100 files), deep (chains of directories, one file per level), one directory
(20,000 files in one directory), large (a few files of many MiB). Per tree and round, three
identical trees are built, then timed back to back, the order rotating between rounds:

* ``find DIR -mindepth 1 -delete`` on a FUSE mount of the volume (the baseline),
* ``fuse``: ``recycler_job.wipe.wipe_tree`` on that mount,
* ``gfapi``: ``GfapiVolume.wipe`` on a ``glfs_t`` of its own,

each wipe in a child process (its time excludes the interpreter's start, ``glfs_init`` and
``glfs_fini``; its peak RSS comes from GNU time), with the default number of workers
(``WIPE_WORKERS``'s default in recycler_job/config.py). Every figure is a ratio to the
``find -delete`` of the same round plus files/s. Then (loopback) the peak RSS of both backends
wiping 10,000 files and of the default backend (``--rss-backends``) wiping 200,000.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    LATENCY_US,
    MODES,
    default_wipe_workers,
    loadavg,
    merge_results,
    mode_options,
    run_child,
)
from recycler_job import gfapi
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle, new_volume_name
from tests.sandbox.requirements import gluster_unavailable_reason

CONTENDERS = ("find", "fuse", "gfapi")
DEFAULT_BACKEND = "fuse"  # recycler_job/config.py: Config.backend
BUILD_THREADS = 16
# Keys earlier versions of this benchmark wrote; replaced by the per-mode keys.
STALE_KEYS = (
    "wipe_files_per_s",
    "find_delete_files_per_s",
    "rsync_files_per_s",
    "wipe_ratio_vs_find",
    "wipe_default_workers",
    "wipe_bench_quick",
    "wipe_bench_rounds",
    *(
        f"{prefix}_{shape}_{what}"
        for prefix in ("wipe", "find_delete", "rsync")
        for shape in ("deep", "large")
        for what in ("files_per_s", "ratio_vs_find")
    ),
)


@dataclass(frozen=True)
class Shape:
    name: str  # wide | deep | one_dir | large
    dirs: int  # wide: directories; deep: chains; large: files
    per: int  # wide, one_dir: files per directory; deep: levels per chain; large: MiB per file

    @property
    def files(self) -> int:
        if self.name == "large":
            return self.dirs
        if self.name == "one_dir":
            return self.per
        return self.dirs * self.per


def shapes(mode: str, quick: bool) -> list[Shape]:
    """The trees of a mode: sized so that ``find -delete`` takes seconds, not minutes, except
    the one directory of 20,000 files the target names."""
    if quick:
        if mode == "latency":
            return [Shape("wide", 10, 100), Shape("deep", 3, 20), Shape("one_dir", 1, 1000)]
        return [
            Shape("wide", 20, 100),
            Shape("deep", 3, 50),
            Shape("one_dir", 1, 2000),
            Shape("large", 2, 32),
        ]
    if mode == "latency":
        return [
            Shape("wide", 100, 100),
            Shape("deep", 10, 50),
            Shape("one_dir", 1, 20_000),
            Shape("large", 4, 64),  # only unlinks are delayed: the size does not matter here
        ]
    return [
        Shape("wide", 100, 100),
        Shape("deep", 10, 50),
        Shape("one_dir", 1, 10_000),  # find and the FUSE wipe both take 20 s per 10,000
        Shape("large", 4, 256),
    ]


# ---- building trees ---------------------------------------------------------------------


class Builder:
    """Builds trees over one gfapi connection with a pool of threads (empty files)."""

    def __init__(self, volume: str, host: str, log_file: str) -> None:
        self.vol = gfapi.Volume(volume, [host], log_file)
        gfapi.as_root()
        self.root, _ = self.vol.root()

    def close(self) -> None:
        self.root.close()
        self.vol.close()

    def _files(self, parent: gfapi.Handle, names: list[bytes]) -> None:
        gfapi.as_root()
        for name in names:
            handle, _ = self.vol.create(parent, name)
            handle.close()

    def _wide_dir(self, top: gfapi.Handle, d: int, per: int) -> None:
        gfapi.as_root()
        sub, _ = self.vol.mkdir(top, b"d%04d" % d)
        try:
            self._files(sub, [b"f%04d" % i for i in range(per)])
        finally:
            sub.close()

    def _chain(self, top: gfapi.Handle, c: int, levels: int) -> None:
        gfapi.as_root()
        handle, _ = self.vol.mkdir(top, b"c%03d" % c)
        for level in range(levels):
            self._files(handle, [b".f%d" % level])
            if level + 1 < levels:
                child, _ = self.vol.mkdir(handle, b"d")
                handle.close()
                handle = child
        handle.close()

    def build(self, shape: Shape, name: str, mount: str) -> None:
        top, _ = self.vol.mkdir(self.root, name.encode())
        try:
            with ThreadPoolExecutor(BUILD_THREADS) as pool:
                if shape.name == "wide":
                    jobs = [
                        pool.submit(self._wide_dir, top, d, shape.per) for d in range(shape.dirs)
                    ]
                elif shape.name == "deep":
                    jobs = [pool.submit(self._chain, top, c, shape.per) for c in range(shape.dirs)]
                elif shape.name == "one_dir":
                    names = [b"f%05d" % i for i in range(shape.per)]
                    jobs = [
                        pool.submit(self._files, top, names[t::BUILD_THREADS])
                        for t in range(BUILD_THREADS)
                    ]
                else:
                    jobs = [
                        pool.submit(_write_large, os.path.join(mount, name, f"big{i}"), shape.per)
                        for i in range(shape.dirs)
                    ]
                for job in jobs:
                    job.result()
        finally:
            top.close()


def _write_large(path: str, mib: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(chunk)


# ---- one mode ---------------------------------------------------------------------------


@dataclass
class Bench:
    """A scratch volume of one mode: its FUSE mount, the tree builder, the wipe settings."""

    mode: str
    server: GlusterServer
    volume: GlusterVolumeHandle
    mount: str
    build_mount: str  # large files are written here and dropped from its cache afterwards
    builder: Builder
    workers: int
    tmp: str

    def wipe_argv(self, contender: str, name: str, workers: int) -> list[str]:
        path = os.path.join(self.mount, name)
        if contender == "find":
            return ["find", path, "-mindepth", "1", "-delete"]
        child = [sys.executable, "-m", "bench.wipe_child"]
        if contender == "fuse":
            return [*child, "fuse", path, str(workers)]
        log = os.path.join(self.tmp, "gfapi-wipe.log")
        return [*child, "gfapi", self.volume.name, self.server.host, name, str(workers), log]

    def timed(self, contender: str, name: str, files: int, workers: int) -> dict[str, Any]:
        """Wipe the tree ``name`` with ``contender``; prove it empty; remove its top."""
        os.sync()
        load = loadavg()
        child = run_child(self.wipe_argv(contender, name, workers), timeout=1800)
        if child.code != 0:
            raise RuntimeError(
                f"{contender} on {name} failed ({child.code}): {child.stderr[-2000:]}"
            )
        seconds = child.seconds
        if contender != "find":
            seconds = float(json.loads(child.stdout.strip().splitlines()[-1])["seconds"])
        path = os.path.join(self.mount, name)
        left = os.listdir(path)
        if left:
            raise RuntimeError(f"{path} not empty after {contender}: {left[:5]}")
        os.rmdir(path)
        return {
            "seconds": round(seconds, 3),
            "files_per_s": round(files / seconds, 1),
            "peak_rss_mib": round(child.peak_rss_mib, 1) if contender != "find" else None,
            "loadavg_1m": load,
        }


@contextmanager
def bench_volume(mode: str, workers: int) -> Iterator[Bench]:
    server = GlusterServer()
    builder: Builder | None = None
    tmp = tempfile.mkdtemp(prefix="bench-wipe-")
    try:
        server.ensure_running()
        volume = server.create_volume(new_volume_name("grt-bench"), options=mode_options(mode))
        mount = server.fuse_mount(volume)
        build_mount = server.fuse_mount(volume)
        builder = Builder(volume.name, server.host, os.path.join(tmp, "build.log"))
        yield Bench(mode, server, volume, mount, build_mount, builder, workers, tmp)
    finally:
        try:
            if builder is not None:
                builder.close()
        finally:
            server.close()
            for entry in Path(tmp).iterdir():
                entry.unlink()
            os.rmdir(tmp)


def probe_lookup_ms(bench: Bench, count: int = 50) -> float:
    """Mean time of a lookup of a missing name, one at a time: the modelled round trip."""
    gfapi.as_root()
    started = time.monotonic()
    for i in range(count):
        try:
            handle, _ = bench.builder.vol.lookup(bench.builder.root, b"missing-%d" % i)
            handle.close()
        except gfapi.GfapiError:
            pass
    return (time.monotonic() - started) / count * 1000


def compare(bench: Bench, shape: Shape, rounds: int) -> dict[str, Any]:
    """The three contenders on identical trees; medians over ``rounds``."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    for rnd in range(rounds):
        order = list(CONTENDERS[rnd % 3 :] + CONTENDERS[: rnd % 3])
        started = time.monotonic()
        for c in order:
            bench.builder.build(shape, f"{shape.name}-{c}-{rnd}", bench.build_mount)
        if shape.name == "large":  # the timing mount must not hold the written pages
            bench.server.fuse_unmount(bench.build_mount)
            bench.build_mount = bench.server.fuse_mount(bench.volume)
        built = time.monotonic() - started
        print(
            f"  {bench.mode} {shape.name}: built 3 x {shape.files} files in {built:.1f}s",
            flush=True,
        )
        for c in order:
            r = bench.timed(c, f"{shape.name}-{c}-{rnd}", shape.files, bench.workers)
            runs[c].append(r)
            print(
                f"  {bench.mode:8} {shape.name:7} {c:5} {r['seconds']:7.2f}s "
                f"{r['files_per_s']:8.0f} files/s  (load {r['loadavg_1m']})",
                flush=True,
            )
    out: dict[str, Any] = {"files": shape.files, "runs": runs}
    find_s = statistics.median(r["seconds"] for r in runs["find"])
    for c in CONTENDERS:
        seconds = statistics.median(r["seconds"] for r in runs[c])
        out[f"{c}_s"] = round(seconds, 3)
        out[f"{c}_files_per_s"] = round(shape.files / seconds, 1)
        out[f"{c}_ratio_vs_find"] = round(find_s / seconds, 3)
    return out


def sweep(bench: Bench, counts: list[int]) -> dict[str, Any]:
    """Files/s of both backends on the wide tree for several worker counts (one tree each)."""
    shape = shapes(bench.mode, quick=False)[0]
    found: dict[str, Any] = {}
    for workers in counts:
        for c in ("fuse", "gfapi"):
            name = f"sweep-{c}-{workers}"
            bench.builder.build(shape, name, bench.build_mount)
            r = bench.timed(c, name, shape.files, workers)
            found[f"{c}_w{workers}_files_per_s"] = r["files_per_s"]
            rate = r["files_per_s"]
            print(f"  {bench.mode} sweep {c:5} workers={workers:3}: {rate:8.0f} files/s")
    return found


def peak_rss(bench: Bench, files: int, backends: tuple[str, ...]) -> dict[str, float]:
    """Peak RSS of each backend wiping a wide tree of ``files`` files."""
    shape = Shape("wide", max(1, files // 100), 100)
    found: dict[str, float] = {}
    for c in backends:
        name = f"rss-{c}-{files}"
        bench.builder.build(shape, name, bench.build_mount)
        r = bench.timed(c, name, shape.files, bench.workers)
        found[c] = r["peak_rss_mib"]
        print(f"  peak RSS {c:5} on {shape.files} files: {r['peak_rss_mib']} MiB", flush=True)
    return found


def run(
    modes: list[str],
    quick: bool,
    rounds: int,
    sweep_counts: list[int] | None,
    rss: bool,
    rss_backends: tuple[str, ...] = (DEFAULT_BACKEND,),
) -> dict[str, Any]:
    reason = gluster_unavailable_reason()
    if reason:
        raise SystemExit(f"bench.wipe: {reason}")
    workers = default_wipe_workers()
    results: dict[str, Any] = {
        "wipe_bench_workers": workers,
        "wipe_bench_quick": quick,
        "wipe_bench_rounds": rounds,
        "latency_us_per_fop": LATENCY_US,
    }
    detail: dict[str, Any] = {}
    for mode in modes:
        with bench_volume(mode, workers) as bench:
            probe = probe_lookup_ms(bench)
            results[f"{mode}_probe_lookup_ms"] = round(probe, 2)
            print(f"== {mode}: one lookup of a missing name takes {probe:.2f} ms", flush=True)
            if sweep_counts:
                results[f"{mode}_sweep"] = sweep(bench, sweep_counts)
            for shape in shapes(mode, quick):
                r = compare(bench, shape, rounds)
                detail[f"{mode}_{shape.name}"] = r
                for c in ("fuse", "gfapi"):
                    results[f"{mode}_{shape.name}_{c}_ratio_vs_find"] = r[f"{c}_ratio_vs_find"]
                for c in CONTENDERS:
                    results[f"{mode}_{shape.name}_{c}_files_per_s"] = r[f"{c}_files_per_s"]
                results[f"{mode}_{shape.name}_ratio_vs_find"] = r[
                    f"{DEFAULT_BACKEND}_ratio_vs_find"
                ]
                for c in ("fuse", "gfapi"):
                    rss_each = [x["peak_rss_mib"] for x in r["runs"][c]]
                    key = f"{mode}_peak_rss_mib_max_{c}"
                    results[key] = max([results.get(key, 0.0), *rss_each])
            if rss and mode == "loopback":
                small, big = (1_000, 10_000) if quick else (10_000, 200_000)
                # 200,000 files take minutes to build and wipe: the big tree for the
                # backends in rss_backends only (the default backend by default).
                low = peak_rss(bench, small, ("fuse", "gfapi"))
                high = peak_rss(bench, big, rss_backends)
                results["wipe_rss_files"] = [small, big]
                results["wipe_peak_rss_mib_10k"] = low[DEFAULT_BACKEND]
                results["gfapi_wipe_peak_rss_mib_10k"] = low["gfapi"]
                for c, value in high.items():
                    prefix = "" if c == DEFAULT_BACKEND else f"{c}_"
                    results[f"{prefix}wipe_peak_rss_mib_200k"] = value
    limit = workers / (LATENCY_US / 1e6)
    results["latency_limit_files_per_s"] = round(limit)
    for c in ("fuse", "gfapi"):
        for shape_name in ("wide", "one_dir"):
            rate = results.get(f"latency_{shape_name}_{c}_files_per_s")
            cpu = results.get(f"loopback_{shape_name}_{c}_files_per_s")
            if rate is None:
                continue
            results[f"latency_{shape_name}_{c}_fraction_of_limit"] = round(rate / limit, 3)
            if cpu:
                results[f"latency_{shape_name}_{c}_fraction_of_loopback"] = round(rate / cpu, 3)
    if "latency_wide_fuse_fraction_of_limit" in results:
        results["latency_fraction_of_limit"] = results[
            f"latency_wide_{DEFAULT_BACKEND}_fraction_of_limit"
        ]
    results["wipe_detail"] = detail
    return results


def summary(results: dict[str, Any]) -> list[str]:
    lines = [
        f"{'mode':8} {'tree':8} {'find f/s':>9} {'fuse f/s':>9} {'gfapi f/s':>9} "
        f"{'fuse/find':>9} {'gfapi/find':>10}"
    ]
    for mode in MODES:
        for shape in ("wide", "deep", "one_dir", "large"):
            key = f"{mode}_{shape}"
            if f"{key}_find_files_per_s" not in results:
                continue
            lines.append(
                f"{mode:8} {shape:8} {results[f'{key}_find_files_per_s']:9.0f} "
                f"{results[f'{key}_fuse_files_per_s']:9.0f} "
                f"{results[f'{key}_gfapi_files_per_s']:9.0f} "
                f"{results[f'{key}_fuse_ratio_vs_find']:9.2f} "
                f"{results[f'{key}_gfapi_ratio_vs_find']:10.2f}"
            )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.wipe", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller trees (smoke run)")
    parser.add_argument("--modes", default=",".join(MODES), help="latency,loopback")
    parser.add_argument("--rounds", type=int, default=1, help="median over this many rounds")
    parser.add_argument("--sweep", help="comma list of worker counts to time first (wide tree)")
    parser.add_argument("--no-rss", action="store_true", help="skip the 10k/200k RSS runs")
    parser.add_argument(
        "--rss-backends", default=DEFAULT_BACKEND, help="backends wiping 200k files: fuse,gfapi"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES):
        parser.error(f"unknown mode(s) in {args.modes!r}")
    counts = [int(x) for x in args.sweep.split(",")] if args.sweep else None
    rss_backends = tuple(b.strip() for b in args.rss_backends.split(",") if b.strip())
    if set(rss_backends) - {"fuse", "gfapi"}:
        parser.error(f"unknown backend(s) in {args.rss_backends!r}")
    results = run(modes, args.quick, args.rounds, counts, not args.no_rss, rss_backends)
    print()
    for line in summary(results):
        print(line)
    if not args.no_write:
        merge_results(results, drop=STALE_KEYS)
    return results


if __name__ == "__main__":
    main()
