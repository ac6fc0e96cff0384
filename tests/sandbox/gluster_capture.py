"""Captures one server version's real answers as parser fixtures (tests/unit/data/gluster/V/).

    python -m tests.sandbox.gluster_capture 9.2 tests/unit/data/gluster/9.2

Volumes `grt-cap-one` (1 brick, subdirectory pv/data), `grt-cap-rep2` (replica 2, so the
self-heal daemon is a client) and `grt-cap-trash` (`features.trash on`) on the server of that
version (tests/sandbox/gluster_versions.py; 10.3 is this machine's glusterd); every answer is
asked with this machine's 10.3 CLI, as the recycler asks it. See the data directory's README.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.sandbox.gluster import GlusterServer
from tests.sandbox.gluster_versions import HOST_VERSION, VersionedGlusterServer


def _cli(server: GlusterServer, *args: str) -> str:
    """The host's CLI (GlusterServer's, not a chroot server's own) over the network."""
    return GlusterServer.gluster(server, *args, remote_host=server.address).stdout


def capture(server: GlusterServer, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    def save(name: str, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        (out / name).write_bytes(data)

    one = server.create_volume("grt-cap-one", subdir="pv/data")
    rep2 = server.create_volume("grt-cap-rep2", replica=2)
    server.create_volume("grt-cap-trash", options={"features.trash": "on"})
    server.wait_connections(rep2.name, 1)  # glustershd
    for name in ("one", "rep2", "trash"):
        save(f"{name}.info.xml", _cli(server, "volume", "info", f"grt-cap-{name}", "--xml"))
    save("missing.info.xml", _cli(server, "volume", "info", "grt-cap-missing", "--xml"))
    save("one.clients.none.txt", _cli(server, "volume", "status", one.name, "clients"))
    save("one.client-list.none.txt", _cli(server, "volume", "status", one.name, "client-list"))
    save("rep2.clients.shd.txt", _cli(server, "volume", "status", rep2.name, "clients"))
    save("rep2.client-list.shd.txt", _cli(server, "volume", "status", rep2.name, "client-list"))
    with server.mounted(one) as root:
        save("one.pathinfo.txt", os.getxattr(root, "trusted.glusterfs.pathinfo"))
        save("one.clients.fuse.txt", _cli(server, "volume", "status", one.name, "clients"))
        save("one.client-list.fuse.txt", _cli(server, "volume", "status", one.name, "client-list"))
    with server.mounted(one, subdir="pv/data") as root:
        save("one.sub.pathinfo.txt", os.getxattr(root, "trusted.glusterfs.pathinfo"))


def main(argv: list[str]) -> int:
    version, out = argv[1], Path(argv[2])
    server = GlusterServer() if version == HOST_VERSION else VersionedGlusterServer(version)
    with server:
        server.ensure_running()
        capture(server, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
