"""One wipe (or one fill) in a process of its own, for bench.wipe and bench.parallel.

    python -m bench.wipe_child fuse PATH WORKERS
    python -m bench.wipe_child gfapi VOLUME HOST SUBDIR WORKERS LOG_FILE
    python -m bench.wipe_child fill HOST DIRS FILES_PER_DIR LOG_DIR VOLUME...

Prints one JSON object: ``seconds`` of the wipe alone and, for gfapi, ``init_s`` (connect and
``glfs_init``) and ``fini_s`` (``glfs_fini``), which a real gfapi wipe pays as well. The
benchmark times the whole process, from fork to exit, like every other contender; these are
reported apart. Its own process, so that the benchmark can take the wipe's peak RSS (GNU time
around it) without the benchmark's own memory in it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _emit(result: dict[str, object], *, hard_exit: bool) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    if hard_exit:
        os._exit(0)


def wipe_fuse(path: str, workers: int) -> None:
    from recycler_job.wipe.fuse import wipe_tree

    started = time.monotonic()
    stats = wipe_tree(path, workers=workers)
    _emit(
        {"seconds": time.monotonic() - started, "files": stats.files, "dirs": stats.dirs},
        hard_exit=False,
    )


def wipe_gfapi(volume: str, host: str, subdir: str, workers: int, log_file: str) -> None:
    import ctypes

    from recycler_job.wipe.gfapi_handles import client_list_name, open_volume
    from recycler_job.wipe.gfapi_transport import client_gone

    # A process name of its own: the benchmark's tree builder is a gfapi client named after
    # the interpreter too, and the close waits until no client of the wipe's name is listed.
    ctypes.CDLL(None).prctl(15, b"grt-wipe-child", 0, 0, 0)  # PR_SET_NAME
    started = time.monotonic()
    vol = open_volume(volume, [host], log_file=log_file)
    init_s = time.monotonic() - started
    started = time.monotonic()
    stats = vol.wipe(subdir, workers=workers)
    wipe_s = time.monotonic() - started
    started = time.monotonic()
    # glfs_fini, up to our client's disconnection as the pass waits for it (gfapi_transport)
    vol.close(client_gone([host], volume, client_list_name(), timeout=60.0))
    _emit(
        {
            "seconds": wipe_s,
            "init_s": init_s,
            "fini_s": time.monotonic() - started,
            "files": stats.files,
            "dirs": stats.dirs,
        },
        hard_exit=True,
    )


def fill(host: str, dirs: int, per_dir: int, log_dir: str, volumes: list[str]) -> None:
    """``dirs`` directories of ``per_dir`` empty files at the root of each volume, over gfapi
    (no kernel directory lock, no FUSE round trips: several times faster than a mount)."""
    from recycler_job.wipe import gfapi

    started = time.monotonic()
    for name in volumes:
        vol = gfapi.Volume(name, [host], os.path.join(log_dir, f"fill-{name}.log"))
        gfapi.as_root()
        root, _ = vol.root()

        def one(d: int, vol: gfapi.Volume = vol, root: gfapi.Handle = root) -> None:
            gfapi.as_root()
            sub, _ = vol.mkdir(root, b"d%04d" % d)
            for i in range(per_dir):
                handle, _ = vol.create(sub, b"f%05d" % i)
                handle.close()
            sub.close()

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, range(dirs)))
        root.close()
    _emit({"seconds": time.monotonic() - started}, hard_exit=True)


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "fuse":
        wipe_fuse(argv[1], int(argv[2]))
    elif kind == "gfapi":
        wipe_gfapi(argv[1], argv[2], argv[3], int(argv[4]), argv[5])
    elif kind == "fill":
        fill(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5:])
    else:
        raise SystemExit(f"unknown child {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
