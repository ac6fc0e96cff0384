"""Both wipe backends against the tools an admin would use, on identical trees, 3+ rounds.

    .venv/bin/python -m bench.wipe [--quick] [--modes latency[,loopback]] [--rounds N]
                                   [--sweep 8,16,32] [--no-rss] [--no-write]

Needs root, /dev/fuse and glusterd (tests/sandbox/gluster.py starts it when it is not running,
and removes every volume and mount it made, also on failure). Per mode, one one-brick scratch
volume on this machine:

* ``latency`` (the default, the headline figures): the brick loads the ``debug/delay-gen``
  translator, which delays every UNLINK, LOOKUP, OPENDIR, READDIRP and RMDIR by 2 ms
  (bench.common.LATENCY_OPTIONS, set before the volume starts): each of those is a round trip
  to a brick 2 ms away.
* ``loopback``: no delay; bricks and wipe share the machine's CPUs. The peak RSS runs (10,000
  and 200,000 files, both backends) always use a loopback volume.

Trees (built over gfapi, never on the brick; large files preallocated through a FUSE mount):
wide (directories of 50 files), deep (chains of directories, one file per level), one
directory, large (a few preallocated files of 128 MiB). Per tree and round, one identical tree
per contender is built, then the contenders run back to back, their order rotated every round:

* ``find DIR -mindepth 1 -delete``, ``rm -rf DIR``, ``rsync -a --delete EMPTY/ DIR/`` and
  ``find DIR -mindepth 1 -maxdepth 1 -print0 | xargs -0 -r -n1 -P16 rm -rf`` (16 in flight, one
  ``rm`` per top-level entry) on a FUSE mount of the volume with gluster's default options;
* ``fuse``: ``recycler_job.wipe.fuse.wipe_tree`` on a mount made with the options of the wipe's own
  mount (gluster/client_cache.py);
* ``gfapi``: ``GfapiVolume.wipe`` on a ``glfs_t`` of its own, ``glfs_init`` and ``glfs_fini``
  included;

each one process timed the same way, from fork to exit (the mounts exist before; the wipes'
interpreter start, and gfapi's init and fini are inside the time and also reported apart), with
the default number of workers (``WIPE_WORKERS``'s default in config/options.py). The load
average (/proc/loadavg) is recorded before each measurement, and ``gluster volume profile``
counts the fops the brick served for it. Per tree, the headline ratio is, per round, the best
tool's time over our backend's (the best of both; gfapi alone for the one directory), and the
median of the rounds with their spread (min, max) is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    LATENCY_US,
    RESULTS,
    default_wipe_workers,
    loadavg,
    merge_results,
    mode_options,
    run_child,
)
from recycler_job.gluster import client_cache
from recycler_job.wipe import gfapi
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle, new_volume_name
from tests.sandbox.requirements import gluster_unavailable_reason

TOOLS = ("find", "rm", "rsync", "xargs")  # what an admin would run
OURS = ("fuse", "gfapi")
CONTENDERS = (*TOOLS, *OURS)
DEFAULT_BACKEND = "fuse"  # recycler_job/config/options.py: Config.backend
BUILD_THREADS = 16
XARGS_PROCS = 16
MIN_ROUNDS = 3
MODES = ("latency", "loopback")
# The tree whose headline ratio is gfapi's alone (FUSE is serialized by the kernel there).
GFAPI_ONLY = ("one_dir",)
# Keys of the old method (one round, find only): dropped from results.json when writing.
STALE_PREFIXES = ("latency_", "loopback_", "wipe_bench_")
KEEP_PREFIXES = ("latency_parallel",)


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

    @property
    def directories(self) -> int:
        """Directories below the top (removed as well)."""
        if self.name == "wide":
            return self.dirs
        if self.name == "deep":
            return self.dirs * self.per
        return 0


def shapes(mode: str, quick: bool) -> list[Shape]:
    """The trees: sized so that three rounds of four serial tools fit in ``make bench``."""
    if quick:
        return [
            Shape("wide", 8, 25),
            Shape("deep", 4, 8),
            Shape("one_dir", 1, 300),
            Shape("large", 2, 16),
        ]
    return [
        Shape("wide", 64, 50),
        Shape("deep", 16, 25),
        Shape("one_dir", 1, 2000),
        Shape("large", 8, 128),
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
    """A file of ``mib`` MiB whose blocks the brick really allocates (freed at unlink), made
    in one request (``fallocate``) instead of writing them."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.posix_fallocate(fd, 0, mib << 20)
    finally:
        os.close(fd)


