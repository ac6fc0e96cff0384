"""Does ``--parallel`` pay off? One pass over 8 real gluster volumes, ``--parallel 1`` vs 4.

    .venv/bin/python -m bench.parallel [--modes latency[,loopback]] [--volumes 8] [--files 8000]
                                       [--workers N] [--rounds 3] [--quick] [--no-write]

Needs root, /dev/fuse and glusterd (tests/sandbox/gluster.py starts it when it is not running).
Starts a sandbox control plane; per mode (``latency``: the bricks delay each UNLINK, LOOKUP,
OPENDIR, READDIRP and RMDIR by 2 ms, see bench.wipe; ``loopback``: no delay) creates
``--volumes`` one-brick scratch volumes, then for each pass:

1. fills every volume with ``--files`` empty files (50 directories) over gfapi, in a child
   process that is gone (and its connections with it) before the pass;
2. creates one PV per volume as a released Recycle PV looks after its claim was deleted
   (claimRef naming a missing claim, phase Failed "No recycler plugin found for the volume!"),
   labelled for this run only;
3. runs one real pass (``python -m recycler_job``, default backend, client check on,
   ``--min-age 0``, ``--gluster-hosts`` the harness's address with ``--gluster-hosts-only-pool``,
   ``--wipe-workers`` the default) and times it from fork to exit.

Each pass gets identical, freshly filled volumes, large enough (8,000 files) that every wipe
at ``--parallel 1`` outlasts two rounds of its watcher (the client check's ``gluster volume
status`` runs once a second), as every wipe at ``--parallel 4`` does. The ratio is the wall
time of the ``--parallel 1`` pass divided by that of the ``--parallel 4`` pass of the same
round. The first mode (the headline, ``latency_parallel_ratio``) runs ``--rounds`` rounds
(3), the order alternated each round (1, 4 / 4, 1 / 1, 4) so that a load drifting on a shared
machine favours neither side; the median and the spread (min-max) of the per-round ratios are
reported, with the 1-minute load average before each pass. Other modes run one round.

As in bench.scale, the kube-controller-manager is stopped first: the PVs are written in their
final state through the status subresource and nothing else touches them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    MODES,
    cpu_ticks,
    default_wipe_workers,
    loadavg,
    merge_results,
    mode_options,
    pids_matching,
    process_cpu_s,
    run_child,
)
from bench.scale import NOT_OURS, RawApi, child_env, stop_controller_manager
from bench.wipe import spread
from recycler_job import watch
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle, new_volume_name
from tests.sandbox.requirements import gluster_unavailable_reason

DIRS = 50


def fill(server: GlusterServer, volumes: list[GlusterVolumeHandle], files: int, tmp: Path) -> float:
    """Create ``files`` empty files (50 directories) in each volume over gfapi, in a child
    process whose connections are gone when it exits (the pass's client check must see none);
    returns seconds taken."""
    started = time.monotonic()
    per_dir = max(1, files // DIRS)
    argv = [sys.executable, "-m", "bench.wipe_child", "fill", server.host, str(DIRS)]
    argv += [str(per_dir), str(tmp), *(v.name for v in volumes)]
    child = run_child(argv, timeout=1800)
    if child.code != 0:
        raise RuntimeError(f"fill failed ({child.code}): {child.stderr[-2000:]}")
    deadline = time.monotonic() + 60
    for volume in volumes:  # the filler's connections must be gone before the pass
        while max(server.brick_connection_counts(volume.name), default=0) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{volume.name}: the filler's connections did not go")
            time.sleep(0.3)
    return time.monotonic() - started


def released_pvs(api: RawApi, volumes: list[GlusterVolumeHandle], tag: str) -> list[str]:
    """One Failed Recycle glusterfs PV per volume, its claim gone; labelled ``bench-run=tag``."""
    names = []
    for i, volume in enumerate(volumes):
        name = f"par-{tag}-{i}"
        api.request(
            "POST",
            "/api/v1/persistentvolumes",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"bench-run": tag}},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Recycle",
                    "storageClassName": "",
                    "glusterfs": {"endpoints": "glusterfs-cluster", "path": volume.name},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": "default",
                        "name": f"claim-{name}",
                        "uid": str(uuid.uuid4()),
                    },
                },
            },
        )
        api.merge_status(
            f"/api/v1/persistentvolumes/{name}", {"phase": "Failed", "message": NOT_OURS}
        )
        names.append(name)
    return names


def delete_pvs(api: RawApi, names: list[str]) -> None:
    """Remove a pass's PVs: the next pass's PVs name the same volumes, and a volume that
    another PV names is not recycled. (No controller runs to drop pv-protection.)"""
    for name in names:
        path = f"/api/v1/persistentvolumes/{name}"
        patch = {"metadata": {"finalizers": None}}
        api.request("PATCH", path, patch, "application/merge-patch+json", ok=(200, 404))
        api.request("DELETE", path, ok=(200, 202, 404))


class CpuSampler:
    """Samples, while a pass runs, the CPU time of the gluster processes serving ``names``:
    bricks (glusterfsd) and FUSE clients (glusterfs, alive only while mounted, so the last
    sample before each exits is kept: it may miss up to one interval of each). Also the
    machine's busy fraction over the pass (every process, other people's included)."""

    INTERVAL = 0.2

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.last: dict[int, tuple[str, float]] = {}
        self.first: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for pid in pids_matching(self.names):
            try:
                cmd = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            used = process_cpu_s([pid])
            self.first.setdefault(pid, used)
            self.last[pid] = (cmd, used)

    def _loop(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self.ticks = cpu_ticks()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy0, total0 = self.ticks
        busy1, total1 = cpu_ticks()
        self.machine_busy = (busy1 - busy0) / max(1, total1 - total0)

    def seconds(self, comm: str) -> float:
        """CPU seconds used during the pass by the sampled processes named ``comm``."""
        return sum(
            used - self.first[pid] for pid, (name, used) in self.last.items() if name == comm
        )


def one_pass(
    plane: ControlPlane,
    server: GlusterServer,
    tmp: Path,
    tag: str,
    volume_names: list[str],
    *,
    parallel: int,
    workers: int,
) -> dict[str, Any]:
    """One real pass over the PVs labelled ``tag``; wall time, CPU of every party."""
    report_path = tmp / f"report-{tag}.json"
    argv = [
        sys.executable,
        "-m",
        "recycler_job",
        "--kubeconfig",
        str(plane.kubeconfig),
        "--lease-namespace",
        "default",
        "--lease-name",
        "bench-parallel",
        "--selector",
        f"bench-run={tag}",
        "--min-age",
        "0",
        "--gluster-hosts",
        server.address,
        "--gluster-hosts-only-pool",  # the harness's glusterd is the only pool of these PVs
        "--mount-root",
        str(tmp / "mounts"),
        "--parallel",
        str(parallel),
        "--wipe-workers",
        str(workers),
        "--report-file",
        str(report_path),
    ]
    with CpuSampler(volume_names) as cpu:
        child = run_child(argv, env=child_env(tmp), timeout=1800)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    counts = report.get("counts") or {}
    if child.code != 0 or counts.get("recycled") != len(report.get("volumes") or [0]):
        print(child.stdout, child.stderr[-3000:], sep="\n", file=sys.stderr)
        raise RuntimeError(f"pass {tag} did not recycle everything: {report.get('summary')}")
    volumes = report["volumes"]
    wipe_s = [v["durations"].get("wipe", 0.0) for v in volumes]
    return {
        "seconds": round(child.seconds, 2),
        "peak_rss_mib": round(child.peak_rss_mib, 1),
        "files": sum(v["files"] for v in volumes),
        "wipe_s_each": wipe_s,
        "wipe_s_sum": round(sum(wipe_s), 2),
        "per_volume_total_s": [v["durations"].get("total", 0.0) for v in volumes],
        "durations_each": [v["durations"] for v in volumes],
        "recycler_cpu_s": round(child.cpu_s, 2),
        "bricks_cpu_s": round(cpu.seconds("glusterfsd"), 2),
        "fuse_clients_cpu_s": round(cpu.seconds("glusterfs"), 2),
        "machine_busy": round(cpu.machine_busy, 3),
    }


def run_mode(
    plane: ControlPlane,
    api: RawApi,
    server: GlusterServer,
    tmp: Path,
    mode: str,
    volume_count: int,
    files: int,
    workers: int,
    rounds: int,
) -> dict[str, Any]:
    """``rounds`` rounds of a ``--parallel 1`` and a ``--parallel 4`` pass over fresh volumes
    of ``mode``, the order alternated each round (1, 4 / 4, 1 / ...); the ratio per round."""
    options = mode_options(mode)
    volumes = [
        server.create_volume(new_volume_name("grt-par"), options=options)
        for _ in range(volume_count)
    ]
    passes: dict[int, list[dict[str, Any]]] = {1: [], 4: []}
    ratios: list[float] = []
    try:
        for rnd in range(rounds):
            order = [1, 4] if rnd % 2 == 0 else [4, 1]
            seconds: dict[int, float] = {}
            for parallel in order:
                tag = f"{mode[:3]}-p{parallel}-{uuid.uuid4().hex[:6]}"
                filled = fill(server, volumes, files, tmp)
                names = released_pvs(api, volumes, tag)
                load = loadavg()
                r = one_pass(
                    plane,
                    server,
                    tmp,
                    tag,
                    [v.name for v in volumes],
                    parallel=parallel,
                    workers=workers,
                )
                delete_pvs(api, names)
                r["round"] = rnd
                r["fill_s"] = round(filled, 1)
                r["loadavg_1m"] = load
                r["watcher_rounds_min"] = watcher_rounds(min(r["wipe_s_each"]))
                passes[parallel].append(r)
                seconds[parallel] = r["seconds"]
                print(f"    durations of one volume: {r['durations_each'][0]}", flush=True)
                print(f"    summed per step: {step_sums(r['durations_each'])}", flush=True)
                print(
                    f"  {mode} round {rnd + 1} --parallel {parallel}: pass {r['seconds']:6.1f}s "
                    f"({r['files']} files; wipes summed {r['wipe_s_sum']:.1f}s, shortest "
                    f"{min(r['wipe_s_each']):.1f}s = {r['watcher_rounds_min']} watcher rounds; "
                    f"filled in {filled:.0f}s; load avg {load:.1f}); CPU s: "
                    f"recycler {r['recycler_cpu_s']:.1f}, bricks {r['bricks_cpu_s']:.1f}, "
                    f"FUSE clients {r['fuse_clients_cpu_s']:.1f}; machine "
                    f"{r['machine_busy']:.0%} busy",
                    flush=True,
                )
            ratios.append(round(seconds[1] / seconds[4], 3))
    finally:
        for volume in volumes:
            server.delete_volume(volume)
    ratio = spread(ratios)
    one = spread([r["seconds"] for r in passes[1]])
    four = spread([r["seconds"] for r in passes[4]])
    loads = [r["loadavg_1m"] for rs in passes.values() for r in rs]
    print(
        f"  {mode}: --parallel 1 {one['median']:.1f}s / --parallel 4 {four['median']:.1f}s; "
        f"ratio per round {ratios}: median {ratio['median']:.2f} "
        f"({ratio['min']:.2f}-{ratio['max']:.2f}); load {min(loads):.1f}-{max(loads):.1f}",
        flush=True,
    )
    return {
        f"{mode}_parallel_ratio": round(ratio["median"], 2),
        f"{mode}_parallel_ratio_spread": [ratio["min"], ratio["max"]],
        f"{mode}_parallel_rounds": rounds,
        f"{mode}_parallel_p1_s": one["median"],
        f"{mode}_parallel_p4_s": four["median"],
        f"{mode}_parallel_p1_s_spread": [one["min"], one["max"]],
        f"{mode}_parallel_p4_s_spread": [four["min"], four["max"]],
        f"{mode}_parallel_loadavg_1m": [min(loads), max(loads)],
        f"{mode}_parallel_p1_watcher_rounds_min": min(r["watcher_rounds_min"] for r in passes[1]),
        f"{mode}_parallel_detail": {"p1": passes[1], "p4": passes[4]},
    }


def watcher_rounds(wipe_s: float) -> int:
    """The watcher rounds a wipe of ``wipe_s`` seconds ran: the first one starts one interval
    after the wipe, then one per interval (recycler_job/watch.py)."""
    return int(wipe_s // watch.DEFAULT_INTERVAL)


def step_sums(durations: list[dict[str, float]]) -> dict[str, float]:
    """Each step's seconds summed over the pass's volumes (where the time goes)."""
    sums: dict[str, float] = {}
    for each in durations:
        for step, seconds in each.items():
            sums[step] = round(sums.get(step, 0.0) + seconds, 2)
    return sums


def run(
    modes: list[str], volume_count: int, files: int, workers: int, rounds: int = 3
) -> dict[str, Any]:
    reason = gluster_unavailable_reason()
    if reason:
        raise SystemExit(f"bench.parallel: {reason}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    server = GlusterServer()
    plane = ControlPlane(pv_sync_period="1h")
    results: dict[str, Any] = {
        "parallel_volumes": volume_count,
        "parallel_files_per_volume": files,
        "parallel_wipe_workers": workers,
    }
    try:
        server.ensure_running()
        print(f"{volume_count} gluster volumes per mode and a sandbox control plane...", flush=True)
        plane.start()
        stop_controller_manager(plane)
        api = RawApi(plane)
        for n, mode in enumerate(modes):
            # Rounds with the order alternated for the first (headline) mode: a machine whose
            # load drifts during the benchmark then biases neither side.
            results.update(
                run_mode(
                    plane,
                    api,
                    server,
                    tmp,
                    mode,
                    volume_count,
                    files,
                    workers,
                    rounds if n == 0 else 1,
                )
            )
    finally:
        try:
            server.close()
        finally:
            plane.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return results


# Keys earlier versions of this benchmark wrote; replaced by the per-mode keys.
STALE_KEYS = (
    "parallel_ratio",
    "parallel_ratio_wipe_workers",
    "parallel_p1_s",
    "parallel_p4_s",
    "parallel_detail",
    "parallel_ratio_wipe_workers_4",
    "parallel_p1_s_wipe_workers_4",
    "parallel_p4_s_wipe_workers_4",
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.parallel", description=__doc__)
    parser.add_argument(
        "--modes", default="latency", help="latency and/or loopback; the first is timed ABBA"
    )
    parser.add_argument("--volumes", type=int, default=8)
    parser.add_argument(
        "--files",
        type=int,
        default=8000,
        help="files per volume (8,000: each wipe outlasts two watcher rounds at --parallel 1)",
    )
    parser.add_argument(
        "--workers", type=int, default=default_wipe_workers(), help="--wipe-workers of the passes"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the first mode (order 1, 4 then 4, 1, ...; median and spread)",
    )
    parser.add_argument("--quick", action="store_true", help="4 volumes of 500 files, latency")
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES):
        parser.error(f"unknown mode(s) in {args.modes!r}")
    if args.quick:
        modes, args.volumes, args.files, args.rounds = ["latency"], 4, 500, 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    results = run(modes, args.volumes, args.files, args.workers, args.rounds)
    ratio = results.get("latency_parallel_ratio")
    if ratio is not None:
        verdict = "met" if ratio >= 1.5 else "MISSED"
        print(f"latency parallel ratio {ratio:.2f} (target >= 1.5: {verdict})")
    if not args.no_write:
        merge_results(results, drop=STALE_KEYS)
    return results


if __name__ == "__main__":
    main()
