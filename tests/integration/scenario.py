"""End-to-end scenarios: real gluster volumes behind real PVs whose claims were deleted.

Each test gets its own label (`--selector`), lease and mount root, so tests sharing the
session's control plane never see each other's volumes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer, GlusterVolumeHandle
from tests.sandbox.objects import endpoints, gluster_pv, pvc, wait_for

REPO = Path(__file__).resolve().parents[2]


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
    namespace: str = "default"
    volumes: dict[str, GlusterVolumeHandle] = field(default_factory=dict)

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
        self.plane.apply(endpoints("glusterfs-cluster", self.namespace, list(self.gluster.hosts)))

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
    ) -> str:
        """A gluster volume with `files`, a PV for it that was bound and whose claim was
        deleted; returns the PV name once the real controller moved it to Failed/Released."""
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
        self.plane.apply(
            gluster_pv(
                pv_name,
                path,
                policy=policy,
                labels=all_labels,
                annotations=dict(annotations or {}),
                storage_class=storage_class,
            )
        )
        claim = f"claim-{pv_name}"
        self.plane.apply(
            pvc(claim, self.namespace, volume_name=pv_name, storage_class=storage_class)
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
        """Every path below the PV's directory, read through a fresh FUSE mount."""
        handle = self.volumes[pv_name]
        with self.gluster.mounted(handle) as root:
            base = os.path.join(root, handle.subdir) if handle.subdir else root
            found = []
            for dirpath, dirnames, filenames in os.walk(base):
                for entry in dirnames + filenames:
                    found.append(os.path.relpath(os.path.join(dirpath, entry), base))
            return sorted(found)

    def events(self, pv_name: str) -> list[dict[str, Any]]:
        items = self.plane.get_json(
            "events", "-n", "default", f"--field-selector=involvedObject.name={pv_name}"
        )["items"]
        return list(items)

    def command(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "recycler_job",
            "--kubeconfig",
            str(kubeconfig or self.plane.kubeconfig),
            "--selector",
            self.label,
            "--lease-name",
            self.lease,
            "--lease-namespace",
            "default",
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
        proc = subprocess.run(
            self.command(*args, kubeconfig=kubeconfig),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            check=False,
        )
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
