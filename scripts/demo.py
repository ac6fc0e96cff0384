"""`make demo`: one real recycle pass against a local sandbox, with everything visible.

Starts a real control plane (etcd, kube-apiserver, kube-controller-manager) and glusterd, makes
three glusterfs volumes with tenant files behind PVs, binds and deletes their claims, lets the
real PV controller fail or release them, runs one pass, and shows the PVs and volumes before and
after. Tears everything down at the end.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.objects import endpoints, gluster_pv, pvc, wait_for

REPO = Path(__file__).resolve().parents[1]
ADMIN_NS = "gluster-storage"


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def listing(server: GlusterServer, volume: GlusterVolumeHandle) -> list[str]:
    with server.mounted(volume) as root:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            for entry in dirnames + filenames:
                found.append(os.path.relpath(os.path.join(dirpath, entry), root))
        return sorted(found)


def main() -> int:
    banner("starting the sandbox: etcd, kube-apiserver, kube-controller-manager, glusterd")
    with ControlPlane() as plane, GlusterServer() as server:
        server.ensure_running()

        def phase(name: str) -> str:
            return str(plane.get_json("pv", name).get("status", {}).get("phase"))

        def has_phase(name: str, wanted: str) -> bool:
            return phase(name) == wanted

        volumes: dict[str, GlusterVolumeHandle] = {}
        plans = [("demo-web", "Recycle"), ("demo-db", "Recycle"), ("demo-archive", "Retain")]
        for name, _policy in plans:
            volume = server.create_volume(f"grt-{name}")
            volumes[name] = volume
            server.write_files(
                volume,
                {
                    "index.html": "<h1>tenant data</h1>",
                    ".env": "SECRET=last-tenant",
                    "cache/objects/ab/cdef": b"\0" * 65536,
                },
            )
        # The servers are named by the admin, in a namespace no tenant writes to; the PVs say
        # where (endpointsNamespace). Endpoints in a claim's namespace are the tenant's.
        plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ADMIN_NS}})
        plane.apply(endpoints("glusterfs-cluster", ADMIN_NS, list(server.hosts)))
        for name, policy in plans:
            plane.apply(
                gluster_pv(
                    name,
                    volumes[name].path,
                    endpoints_namespace=ADMIN_NS,
                    policy=policy,
                    labels={"demo": "1"},
                )
            )
            plane.apply(pvc(f"claim-{name}", volume_name=name))
        for name, _ in plans:
            wait_for(functools.partial(has_phase, name, "Bound"), what=f"{name} to bind")
        banner("claims bound; tenants wrote files; now the claims are deleted")
        for name, _ in plans:
            plane.run_kubectl("delete", "pvc", f"claim-{name}")
        for name, policy in plans:
            want = "Failed" if policy == "Recycle" else "Released"
            wait_for(functools.partial(has_phase, name, want), what=f"{name} {want}")
        print(plane.run_kubectl("get", "pv", "-l", "demo=1").stdout)
        for name, volume in volumes.items():
            print(f"{name}: {listing(server, volume)}")

        banner("one pass of gluster-recycler (Retain volumes are left alone by default)")
        with tempfile.TemporaryDirectory(prefix="grt-demo-") as tmp:
            command = [
                sys.executable, "-m", "recycler_job",
                "--kubeconfig", str(plane.kubeconfig),
                "--selector", "demo=1",
                "--phases", "Failed,Released",
                "--min-age", "0",
                "--mount-root", f"{tmp}/mounts",
            ]  # fmt: skip
            print("$ gluster-recycler " + " ".join(command[3:]), flush=True)
            code = subprocess.run(command, cwd=REPO, check=False).returncode
        print(f"exit code: {code}")

        banner("after the pass")
        for name, _ in plans:
            if name != "demo-archive":
                wait_for(functools.partial(has_phase, name, "Available"), what=f"{name} Available")
        print(plane.run_kubectl("get", "pv", "-l", "demo=1").stdout)
        for name, volume in volumes.items():
            print(f"{name}: {listing(server, volume)}")
        print(
            plane.run_kubectl("get", "events", "-n", "default", "--sort-by=.lastTimestamp").stdout
        )
        banner("tearing down the sandbox")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