# ---- one mode ---------------------------------------------------------------------------


@dataclass
class Bench:
    """A scratch volume of one mode: its mounts, the tree builder, the wipe settings."""

    mode: str
    server: GlusterServer
    volume: GlusterVolumeHandle
    mount: str  # gluster's default mount options: the tools
    wipe_mount: str  # the options of the wipe's own mount: the FUSE backend
    build_mount: str  # large files are written here
    builder: Builder
    workers: int
    tmp: str

    def argv(self, contender: str, name: str, workers: int) -> list[str]:
        path = os.path.join(self.mount, name)
        if contender == "find":
            return ["find", path, "-mindepth", "1", "-delete"]
        if contender == "rm":
            return ["rm", "-rf", path]
        if contender == "rsync":
            empty = os.path.join(self.tmp, "empty")
            os.makedirs(empty, exist_ok=True)
            return ["rsync", "-a", "--delete", f"{empty}/", f"{path}/"]
        if contender == "xargs":
            script = (
                'find "$1" -mindepth 1 -maxdepth 1 -print0 | '
                f"xargs -0 -r -n1 -P{XARGS_PROCS} rm -rf"
            )
            return ["sh", "-c", script, "sh", path]
        child = [sys.executable, "-m", "bench.wipe_child"]
        if contender == "fuse":
            return [*child, "fuse", os.path.join(self.wipe_mount, name), str(workers)]
        log = os.path.join(self.tmp, "gfapi-wipe.log")
        return [*child, "gfapi", self.volume.name, self.server.host, name, str(workers), log]

    def timed(
        self, contender: str, name: str, shape: Shape, workers: int, *, fops: bool = True
    ) -> dict[str, Any]:
        """Wipe the tree ``name`` with ``contender`` (fork to exit); prove it gone or empty."""
        os.sync()
        if fops:
            self.server.profile_fops(self.volume)  # zero the counts
        load = loadavg()
        child = run_child(self.argv(contender, name, workers), timeout=1800)
        load_after = loadavg()
        if child.code != 0:
            raise RuntimeError(
                f"{contender} on {name} failed ({child.code}): {child.stderr[-2000:]}"
            )
        counts = self.server.profile_fops(self.volume) if fops else {}
        path = os.path.join(self.mount, name)
        if os.path.lexists(path):
            left = os.listdir(path)
            if left:
                raise RuntimeError(f"{path} not empty after {contender}: {left[:5]}")
            os.rmdir(path)
        elif contender != "rm":
            raise RuntimeError(f"{contender} removed {path} itself")
        removed = shape.files + shape.directories
        r: dict[str, Any] = {
            "seconds": round(child.seconds, 3),
            "files_per_s": round(shape.files / child.seconds, 1),
            "loadavg_1m": load,
            "loadavg_1m_after": load_after,
        }
        if fops:
            r["fops"] = counts
            r["fops_per_entry"] = round(sum(counts.values()) / max(1, removed), 3)
        if contender in OURS:
            own = json.loads(child.stdout.strip().splitlines()[-1])
            r["wipe_s"] = round(float(own["seconds"]), 3)
            r["wipe_files_per_s"] = round(shape.files / max(own["seconds"], 1e-6), 1)
            r["peak_rss_mib"] = round(child.peak_rss_mib, 1)
            for key in ("init_s", "fini_s"):
                if key in own:
                    r[key] = round(float(own[key]), 3)
        return r


