"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

The binaries come from `testenv/build.sh` (pinned Go modules, cached outside the repository),
for the Kubernetes version in $K8S_VERSION (MAJOR.MINOR, one of testenv/k8s-*/) or the default
below. Everything runs as child processes in one temporary directory with generated certificates;
`stop()` kills the whole process group of each and removes the directory.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization

from tests.sandbox.pki import certificate, new_key, pem_cert, pem_key, subject

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "testenv" / "build.sh"
VERSIONS_FILE = REPO / "testenv" / "versions"


def default_k8s_version() -> str:
    """The version the whole suite runs on (marked `default` in testenv/versions)."""
    for line in VERSIONS_FILE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields[1:] == ["default"]:
            return fields[0]
    raise SandboxError(f"{VERSIONS_FILE} marks no version as default")


def k8s_version() -> str:
    """The Kubernetes MAJOR.MINOR the sandbox runs: $K8S_VERSION, else the default."""
    return os.environ.get("K8S_VERSION") or default_k8s_version()


class SandboxError(RuntimeError):
    """The sandbox could not be built or started."""


def control_plane_bin_dir(version: str | None = None) -> Path:
    """Build (or find cached) control-plane binaries of `version` and return their directory."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), version or k8s_version()],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SandboxError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ControlPlane:
    """Starts and stops one sandbox control plane. Use as a context manager or start()/stop()."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="grt-kube-")))
    pv_sync_period: str = "2s"
    # Extra kube-apiserver flags (a later one wins: `--etcd-compaction-interval=1s`).
    apiserver_args: tuple[str, ...] = ()
    controller_manager: bool = True
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_port: int = 0
    bin_dir: Path | None = None
    version: str = field(default_factory=k8s_version)
    server_version: tuple[int, int] = (0, 0)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in system:masters)."""
        return self.workdir / "admin.kubeconfig"

    @property
    def kubectl(self) -> Path:
        assert self.bin_dir is not None
        return self.bin_dir / "kubectl"

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> ControlPlane:
        """Generate certificates, start the three processes, wait until the API is ready."""
        started = time.monotonic()
        self.bin_dir = control_plane_bin_dir(self.version)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        try:
            etcd_client, etcd_peer = free_port(), free_port()
            self.api_port = free_port()
            self._write_pki()
            self._spawn(
                "etcd",
                [
                    "--name=sandbox",
                    f"--data-dir={self.workdir / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-cluster=sandbox=http://127.0.0.1:{etcd_peer}",
                    *self._etcd_quiet_flags(),
                ],
            )
            pki = self.workdir / "pki"
            self._spawn(
                "kube-apiserver",
                [
                    f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none",
                    f"--secure-port={self.api_port}",
                    f"--cert-dir={pki}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--allow-privileged=true",
                    "--enable-priority-and-fairness=false",
                    "--etcd-compaction-interval=10s",
                    f"--audit-log-path={self.workdir / 'audit.log'}",
                    f"--audit-policy-file={self._write_audit_policy()}",
                    "--audit-log-format=json",
                    "--v=0",
                    *self.apiserver_args,
                ],
            )
            self._wait_ready(started + timeout)
            self.server_version = self._read_server_version()
            if not self.controller_manager:
                return self
            self._write_kubeconfig(
                self.workdir / "controller-manager.kubeconfig", "controller-manager"
            )
            self._spawn(
                "kube-controller-manager",
                [
                    f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                    f"--authentication-kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                    f"--authorization-kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    "--use-service-account-credentials=false",
                    f"--pvclaimbinder-sync-period={self.pv_sync_period}",
                    "--controllers=*",
                    "--v=1",
                    # Before 1.24 it also serves plain HTTP on 10252, so a second sandbox of
                    # the same machine could not start: not served at all here.
                    *(["--port=0"] if self.server_version < (1, 24) else []),
                ],
            )
            self._wait_controller_manager(started + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every process (SIGTERM, then SIGKILL) and remove the working directory."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if not os.environ.get("GRT_KEEP_SANDBOX"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers for tests -----------------------------------------------------------------

    def run_kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        check: bool = True,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the sandbox's kubectl against this control plane."""
        proc = subprocess.run(
            self.kubectl_argv(*args, kubeconfig=kubeconfig),
            capture_output=True,
            text=True,
            input=input_text,
            check=False,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise SandboxError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def kubectl_argv(self, *args: str, kubeconfig: Path | None = None) -> list[str]:
        """The command line of the sandbox's kubectl against this control plane."""
        return [str(self.kubectl), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]

    @property
    def strict_validation(self) -> str:
        """Reject unknown fields: server-side strict validation (kubectl 1.24+), else kubectl's
        own schema check (which 1.21-1.23 do with --validate=true)."""
        return "--validate=strict" if self.at_least(24) else "--validate=true"

    def server_dry_run(
        self, *args: str, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply --dry-run=server` with strict validation of `args` (`-k DIR`, or
        `-f -` with `input_text`); not checked: the caller reads the answer."""
        return self.run_kubectl(
            "apply",
            "--dry-run=server",
            self.strict_validation,
            *args,
            input_text=input_text,
            check=False,
        )

    def apply(self, obj: dict[str, Any] | str) -> None:
        """kubectl apply of a manifest (dict or YAML text)."""
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        self.run_kubectl("apply", "-f", "-", input_text=text)

    def get_json(self, *args: str) -> dict[str, Any]:
        """kubectl get ... -o json, parsed."""
        out = self.run_kubectl("get", *args, "-o", "json").stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def at_least(self, minor: int) -> bool:
        """Whether the API server is Kubernetes 1.`minor` or newer."""
        return self.server_version >= (1, minor)

    def service_account_kubeconfig(
        self, namespace: str, name: str, path: Path | None = None
    ) -> Path:
        """Mint a ServiceAccount token (TokenRequest API) and write a kubeconfig using it.

        Through `kubectl create --raw` rather than `kubectl create token`, which 1.23 and
        older do not have."""
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200},
        }
        proc = self.run_kubectl(
            "create",
            "--raw",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            "-f",
            "-",
            input_text=json.dumps(request),
        )
        token = str(json.loads(proc.stdout)["status"]["token"])
        path = path or self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        self._write_kubeconfig(path, f"{namespace}-{name}", token=token, namespace=namespace)
        return path

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API request as the admin, for what kubectl of every version cannot send (a
        pod's status subresource: `kubectl patch --subresource` is 1.24+)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.server}{path}", data=data, method=method, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(req, context=self._ssl_context(), timeout=30) as r:
            result: dict[str, Any] = json.loads(r.read() or b"{}")
        return result

    def audit_request_count(self, user_substring: str = "") -> int:
        """Requests recorded in the audit log (for the API-efficiency benchmark)."""
        path = self.workdir / "audit.log"
        if not path.exists():
            return 0
        count = 0
        with path.open() as fh:
            for line in fh:
                event = json.loads(line)
                if event.get("stage") != "ResponseComplete":
                    continue
                if user_substring in event.get("user", {}).get("username", ""):
                    count += 1
        return count

    # ---- internals -------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        assert self.bin_dir is not None
        log = (self.workdir / "logs" / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [str(self.bin_dir / name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.workdir,
        )
        log.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / "logs" / f"{name}.log").read_text(errors="replace")
                raise SandboxError(
                    f"{name} exited with {proc.returncode}:\n" + "\n".join(tail.splitlines()[-30:])
                )

    def _etcd_quiet_flags(self) -> list[str]:
        """No fsync and warnings only, where this etcd has the flags (3.4.13 has neither
        --unsafe-no-fsync nor --log-level without --logger=zap)."""
        assert self.bin_dir is not None
        help_text = subprocess.run(
            [str(self.bin_dir / "etcd"), "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        text = help_text.stdout + help_text.stderr
        flags = ["--unsafe-no-fsync=true"] if "--unsafe-no-fsync" in text else []
        if "--logger" in text and "capnslog" in text:
            flags.append("--logger=zap")
        return [*flags, "--log-level=warn"]

    def _read_server_version(self) -> tuple[int, int]:
        """(major, minor) of the running API server: tests that need a newer field ask
        `at_least`.

        From /version, unless it reports client-go's unstamped `v0.0.0-master`: releases
        before 1.26 serve /version from `k8s.io/client-go/pkg/version`, which testenv's build
        does not stamp. Then from `kube-apiserver --version` of the very binary started,
        which is stamped (`Kubernetes v1.25.16`).
        """
        ctx = self._ssl_context()
        with urllib.request.urlopen(f"{self.server}/version", context=ctx, timeout=5) as r:
            info = json.loads(r.read())
        reported = str(info.get("gitVersion", ""))
        found = re.match(r"v(\d+)\.(\d+)\.", reported)
        if found is None or found.groups() == ("0", "0"):
            assert self.bin_dir is not None
            binary = subprocess.run(
                [str(self.bin_dir / "kube-apiserver"), "--version"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
            found = re.search(r"v(\d+)\.(\d+)\.", binary)
            reported = f"{reported!r}, and `kube-apiserver --version` says {binary.strip()!r}"
        if found is None or found.groups() == ("0", "0"):
            raise SandboxError(f"kube-apiserver reports no version: {reported}")
        return int(found.group(1)), int(found.group(2))

    def _ssl_context(self) -> ssl.SSLContext:
        pki = self.workdir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _wait_ready(self, deadline: float) -> None:
        ctx = self._ssl_context()
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise SandboxError(f"kube-apiserver not ready in time: {last}")

    def _wait_controller_manager(self, deadline: float) -> None:
        """Ready once the token controller has given `default` its root CA ConfigMap."""
        ctx = self._ssl_context()
        url = f"{self.server}/api/v1/namespaces/default/configmaps/kube-root-ca.crt"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SandboxError("kube-controller-manager did not start its controllers in time")

    def _write_pki(self) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        ca_key = new_key()
        ca_name = subject("gluster-recycler-sandbox-ca")
        ca = certificate(ca_name, ca_key, None, ca=True)
        files: dict[str, bytes] = {
            "ca.crt": pem_cert(ca),
            "ca.key": pem_key(ca_key),
        }
        for stem, name, server in (
            ("apiserver", subject("kube-apiserver"), True),
            ("admin", subject("sandbox-admin", "system:masters"), False),
            ("controller-manager", subject("sandbox-controller-manager", "system:masters"), False),
        ):
            key = new_key()
            cert = certificate(name, key, (ca_name, ca_key), server=server)
            files[f"{stem}.crt"] = pem_cert(cert)
            files[f"{stem}.key"] = pem_key(key)
        sa_key = new_key()
        files["sa.key"] = pem_key(sa_key)
        files["sa.pub"] = sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for fname, data in files.items():
            (pki / fname).write_bytes(data)
        self._write_kubeconfig(self.kubeconfig, "admin")

    def _write_audit_policy(self) -> Path:
        path = self.workdir / "audit-policy.yaml"
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata"}],
        }
        path.write_text(yaml.safe_dump(policy))
        return path

    def _write_kubeconfig(
        self, path: Path, user: str, *, token: str | None = None, namespace: str = "default"
    ) -> None:
        pki = self.workdir / "pki"

        def b64(name: str) -> str:
            return base64.b64encode((pki / name).read_bytes()).decode()

        creds: dict[str, str] = (
            {"token": token}
            if token
            else {
                "client-certificate-data": b64(f"{user}.crt"),
                "client-key-data": b64(f"{user}.key"),
            }
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sandbox",
                    "cluster": {"server": self.server, "certificate-authority-data": b64("ca.crt")},
                }
            ],
            "users": [{"name": user, "user": creds}],
            "contexts": [
                {
                    "name": user,
                    "context": {"cluster": "sandbox", "user": user, "namespace": namespace},
                }
            ],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
