"""Does ``--parallel`` pay off? One pass over 8 real gluster volumes, ``--parallel 1`` vs 4.

    .venv/bin/python -m bench.parallel [--volumes 8] [--files 5000] [--workers 16,4] [--no-write]

Needs root, /dev/fuse and glusterd (tests/sandbox/gluster.py starts it when it is not running).
Creates ``--volumes`` one-brick scratch volumes and a sandbox control plane, then for each
``--wipe-workers`` value in ``--workers`` and each of ``--parallel`` 1 and 4:

1. fills every volume with ``--files`` 100-byte files (50 directories) through a FUSE mount;
2. creates one PV per volume as a released Recycle PV looks after its claim was deleted
   (claimRef naming a missing claim, phase Failed "No recycler plugin found for the volume!"),
   labelled for this run only;
3. runs one real pass (``python -m recycler_job``, client check on, ``--min-age 0``,
   ``--gluster-hosts`` the harness's address) and times it from fork to exit.

Each run gets identical, freshly filled volumes. The ratio printed is the wall time of the
``--parallel 1`` pass divided by that of the ``--parallel 4`` pass, per worker count; the
headline ``parallel_ratio`` is the one at the default 16 wipe workers, timed in the order
1, 4, 4, 1 (``--repeats 2``, the default) and averaged, so that a load drifting on a shared
machine favours neither side. The other worker counts are timed once each.

As in bench.scale, the kube-controller-manager is stopped first: the PVs are written in their
final state through the status subresource and nothing else touches them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import cpu_ticks, merge_results, pids_matching, process_cpu_s, run_child
from bench.scale import NOT_OURS, RawApi, child_env, stop_controller_manager
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle, new_volume_name
from tests.sandbox.requirements import gluster_unavailable_reason

DIRS = 50
PAYLOAD = b"x" * 100
FILL_THREADS = 16


def fill(server: GlusterServer, volumes: list[GlusterVolumeHandle], files: int) -> float:
    """Write ``files`` small files into each volume through FUSE; returns seconds taken."""
    started = time.monotonic()
    per_dir = max(1, files // DIRS)
    mounts = [server.fuse_mount(v) for v in volumes]
    try:
        jobs = [(m, d) for m in mounts for d in range(DIRS)]

        def one_dir(job: tuple[str, int]) -> None:
            root, d = job
            sub = os.path.join(root, f"d{d:02d}")
            os.makedirs(sub, exist_ok=True)
            for i in range(per_dir):
                with open(os.path.join(sub, f"f{i:04d}"), "wb") as fh:
                    fh.write(PAYLOAD)

        with ThreadPoolExecutor(FILL_THREADS) as pool:
            list(pool.map(one_dir, jobs))
    finally:
        for m in mounts:
            server.fuse_unmount(m)
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
        "recycler_cpu_s": round(child.cpu_s, 2),
        "bricks_cpu_s": round(cpu.seconds("glusterfsd"), 2),
        "fuse_clients_cpu_s": round(cpu.seconds("glusterfs"), 2),
        "machine_busy": round(cpu.machine_busy, 3),
    }


def run(
    volume_count: int, files: int, worker_counts: list[int], repeats: int = 2
) -> dict[str, Any]:
    reason = gluster_unavailable_reason()
    if reason:
        raise SystemExit(f"bench.parallel: {reason}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    server = GlusterServer()
    plane = ControlPlane(pv_sync_period="1h")
    results: dict[str, Any] = {}
    try:
        server.ensure_running()
        print(f"creating {volume_count} gluster volumes and a sandbox control plane...", flush=True)
        plane.start()
        stop_controller_manager(plane)
        api = RawApi(plane)
        volumes = [server.create_volume(new_volume_name("grt-par")) for _ in range(volume_count)]
        detail: dict[str, Any] = {}
        for n, workers in enumerate(worker_counts):
            # ABBA order for the headline worker count: a machine whose load drifts during
            # the benchmark then biases neither side.
            order = [1, 4, 4, 1] if n == 0 and repeats > 1 else [1, 4]
            passes: dict[int, list[dict[str, Any]]] = {1: [], 4: []}
            for parallel in order:
                tag = f"w{workers}-p{parallel}-{uuid.uuid4().hex[:6]}"
                filled = fill(server, volumes, files)
                released_pvs(api, volumes, tag)
                r = one_pass(
                    plane,
                    server,
                    tmp,
                    tag,
                    [v.name for v in volumes],
                    parallel=parallel,
                    workers=workers,
                )
                r["fill_s"] = round(filled, 1)
                r["loadavg_1m"] = round(os.getloadavg()[0], 2)
                passes[parallel].append(r)
                print(
                    f"  --wipe-workers {workers:3} --parallel {parallel}: "
                    f"pass {r['seconds']:6.1f}s "
                    f"({r['files']} files; wipes summed {r['wipe_s_sum']:.1f}s; "
                    f"filled in {filled:.0f}s; load avg {r['loadavg_1m']:.1f}); CPU s: "
                    f"recycler {r['recycler_cpu_s']:.1f}, bricks {r['bricks_cpu_s']:.1f}, "
                    f"FUSE clients {r['fuse_clients_cpu_s']:.1f}; machine "
                    f"{r['machine_busy']:.0%} busy",
                    flush=True,
                )
            one = sum(r["seconds"] for r in passes[1]) / len(passes[1])
            four = sum(r["seconds"] for r in passes[4]) / len(passes[4])
            ratio = one / four
            detail[f"w{workers}_p1"] = passes[1]
            detail[f"w{workers}_p4"] = passes[4]
            detail[f"w{workers}_p1_s"] = round(one, 2)
            detail[f"w{workers}_p4_s"] = round(four, 2)
            detail[f"w{workers}_ratio"] = round(ratio, 2)
            print(
                f"  wipe-workers {workers}: --parallel 1 {one:.1f}s / --parallel 4 {four:.1f}s "
                f"= {ratio:.2f}x (mean of {len(passes[1])} pass(es) each)",
                flush=True,
            )
        headline = worker_counts[0]
        results = {
            "parallel_ratio": detail[f"w{headline}_ratio"],
            "parallel_ratio_wipe_workers": headline,
            "parallel_p1_s": detail[f"w{headline}_p1_s"],
            "parallel_p4_s": detail[f"w{headline}_p4_s"],
            "parallel_volumes": volume_count,
            "parallel_files_per_volume": files,
            "parallel_detail": detail,
        }
        for workers in worker_counts[1:]:
            results[f"parallel_ratio_wipe_workers_{workers}"] = detail[f"w{workers}_ratio"]
            results[f"parallel_p1_s_wipe_workers_{workers}"] = detail[f"w{workers}_p1_s"]
            results[f"parallel_p4_s_wipe_workers_{workers}"] = detail[f"w{workers}_p4_s"]
    finally:
        try:
            server.close()
        finally:
            plane.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.parallel", description=__doc__)
    parser.add_argument("--volumes", type=int, default=8)
    parser.add_argument("--files", type=int, default=5000, help="files per volume")
    parser.add_argument(
        "--workers",
        default="16,4",
        help="comma list of --wipe-workers values; the first gives parallel_ratio",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="2: time the first worker count as --parallel 1, 4, 4, 1 (mean of each); 1: once",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update results.json")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    results = run(args.volumes, args.files, counts, args.repeats)
    verdict = "met" if results["parallel_ratio"] >= 1.5 else "MISSED"
    print(f"parallel ratio {results['parallel_ratio']:.2f} (target >= 1.5: {verdict})")
    if not args.no_write:
        merge_results(results)
    return results


if __name__ == "__main__":
    main()
