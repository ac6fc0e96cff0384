"""Output of the gluster CLI and mount xattrs captured from glusterfs 10.3.

Inline: `volume status VOL clients` / `client-list` (single node, bricks on host "vm"),
whitespace exactly as printed. Files in tests/unit/data/gluster (see its README): volume info
and pathinfo of real 1-brick, 2-brick distribute, replica-2 and 2x2 distributed-replicate
volumes, mounted at the root and at the subdirectory `pv/data`.
"""

from __future__ import annotations

from pathlib import Path

from recycler_job.gluster.identity import PathinfoBrick, parse_pathinfo
from recycler_job.gluster.parse import VolumeInfo, parse_volume_info
from recycler_job.sources.glusterfs import GlusterSource

# --------------------------------------------------------------------------------------
# `gluster volume status VOL clients` / `client-list`, captured from glusterfs 10.3
# (single node, bricks on host "vm"). Whitespace exactly as printed.

ONE_BRICK_NO_CLIENTS = (
    "Client connections for volume grt-sample1\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample1/b0\n"
    "Clients connected : 0\n"
    "----------------------------------------------\n"
    "\n"
)

ONE_BRICK_NO_CLIENTS_LIST = (
    "Client connections for volume grt-sample1\n"
    "\n"
    "total clients for volume grt-sample1 : 0 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

ONE_BRICK_FUSE = (
    "Client connections for volume grt-sample1\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample1/b0\n"
    "Clients connected : 1\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49138                                             "
    "2052            1476          100000\n"
    "----------------------------------------------\n"
    "\n"
)

ONE_BRICK_FUSE_LIST = (
    "Client connections for volume grt-sample1\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "fuse                                                           1\n"
    "\n"
    "total clients for volume grt-sample1 : 1 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

REPLICA_SHD = (
    "Client connections for volume grt-sample2\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b0\n"
    "Clients connected : 1\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49147                                             "
    "4004            4288          100000\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b1\n"
    "Clients connected : 1\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49139                                             "
    "4004            4288          100000\n"
    "----------------------------------------------\n"
    "\n"
)

REPLICA_SHD_LIST = (
    "Client connections for volume grt-sample2\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "glustershd                                                     1\n"
    "\n"
    "total clients for volume grt-sample2 : 1 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

REPLICA_SHD_TWO_FUSE = (
    "Client connections for volume grt-sample2\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b0\n"
    "Clients connected : 3\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49147                                             "
    "4740            5060          100000\n"
    "127.0.0.1:49129                                             "
    "3192            2296          100000\n"
    "127.0.0.1:49127                                             "
    "2636            2248          100000\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-gluster-s9e08r53/bricks/grt-sample2/b1\n"
    "Clients connected : 3\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49139                                             "
    "4740            5060          100000\n"
    "127.0.0.1:49128                                             "
    "3248            2296          100000\n"
    "127.0.0.1:49126                                             "
    "2692            2248          100000\n"
    "----------------------------------------------\n"
    "\n"
)

REPLICA_SHD_TWO_FUSE_LIST = (
    "Client connections for volume grt-sample2\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "glustershd                                                     1\n"
    "fuse                                                           2\n"
    "\n"
    "total clients for volume grt-sample2 : 3 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)

REPLICA_BRICK_OFFLINE = (
    "Client connections for volume grt-exp2\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-exp/r1\n"
    "Clients connected : 3\n"
    "Hostname                                               Bytes"
    "Read    BytesWritten       OpVersion\n"
    "--------                                               -----"
    "----    ------------       ---------\n"
    "127.0.0.1:49137                                             "
    "5168            5832          100000\n"
    "127.0.0.1:49132                                             "
    "7620            5548          100000\n"
    "127.0.0.1:49127                                             "
    "2612            2292          100000\n"
    "----------------------------------------------\n"
    "Brick : vm:/tmp/grt-exp/r2\n"
    "Brick is offline\n"
    "----------------------------------------------\n"
    "\n"
)

QUOTA_BITROT_FUSE_LIST = (
    "Client connections for volume grt-exp1\n"
    "Name                                                       count\n"
    "-----                                                     ------\n"
    "fuse                                                           1\n"
    "quotad                                                         1\n"
    "scrub                                                          1\n"
    "bitd                                                           1\n"
    "\n"
    "total clients for volume grt-exp1 : 2 \n"
    "-----------------------------------------------------------------\n"
    "\n"
)


DATA = Path(__file__).parent.parent / "data" / "gluster"
NODE = "d4d8481f-4b2d-473f-a599-afb38b978930"  # the glusterd the samples came from
BRICKS = "/tmp/grt-gluster-hinyabai/bricks"
KINDS = {"one": 1, "dist2": 2, "rep2": 2, "mixed": 4}  # sample -> bricks
SUBDIR_SAMPLES = ("one", "dist2", "rep2")  # mounted at pv/data too


def sample(name: str) -> str:
    return (DATA / name).read_bytes().decode()


def info_of(kind: str) -> VolumeInfo:
    return parse_volume_info(sample(f"{kind}.info.xml"), f"grt-cap-{kind}")


def pathinfo_of(kind: str, *, sub: bool = False) -> list[PathinfoBrick]:
    return parse_pathinfo(sample(f"{kind}{'.sub' if sub else ''}.pathinfo.txt"))


def captured_source(kind: str, subdir: str = "") -> GlusterSource:
    path = f"grt-cap-{kind}/{subdir}" if subdir else f"grt-cap-{kind}"
    return GlusterSource(
        endpoints="glusterfs-cluster", path=path, endpoints_namespace=None, read_only=False
    )
