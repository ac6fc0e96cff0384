"""Helpers shared by the benchmarks: results file, machine info, timing a child process."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
REPO = Path(__file__).resolve().parent.parent


def merge_results(
    new: Mapping[str, Any], path: Path = RESULTS, drop: Sequence[str] = ()
) -> dict[str, Any]:
    """Update ``path`` (a JSON object) with ``new``, keeping keys other benchmarks wrote;
    ``drop`` removes keys (a previous run's error, for instance)."""
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except ValueError:
            merged = {}
    for key in drop:
        merged.pop(key, None)
    merged.update(new)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return merged


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    except OSError:
        pass
    return {
        "machine_nproc": os.cpu_count() or 0,
        "machine_cpu_model": model,
        "machine_mem_gib": round(mem_kib / 1024 / 1024, 1),
        "machine_kernel": platform.release(),
        "machine_python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@dataclass(frozen=True)
class ChildRun:
    """One child process: exit code, wall time, its own peak RSS, output."""

    code: int
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str
    cpu_s: float = 0.0  # user + system time of the child (and its waited-for children)


GNU_TIME = "/usr/bin/time"


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    cwd: Path = REPO,
) -> ChildRun:
    """Run ``argv``: wall time from fork to exit, CPU time, and the child's own peak RSS.

    The peak RSS comes from GNU time wrapped around the command, not from this process's
    ``wait4``/``RUSAGE_CHILDREN``: Linux starts a child's ``ru_maxrss`` at the RSS of the
    process it was forked from (the high-water mark of the old address space is kept across
    ``exec``), so a child of a 130 MiB benchmark process never reports less than 130 MiB.
    GNU time is a 2 MiB process; its own child reports its own peak. Without GNU time the
    figure falls back to ``wait4`` and is only an upper bound.
    """
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-child-{os.getpid()}.out"
    err_path = out_path.with_suffix(".err")
    rss_path = out_path.with_suffix(".rss")
    rss_path.unlink(missing_ok=True)
    wrapped = list(argv)
    if os.access(GNU_TIME, os.X_OK):
        wrapped = [GNU_TIME, "-f", "%M", "-o", str(rss_path), *wrapped]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            wrapped,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env) if env is not None else None,
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    peak_kib = usage.ru_maxrss
    with contextlib.suppress(OSError, ValueError, IndexError):
        peak_kib = int(rss_path.read_text().split()[-1])
    rss_path.unlink(missing_ok=True)
    return ChildRun(
        proc.returncode,
        seconds,
        peak_kib / 1024,
        stdout,
        stderr,
        usage.ru_utime + usage.ru_stime,
    )


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat (busy excludes idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def process_cpu_s(pids: Sequence[int]) -> float:
    """User + system seconds used so far by ``pids`` (0 for any that is gone)."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / hz


def pids_matching(needles: Sequence[str]) -> list[int]:
    """PIDs whose command line contains any of ``needles``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(int(entry.name))
    return found


def best_of(times: Sequence[float]) -> float:
    return min(times) if times else float("nan")


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ---- the latency model ------------------------------------------------------------------

LATENCY_US = 2000
LATENCY_FOPS = "UNLINK,LOOKUP,OPENDIR,READDIRP,RMDIR"
# The brick-side debug/delay-gen translator: every listed fop waits LATENCY_US before the
# brick's posix layer sees it, as if the brick were a network round trip away. The options
# are read when the brick starts (a `volume set` on a started volume needs a stop and start).
LATENCY_OPTIONS = {
    "debug.delay-gen": "posix",
    "delay-gen.delay-percentage": "100",
    "delay-gen.delay-duration": str(LATENCY_US),
    "delay-gen.enable": LATENCY_FOPS,
}
MODES = ("latency", "loopback")


def mode_options(mode: str) -> dict[str, str]:
    """The ``gluster volume set`` options of a benchmark volume in ``mode``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return dict(LATENCY_OPTIONS) if mode == "latency" else {}


def default_wipe_workers() -> int:
    """WIPE_WORKERS's default, read from its one declaration (config/options.py)."""
    from recycler_job.config import Config

    return Config().wipe_workers


def default_parallel() -> int:
    """PARALLEL_VOLUMES's default, read from its one declaration (config/options.py)."""
    from recycler_job.config import Config

    return Config().parallel


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)
