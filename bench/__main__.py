"""``python -m bench`` (``make bench``): the wipe, scale and parallel benchmarks, one table.

    .venv/bin/python -m bench [--only wipe,scale,parallel] [--quick]

``--quick`` (``make bench QUICK=1``) is a smoke run: small trees, 1,000 PVs, 4 volumes. Its
figures are written to ``bench/results.json`` like the others (``wipe_bench_quick`` says so).

Each benchmark merges its figures into ``bench/results.json``; this adds the machine they were
measured on and prints the headline figures against their targets. A benchmark that fails is
reported and the others still run. These are measurements, not tests: nothing here fails the
build when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.common import RESULTS, machine_info, merge_results

BENCHMARKS = ("wipe", "scale", "parallel")


def _load_main(name: str) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise
    main = getattr(module, "main", None)
    return main if callable(main) else None


QUICK_ARGS = {
    "wipe": ["--quick", "--rounds", "1"],  # each gfapi run pays glfs_fini's ~10 s
    # 500 then 1,000 PVs (2,000 claims), idle passes only: no wipe, no test_watch.py run
    "scale": [
        *("--small-pvs", "500", "--pvs", "1000", "--pvcs", "2000", "--runs", "1"),
        *("--eligible", "0", "--no-detection"),
    ],
    "parallel": ["--quick"],
}


# `make bench` (not quick): bench.scale without its test_watch.py run (about 5 minutes more
# on this machine: run `python -m bench.scale` alone for scale_detection_s).
FULL_ARGS = {"scale": ["--no-detection"]}


def run_one(name: str, quick: bool = False) -> dict[str, Any]:
    """Run bench.<name>.main with its defaults (QUICK_ARGS if ``quick``); {} when not there."""
    main = _load_main(name)
    if main is None:
        print(f"== {name}: bench/{name}.py (with a main()) is not there yet; skipped", flush=True)
        return {}
    print(f"== {name}", flush=True)
    started = time.monotonic()
    takes_argv = bool(inspect.signature(main).parameters)
    argv = QUICK_ARGS.get(name, []) if quick else FULL_ARGS.get(name, [])
    result = main(argv) if takes_argv else main()
    print(f"== {name} took {time.monotonic() - started:.0f}s", flush=True)
    return dict(result) if isinstance(result, dict) else {}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if value is None:
        return "-"
    return str(value)


def table(results: dict[str, Any]) -> list[str]:
    """The headline figures with their targets (and whether they were met)."""
    pages = results.get("idle_pass_10k_pvs_pages")
    limit = pages + 10 if isinstance(pages, int) else None
    rss_10k = results.get("wipe_peak_rss_mib_10k")
    gfapi_10k = results.get("gfapi_wipe_peak_rss_mib_10k")
    rows: list[tuple[str, str, Callable[[Any], bool] | None]] = [
        ("latency_wide_ratio_vs_best", ">= 1.5", lambda v: v >= 1.5),
        ("latency_one_dir_ratio_vs_best", ">= 8 (gfapi)", lambda v: v >= 8),
        ("latency_deep_ratio_vs_best", ">= 1.5", lambda v: v >= 1.5),
        ("latency_large_ratio_vs_best", ">= 1.0", lambda v: v >= 1.0),
        ("brick_fops_per_file", "<= 1.2", lambda v: v <= 1.2),
        ("latency_wide_fraction_of_limit", "(aim >= 0.7)", None),
        ("latency_parallel_ratio", ">= 1.5", lambda v: v >= 1.5),
        ("wipe_peak_rss_mib_10k", "", None),
        (
            "wipe_peak_rss_mib_200k",
            "<= 10k + 32",
            lambda v: isinstance(rss_10k, float | int) and v <= rss_10k + 32,
        ),
        ("gfapi_wipe_peak_rss_mib_10k", "", None),
        (
            "gfapi_wipe_peak_rss_mib_200k",
            "<= 10k + 32",
            lambda v: isinstance(gfapi_10k, float | int) and v <= gfapi_10k + 32,
        ),
        ("idle_pass_10k_pvs_s", "< 5", lambda v: v < 5),
        (
            "idle_pass_10k_pvs_requests",
            f"<= pages + 10 = {limit}",
            lambda v: limit is not None and v <= limit,
        ),
        ("idle_pass_10k_pvs_pages", "", None),
        ("idle_pass_10k_pvs_per_pv_requests", "0", lambda v: v == 0),
        ("idle_pass_peak_rss_mib", "< 150", lambda v: v < 150),
        ("idle_pass_vs_kubectl_ratio", "(baseline: kubectl get)", None),
        ("dry_run_100_eligible_s", "", None),
        ("dry_run_per_eligible_volume_s", "", None),
        ("help_s", "< 0.5", lambda v: v < 0.5),
        ("scale_pvs", "(full size: PVs)", None),
        ("scale_pvcs", "(full size: claims)", None),
        ("scale_requests_per_volume_during_wipe", "<= 5", lambda v: v <= 5),
        ("scale_parallel4_requests_per_volume_during_wipe", "<= 5", lambda v: v <= 5),
        ("scale_bytes_during_wipe_fraction_of_claim_list", "<= 0.01", lambda v: v <= 0.01),
        ("scale_pass_peak_rss_mib", "<= 300", lambda v: v <= 300),
        ("scale_rss_mib_per_10k_objects", "", None),
        ("scale_detection_s", "<= 1", lambda v: v <= 1),
    ]
    lines = [f"{'figure':36} {'value':>12}  {'target':24} met"]
    for key, target, check in rows:
        value = results.get(key)
        met = "" if value is None or check is None else ("yes" if check(value) else "NO")
        lines.append(f"{key:36} {_fmt(value):>12}  {target:24} {met}")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma list from wipe, scale, parallel"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (make bench QUICK=1)")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(wanted) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    info = machine_info()
    info["machine_loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    print(
        f"machine: {info['machine_nproc']} x {info['machine_cpu_model']}, "
        f"{info['machine_mem_gib']} GiB, kernel {info['machine_kernel']}, "
        f"load average {info['machine_loadavg_1m_at_start']}",
        flush=True,
    )
    started = time.monotonic()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in wanted:
        try:
            figures = run_one(name, args.quick)
        except (Exception, SystemExit) as exc:
            traceback.print_exc()
            errors[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
            print(f"== {name} FAILED: {errors[f'{name}_error']}", flush=True)
            continue
        results.update(figures)
        # A benchmark that writes its own results wrote the same; drop an earlier failure.
        merge_results(figures, drop=[f"{name}_error"])
    info["machine_loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    info["bench_quick"] = args.quick
    info["bench_s"] = round(time.monotonic() - started, 1)
    merged = merge_results({**info, **errors})
    print()
    for line in table(merged):
        print(line)
    print(f"\nwritten to {RESULTS}")
    return merged


if __name__ == "__main__":
    main()
