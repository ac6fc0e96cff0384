"""Runs the gfapi transport in its own process, as the tests start it: non-root, no capabilities.

    python -m tests.integration.gfapi_driver '{"op": "wipe", "volume": "v", "hosts": ["h"],
                                               "log_file": "/tmp/x/gfapi.log", ...}'

Ops: ``wipe`` (keys ``subdir``, ``workers``, ``pause_after``/``pause_file``: after that many
stop-flag checks every worker waits until the file exists or SIGTERM arrives, so that the test
can act mid-wipe), ``volume-id``, ``hold`` (connect, send one request, report, wait for
``pause_file``).
Prints JSON lines: ``{"event": "paused"}`` / ``{"event": "connected"}`` and a final
``{"event": "result", ...}`` with stats or the error, then lingers ``linger`` seconds (so the
test can look at the server's client list after ``glfs_fini`` while the process still lives).
Exit status: 0 done, 3 wipe error, 4 interrupted (SIGTERM), 5 root squashed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

from recycler_job.gluster import cli as gluster_cli
from recycler_job.gluster.trash import Trash
from recycler_job.wipe import gfapi
from recycler_job.wipe.engine import WipeError, WipeInterrupted
from recycler_job.wipe.gfapi_handles import (
    GfapiVolume,
    WipeRootSquashed,
    client_list_name,
    open_volume,
)


def _peak_rss_kib() -> int:
    """This process's own peak RSS (`VmHWM`). Not `ru_maxrss`: Linux starts it at the size of
    the process that started this one (the test worker, hundreds of MiB after some tests),
    which exec does not reset."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def populate(vol: GfapiVolume, tree: dict[str, int], threads: int = 8) -> None:
    """Create ``tree`` (directory name at the root -> number of empty files), in parallel."""
    gfapi.as_root()
    root, _ = vol.volume.root()
    for dirname, count in tree.items():
        handle, _ = vol.volume.mkdir(root, dirname.encode())

        def make(start: int, handle: gfapi.Handle = handle, count: int = count) -> None:
            gfapi.as_root()
            for i in range(start, count, threads):
                vol.volume.create(handle, f"f{i:06d}".encode())[0].close()

        workers = [threading.Thread(target=make, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        handle.close()
    root.close()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    stop = threading.Event()
    stopped_at: list[float] = []

    def on_term(signum: int, frame: object) -> None:
        stopped_at.append(time.monotonic())
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    pause_after = int(spec.get("pause_after", 0))
    pause_file = spec.get("pause_file")
    calls = 0
    lock = threading.Lock()

    def stop_flag() -> bool:
        nonlocal calls
        if pause_after:
            with lock:
                calls += 1
                first = calls == pause_after
            if first:
                _emit(event="paused")
            if calls >= pause_after:
                while not stop.is_set() and not os.path.exists(pause_file):
                    time.sleep(0.01)
        return stop.is_set()

    result: dict[str, Any] = {"event": "result", "uid": os.getuid(), "euid": os.geteuid()}
    status = 0
    vol = None
    try:

        def interrupt() -> None:
            if stop.is_set():
                raise WipeInterrupted("stop requested while connecting")

        vol = open_volume(
            spec["volume"],
            spec["hosts"],
            log_file=spec["log_file"],
            timeout=float(spec.get("timeout", 60)),
            interrupt=interrupt,
        )
        with vol:
            result["client_name"] = client_list_name()
            result["volume_id"] = vol.volume_id()
            if spec["op"] == "hold":
                # A request: a graph of ours left from a volfile race at glfs_init goes now.
                vol.request()
                _emit(event="connected", client_name=result["client_name"])
                while not os.path.exists(pause_file):
                    time.sleep(0.05)
            elif spec["op"] == "volume-id":
                gluster_cli.set_cli_log_file(spec["log_file"] + ".cli")
                info = gluster_cli.volume_info(spec["hosts"], spec["volume"], timeout=60)
                result["cli_volume_id"] = info.volume_id
            elif spec["op"] == "populate":
                populate(vol, spec["tree"])
            elif spec["op"] == "wipe":
                # The trash names as the transport takes them: from `gluster volume info`.
                gluster_cli.set_cli_log_file(spec["log_file"] + ".cli")
                info = gluster_cli.volume_info(spec["hosts"], spec["volume"], timeout=60)
                stats = vol.wipe(
                    spec.get("subdir"),
                    workers=int(spec.get("workers", 8)),
                    stop=stop_flag,
                    trash=Trash.of(info).root_names,
                )
                result["stats"] = asdict(stats)
    except WipeError as exc:
        status = (
            5 if isinstance(exc, WipeRootSquashed) else 4 if isinstance(exc, WipeInterrupted) else 3
        )
        result["error"] = {"type": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
        if exc.stats is not None:
            result["stats"] = asdict(exc.stats)
    if vol is not None:
        result["closed"] = vol.volume.closed
        result["fini"] = vol.volume.fini_result
    result["peak_rss_kib"] = _peak_rss_kib()
    if stopped_at:
        result["seconds_after_sigterm"] = time.monotonic() - stopped_at[0]
    _emit(**result)
    time.sleep(float(spec.get("linger", 0)))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