@contextmanager
def bench_volume(mode: str, workers: int) -> Iterator[Bench]:
    server = GlusterServer()
    builder: Builder | None = None
    tmp = tempfile.mkdtemp(prefix="bench-wipe-")
    try:
        server.ensure_running()
        volume = server.create_volume(new_volume_name("grt-bench"), options=mode_options(mode))
        server.profile_start(volume)
        mount = server.fuse_mount(volume)
        wipe_mount = server.fuse_mount(
            volume, options=[client_cache.fuse_mount_option(volume.name)]
        )
        build_mount = server.fuse_mount(volume)
        builder = Builder(volume.name, server.host, os.path.join(tmp, "build.log"))
        yield Bench(mode, server, volume, mount, wipe_mount, build_mount, builder, workers, tmp)
    finally:
        try:
            if builder is not None:
                builder.close()
        finally:
            server.close()
            for entry in Path(tmp).iterdir():
                if entry.is_dir():
                    entry.rmdir()
                else:
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


def rotated(contenders: Sequence[str], rnd: int, rounds: int) -> list[str]:
    """The order of round ``rnd``: shifted so that each contender runs early and late."""
    n = len(contenders)
    shift = (rnd * max(1, n // max(1, rounds))) % n
    return [*contenders[shift:], *contenders[:shift]]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def round_ratios(runs: dict[str, list[dict[str, Any]]], ours: Sequence[str]) -> list[float]:
    """Per round: the best tool's time over the best of ``ours`` (same round)."""
    rounds = len(runs[TOOLS[0]])
    out = []
    for i in range(rounds):
        best_tool = min(runs[t][i]["seconds"] for t in TOOLS)
        best_ours = min(runs[c][i]["seconds"] for c in ours)
        out.append(best_tool / best_ours)
    return out


def best_tool(runs: dict[str, list[dict[str, Any]]], rnd: int) -> str:
    """The fastest tool of round ``rnd``."""
    return min(TOOLS, key=lambda t: float(runs[t][rnd]["seconds"]))


def compare(bench: Bench, shape: Shape, rounds: int) -> dict[str, Any]:
    """Every contender on identical trees, ``rounds`` rotated rounds."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    for rnd in range(rounds):
        order = rotated(CONTENDERS, rnd, rounds)
        started = time.monotonic()
        for c in order:
            bench.builder.build(shape, f"{shape.name}-{c}-{rnd}", bench.build_mount)
        built = time.monotonic() - started
        print(
            f"  {bench.mode} {shape.name}: built {len(order)} x {shape.files} files "
            f"in {built:.1f}s; order {' '.join(order)}",
            flush=True,
        )
        for c in order:
            r = bench.timed(c, f"{shape.name}-{c}-{rnd}", shape, bench.workers)
            runs[c].append(r)
            extra = ""
            if "wipe_s" in r:
                extra = f" (wipe {r['wipe_s']:.2f}s"
                extra += (
                    f", init {r['init_s']:.2f}s, fini {r['fini_s']:.2f}s)" if "init_s" in r else ")"
                )
            print(
                f"  {bench.mode:8} {shape.name:7} {c:5} {r['seconds']:7.2f}s "
                f"{r['files_per_s']:8.0f} files/s {r['fops_per_entry']:5.2f} fops/entry "
                f"(load {r['loadavg_1m']}){extra}",
                flush=True,
            )
    out: dict[str, Any] = {"files": shape.files, "dirs": shape.directories, "runs": runs}
    for c in CONTENDERS:
        out[c] = {
            "seconds": spread([r["seconds"] for r in runs[c]]),
            "fops_per_entry": spread([r["fops_per_entry"] for r in runs[c]]),
            "loadavg_1m": [r["loadavg_1m"] for r in runs[c]],
        }
    for c in OURS:
        out[c]["wipe_s"] = spread([r["wipe_s"] for r in runs[c]])
        out[c]["ratio_vs_best"] = spread(round_ratios(runs, [c]))
    out["gfapi"]["init_s"] = spread([r["init_s"] for r in runs["gfapi"]])
    out["gfapi"]["fini_s"] = spread([r["fini_s"] for r in runs["gfapi"]])
    ours = ["gfapi"] if shape.name in GFAPI_ONLY else list(OURS)
    out["ratio_vs_best"] = spread(round_ratios(runs, ours))
    out["best_tool_per_round"] = [best_tool(runs, i) for i in range(rounds)]
    return out


def sweep(bench: Bench, counts: list[int]) -> dict[str, Any]:
    """Files/s of both backends on the wide tree for several worker counts (one tree each)."""
    shape = shapes(bench.mode, quick=False)[0]
    found: dict[str, Any] = {}
    for workers in counts:
        for c in OURS:
            name = f"sweep-{c}-{workers}"
            bench.builder.build(shape, name, bench.build_mount)
            r = bench.timed(c, name, shape, workers)
            found[f"{c}_w{workers}_wipe_files_per_s"] = r["wipe_files_per_s"]
            rate = r["wipe_files_per_s"]
            print(f"  {bench.mode} sweep {c:5} workers={workers:3}: {rate:8.0f} files/s")
    return found


def peak_rss(bench: Bench, files: int, backends: tuple[str, ...]) -> dict[str, float]:
    """Peak RSS of each backend wiping a wide tree of ``files`` files."""
    shape = Shape("wide", max(1, files // 100), 100)
    found: dict[str, float] = {}
    for c in backends:
        name = f"rss-{c}-{files}"
        bench.builder.build(shape, name, bench.build_mount)
        r = bench.timed(c, name, shape, bench.workers, fops=False)
        found[c] = r["peak_rss_mib"]
        print(
            f"  peak RSS {c:5} on {shape.files} files: {r['peak_rss_mib']} MiB "
            f"(load {r['loadavg_1m']})",
            flush=True,
        )
    return found


def headline(mode: str, shape: str, r: dict[str, Any], results: dict[str, Any]) -> None:
    """The flat keys of one tree."""
    key = f"{mode}_{shape}"
    results[f"{key}_ratio_vs_best"] = r["ratio_vs_best"]["median"]
    results[f"{key}_ratio_vs_best_spread"] = [r["ratio_vs_best"]["min"], r["ratio_vs_best"]["max"]]
    results[f"{key}_best_tool"] = r["best_tool_per_round"]
    loads = [x for c in CONTENDERS for x in r[c]["loadavg_1m"]]
    results[f"{key}_loadavg_1m"] = [min(loads), max(loads)]
    files = r["files"]
    for c in CONTENDERS:
        results[f"{key}_{c}_s"] = r[c]["seconds"]["median"]
        results[f"{key}_{c}_files_per_s"] = round(files / r[c]["seconds"]["median"], 1)
        results[f"{key}_{c}_fops_per_entry"] = r[c]["fops_per_entry"]["median"]
    for c in OURS:
        results[f"{key}_{c}_ratio_vs_best"] = r[c]["ratio_vs_best"]["median"]
        results[f"{key}_{c}_wipe_files_per_s"] = round(files / r[c]["wipe_s"]["median"], 1)
    results[f"{key}_gfapi_init_s"] = r["gfapi"]["init_s"]["median"]
    results[f"{key}_gfapi_fini_s"] = r["gfapi"]["fini_s"]["median"]


def run(
    modes: list[str],
    quick: bool,
    rounds: int,
    sweep_counts: list[int] | None,
    rss: bool,
) -> dict[str, Any]:
    reason = gluster_unavailable_reason()
    if reason:
        raise SystemExit(f"bench.wipe: {reason}")
    workers = default_wipe_workers()
    results: dict[str, Any] = {
        "wipe_bench_workers": workers,
        "wipe_bench_quick": quick,
        "wipe_bench_rounds": rounds,
        "wipe_bench_contenders": list(CONTENDERS),
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
                headline(mode, shape.name, r, results)
    if "latency_wide_fuse_fops_per_entry" in results:
        limits(results, workers)
    if rss:
        small, big = (1_000, 10_000) if quick else (10_000, 200_000)
        with bench_volume("loopback", workers) as bench:
            low = peak_rss(bench, small, OURS)
            high = peak_rss(bench, big, OURS)
        results["wipe_rss_files"] = [small, big]
        results["wipe_peak_rss_mib_10k"] = low[DEFAULT_BACKEND]
        results["wipe_peak_rss_mib_200k"] = high[DEFAULT_BACKEND]
        results["gfapi_wipe_peak_rss_mib_10k"] = low["gfapi"]
        results["gfapi_wipe_peak_rss_mib_200k"] = high["gfapi"]
        results["wipe_peak_rss_growth_mib"] = round(max(high[c] - low[c] for c in OURS), 1)
    results["wipe_detail"] = detail
    return results


def limits(results: dict[str, Any], workers: int) -> None:
    """The throughput limit of ``workers`` requests in flight at the measured fops per file,
    and how close the best backend's own wipe time (start-up excluded) comes to it."""
    best = max(OURS, key=lambda c: results[f"latency_wide_{c}_wipe_files_per_s"])
    fops = results[f"latency_wide_{best}_fops_per_entry"]
    limit = workers / (fops * LATENCY_US / 1e6)
    results["latency_limit_files_per_s"] = round(limit)
    results["latency_limit_fops_per_entry"] = fops
    results["latency_limit_backend"] = best
    rate = results[f"latency_wide_{best}_wipe_files_per_s"]
    results["latency_wide_fraction_of_limit"] = round(rate / limit, 3)
    per_file = [
        results[f"latency_{shape}_{c}_fops_per_entry"]
        for shape in ("wide", "one_dir")
        for c in OURS
        if f"latency_{shape}_{c}_fops_per_entry" in results
    ]
    results["brick_fops_per_file"] = max(per_file)


def summary(results: dict[str, Any]) -> list[str]:
    lines = [
        f"{'mode':8} {'tree':8} "
        + " ".join(f"{c + ' s':>8}" for c in CONTENDERS)
        + f" {'vs best':>8} {'spread':>13} {'load':>11}"
    ]
    for mode in MODES:
        for shape in ("wide", "deep", "one_dir", "large"):
            key = f"{mode}_{shape}"
            if f"{key}_ratio_vs_best" not in results:
                continue
            lo, hi = results[f"{key}_ratio_vs_best_spread"]
            la, lb = results[f"{key}_loadavg_1m"]
            lines.append(
                f"{mode:8} {shape:8} "
                + " ".join(f"{results[f'{key}_{c}_s']:8.2f}" for c in CONTENDERS)
                + f" {results[f'{key}_ratio_vs_best']:8.2f} {f'{lo:.2f}-{hi:.2f}':>13}"
                + f" {f'{la:.1f}-{lb:.1f}':>11}"
            )
    return lines


def stale_keys(path: Path = RESULTS) -> list[str]:
    """Keys of the old method still in results.json (another benchmark's are kept)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [k for k in old if k.startswith(STALE_PREFIXES) and not k.startswith(KEEP_PREFIXES)] + [
        "gfapi_wipe_peak_rss_note"
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.wipe", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller trees (smoke run)")
    parser.add_argument("--modes", default="latency", help="latency,loopback")
    parser.add_argument(
        "--rounds", type=int, default=MIN_ROUNDS, help="rotated rounds (median, spread)"
    )
    parser.add_argument("--sweep", help="comma list of worker counts to time first (wide tree)")
    parser.add_argument("--no-rss", action="store_true", help="skip the 10k/200k RSS runs")
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES):
        parser.error(f"unknown mode(s) in {args.modes!r}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    counts = [int(x) for x in args.sweep.split(",")] if args.sweep else None
    results = run(modes, args.quick, args.rounds, counts, not args.no_rss)
    print()
    for line in summary(results):
        print(line)
    if not args.no_write:
        merge_results(results, drop=stale_keys())
    return results


if __name__ == "__main__":
    main()
