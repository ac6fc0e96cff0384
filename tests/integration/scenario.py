"""End-to-end scenarios: real gluster volumes behind real PVs whose claims were deleted.

Each test gets its own label (`--selector`), lease and mount root, so tests sharing the
session's control plane never see each other's volumes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.objects import endpoints, gluster_pv, pvc, wait_for

REPO = Path(__file__).resolve().parents[2]
RECYCLER = (sys.executable, "-m", "recycler_job")  # one pass, as the image's entry point
DHT_LINKTO = "trusted.glusterfs.dht.linkto"


def _dht_link(path: str) -> bool:
    """A DHT link file: a brick's pointer to a file stored on another brick (mode ---------T,
    the linkto xattr); clients never list it."""
    try:
        mode = os.lstat(path).st_mode
        return bool(mode & stat.S_ISVTX) and bool(os.getxattr(path, DHT_LINKTO))
    except OSError:
        return False


@dataclass
class RunResult:
    """One recycler process: exit code, output and the --report-file JSON."""

    code: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    def volume(self, name: str) -> dict[str, Any]:
        return next(v for v in self.report["volumes"] if v["pv"] == name)


@dataclass
class Scenario:
    plane: ControlPlane
    gluster: GlusterServer
    volume_factory: Any
    unique: str
    tmp: Path
    namespace: str = "default"  # the claims' (tenants') namespace
    # The admin's Endpoints: a namespace no claim lives in (Endpoints in the former claim's
    # namespace are the tenant's, and never choose the servers).
    endpoints_namespace: str = "grt-gluster-endpoints"
    volumes: dict[str, GlusterVolumeHandle] = field(default_factory=dict)
    _endpoints_namespace_made: bool = False

    @property
    def label(self) -> str:
        return f"grt-test={self.unique}"

    @property
    def mount_root(self) -> Path:
        return self.tmp / "mounts"

    @property
    def lease(self) -> str:
        return f"lease-{self.unique}"

    def ensure_endpoints(self) -> None:
        if not self._endpoints_namespace_made:
            namespace = {"metadata": {"name": self.endpoints_namespace}}
            self.plane.apply({"apiVersion": "v1", "kind": "Namespace", **namespace})
            self._endpoints_namespace_made = True
        self.plane.apply(
            endpoints("glusterfs-cluster", self.endpoints_namespace, list(self.gluster.hosts))
        )

    def released_volume(
        self,
        name: str,
        files: Mapping[str, bytes | str] | None = None,
        *,
        policy: str = "Recycle",
        subdir: str | None = None,
        dirs: tuple[str, ...] = (),
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        storage_class: str = "",
        path: str | None = None,
        wait_phase: str | None = None,
        prebound: bool = False,
        finalizers: list[str] | None = None,
        endpoints_name: str = "glusterfs-cluster",
        endpoints_namespace: str | None = None,
    ) -> str:
        """A gluster volume with `files`, a PV for it that was bound and whose claim was
        deleted; returns the PV name once the real controller moved it to Failed/Released.

        `prebound`: the admin pre-binds the PV to the claim's name (claimRef without uid) and
        the claim does not name the PV, so the controller binds without `bound-by-controller`.
        """
        self.ensure_endpoints()
        pv_name = f"{name}-{self.unique}"
        if path is None:
            handle = self.volume_factory(subdir=subdir)
            self.volumes[pv_name] = handle
            if files or dirs:
                self.gluster.write_files(
                    handle,
                    {self._rel(handle, k): v for k, v in (files or {}).items()},
                    dirs=[self._rel(handle, d) for d in dirs],
                )
            path = handle.path
        all_labels = {"grt-test": self.unique, **(labels or {})}
        claim = f"claim-{pv_name}"
        self.plane.apply(
            gluster_pv(
                pv_name,
                path,
                policy=policy,
                labels=all_labels,
                annotations=dict(annotations or {}),
                storage_class=storage_class,
                claim_ref=(self.namespace, claim) if prebound else None,
                finalizers=finalizers,
                endpoints=endpoints_name,
                endpoints_namespace=endpoints_namespace,
            )
        )
        self.plane.apply(
            pvc(
                claim,
                self.namespace,
                volume_name=None if prebound else pv_name,
                storage_class=storage_class,
            )
        )
        wait_for(lambda: self.phase(pv_name) == "Bound", what=f"{pv_name} to bind")
        self.plane.run_kubectl("delete", "pvc", claim, "-n", self.namespace, "--wait=false")
        expected = wait_phase or ("Failed" if policy == "Recycle" else "Released")
        wait_for(lambda: self.phase(pv_name) == expected, what=f"{pv_name} to be {expected}")
        return pv_name

    @staticmethod
    def _rel(handle: GlusterVolumeHandle, rel: str) -> str:
        return f"{handle.subdir}/{rel}" if handle.subdir else rel

    def pv(self, name: str) -> dict[str, Any]:
        return self.plane.get_json("pv", name)

    def phase(self, name: str) -> str:
        return str(self.pv(name).get("status", {}).get("phase", ""))

    def listing(self, pv_name: str) -> list[str]:
        """Every path below the PV's directory, as its bricks store it: the union over the
        bricks, without gluster's own `.glusterfs` at a brick's root and without DHT link
        files, which is what a FUSE client lists. Read without a mount: a mount per call cost
        a second or more, and would be one more client of the volume while a pass runs."""
        found: set[str] = set()
        for base, dirpath, dirnames, filenames in self._stored(pv_name):
            found.update(os.path.relpath(os.path.join(dirpath, d), base) for d in dirnames)
            found.update(
                os.path.relpath(os.path.join(dirpath, f), base)
                for f in filenames
                if not _dht_link(os.path.join(dirpath, f))
            )
        return sorted(found)

    def brick_files(self, pv_name: str) -> int:
        """Files of the PV's directory as stored on the bricks (each copy of a replica):
        read without a mount, so counting adds no gluster client and works while the pass
        has the volume mounted."""
        return sum(len(filenames) for _, _, _, filenames in self._stored(pv_name))

    def _stored(self, pv_name: str) -> Iterator[tuple[str, str, list[str], list[str]]]:
        """os.walk of the PV's directory on each brick, as (base, dirpath, dirnames,
        filenames); gluster's own bookkeeping at the brick root is left out."""
        handle = self.volumes[pv_name]
        for brick in self.gluster.brick_paths(handle):
            base = os.path.join(brick, handle.subdir) if handle.subdir else brick
            for dirpath, dirnames, filenames in os.walk(base):
                if dirpath == brick:
                    dirnames[:] = [d for d in dirnames if not d.startswith(".glusterfs")]
                yield base, dirpath, dirnames, filenames

    def switch_client_graphs(self, pv_name: str, kind: str) -> None:
        """Change the client graph of the PV's volume (quick-read off: one translator fewer)
        while a client of `kind` is connected, and wait until `kind` is listed twice: a
        gluster client connects its new graph at once and leaves the old one connected
        until its next request."""
        volume = self.volumes[pv_name]
        self.gluster.gluster("volume", "set", volume.name, "performance.quick-read", "off")
        wait_for(
            lambda: self.gluster.client_list(volume).get(kind) == 2,
            interval=0.1,
            timeout=30,
            what=f"{kind} to be listed twice on {volume.name}",
        )

    def events(self, pv_name: str) -> list[dict[str, Any]]:
        items = self.plane.get_json(
            "events", "-n", "default", f"--field-selector=involvedObject.name={pv_name}"
        )["items"]
        return list(items)

    def command(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        return [
            *RECYCLER,
            "--kubeconfig",
            str(kubeconfig or self.plane.kubeconfig),
            "--selector",
            self.label,
            "--lease-name",
            self.lease,
            "--lease-namespace",
            "default",
            "--endpoints-namespace",
            self.endpoints_namespace,
            "--mount-root",
            str(self.mount_root),
            "--min-age",
            "0",
            "--report-file",
            str(self.tmp / "report.json"),
            *args,
        ]

    def run(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 240,
    ) -> RunResult:
        """Run one pass as a separate process, exactly as the CronJob would."""
        report = self.tmp / "report.json"
        report.unlink(missing_ok=True)
        proc = run_pass(self.command(*args, kubeconfig=kubeconfig), env=env, timeout=timeout)
        data = json.loads(report.read_text()) if report.exists() else {}
        return RunResult(proc.returncode, proc.stdout, proc.stderr, data)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a pass in the background (for signals and races)."""
        return subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )


def run_pass(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    clean_env: bool = False,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run one pass (`argv`: RECYCLER and its arguments) as a separate process, as the
    CronJob's pod does, and wait for it. `clean_env`: of our environment only PATH, HOME and
    LANG, so that no setting leaks in; `env` is added (a pod's ConfigMap through envFrom)."""
    keep = ("PATH", "HOME", "LANG")
    base = {k: os.environ[k] for k in keep if k in os.environ} if clean_env else dict(os.environ)
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**base, **(env or {})},
        check=False,
    )


class Follow:
    """A pass started in the background, its output read as it comes: a test waits for a log
    line (an observable point of the pass) instead of sleeping a guessed time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self._out: list[str] = []
        self._err: list[tuple[float, str]] = []  # (time.monotonic() on arrival, line)
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read_out, args=(proc.stdout,), daemon=True),
            threading.Thread(target=self._read_err, args=(proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_out(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self._out.append(line)

    def _read_err(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self._err.append((time.monotonic(), line))

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(line for _, line in self._err)

    @property
    def stdout(self) -> str:
        with self._lock:
            return "".join(self._out)

    def _find(self, text: str) -> tuple[float, str] | None:
        with self._lock:
            return next(((t, line) for t, line in self._err if text in line), None)

    def wait_for_line(self, text: str, timeout: float = 120) -> tuple[float, str]:
        """The first stderr line containing `text` and when it arrived (time.monotonic());
        fails early if the pass ends without logging it."""

        def probe() -> tuple[float, str] | None:
            found = self._find(text)
            if found is None and self.proc.poll() is not None:
                for reader in self._readers:
                    reader.join(5)
                found = self._find(text)
                if found is None:
                    raise AssertionError(f"the pass ended without logging {text!r}:\n{self.stderr}")
            return found

        return wait_for(probe, timeout=timeout, interval=0.05, what=f"{text!r} in the log")

    def wait(self, timeout: float = 240) -> int:
        """Wait for the pass to end and its output to be read; its exit code."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.wait(60)
