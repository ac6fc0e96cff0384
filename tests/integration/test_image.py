"""The container image, built from the Containerfile with buildah and run like the CronJob's pod.

One build per test session (`image`, session-scoped): `scripts/image.sh build` makes the
Debian base with debootstrap once per suite (kept in ~/.cache/gluster-recycler/image), then
`buildah bud` builds the Containerfile. The built image's config and layers are read back
from buildah; its root file system is a working container (`buildah from` + `buildah mount`),
in which the entrypoint runs as a container runtime would start it (tests/sandbox/image.py):
own namespaces, read-only root, the CronJob's emptyDirs, the ServiceAccount's token for the
sandbox control plane, against the sandbox glusterd. The pod spec and the ConfigMap are
rendered from manifests/ (and overlays/restricted for the gfapi pod) by kubectl kustomize,
through a kustomization that points them at the built image as an admin points them at a
mirror (`images:`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sandbox import image as img
from tests.sandbox.controlplane import ControlPlane
from tests.sandbox.gluster import GlusterServer
from tests.sandbox.gluster_fixtures import VolumeFactory
from tests.sandbox.kustomize import downstream
from tests.sandbox.objects import endpoints, gluster_pv, pvc, wait_for
from tests.sandbox.requirements import missing

pytestmark = [pytest.mark.cluster, pytest.mark.gluster, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
NS = "gluster-recycler"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
# What the Containerfile may add over its base (uncompressed; 166 MB measured): Debian's
# python3, the gluster client, CLI and libgfapi with their libraries (about 113 MB) and the
# venv without bytecode (about 53 MB).
ADDED_BUDGET_MB = 180
OCI_LABELS = ("source", "version", "licenses", "revision", "title")


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def image() -> img.BuiltImage:
    """The image, built once per session (scripts/image.sh build)."""
    reason = img.unavailable_reason()
    if reason is not None:
        missing(reason)
    built = img.build()
    print(
        f"\nimage {built.name}: built in {built.seconds:.0f}s; base "
        f"{sum(built.base_layer_sizes) / 1e6:.1f} MB, added {built.added_bytes / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return built


@pytest.fixture(scope="module")
def root(image: img.BuiltImage) -> Iterator[Path]:
    """One working container of the image for the module: every run mounts it read-only."""
    with img.working_root(image.name) as path:
        yield path


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane) -> ControlPlane:
    """`kubectl apply -k manifests/`: the ServiceAccount and its roles, for real."""
    control_plane.run_kubectl("apply", "-k", str(REPO / "manifests"))
    return control_plane


def rendered(
    plane: ControlPlane, path: Path, image: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The CronJob's pod spec and the ConfigMap's data, as kubectl kustomize renders them;
    with `image`, through a kustomization of the admin's own that points the manifests at it
    (`images:`), as for a mirror."""
    with tempfile.TemporaryDirectory(prefix="grt-kustomize-") as tmp:
        target = downstream(Path(tmp), path, image=image) if image else path
        out = plane.run_kubectl("kustomize", str(target)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if image:
        assert pod["containers"][0]["image"] == image, "the images: override was ignored"
    name = pod["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
    return pod, {k: str(v) for k, v in (configmap.get("data") or {}).items()}


def service_account(plane: ControlPlane, tmp_path: Path) -> dict[str, str]:
    """The projected ServiceAccount volume: a real token of gluster-recycler, the CA, the NS."""
    kubeconfig = plane.service_account_kubeconfig(NS, "gluster-recycler", tmp_path / "sa.kc")
    token = str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"])
    return {
        "token": token,
        "ca.crt": (plane.workdir / "pki" / "ca.crt").read_text(),
        "namespace": NS,
    }


def in_cluster(plane: ControlPlane) -> dict[str, str]:
    """What the kubelet sets for the kubernetes Service (here: the sandbox API server)."""
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(plane.api_port)}


def failed_pv(plane: ControlPlane, volume: Any, unique: str) -> str:
    """A glusterfs PV with Recycle policy whose claim was deleted: phase Failed."""
    ns = name = f"img-{unique}"
    admin = f"gl-{unique}"  # the admin's Endpoints: not in the claim's (tenant's) namespace
    plane.run_kubectl("create", "namespace", ns)
    plane.run_kubectl("create", "namespace", admin)
    plane.apply(endpoints("glusterfs-cluster", admin, list(volume.hosts)))
    plane.apply(
        gluster_pv(name, volume.path, endpoints_namespace=admin, labels={"grt-image": unique})
    )
    plane.apply(pvc("claim", ns, volume_name=name))
    wait_for(lambda: phase(plane, name) == "Bound", what="the PV to bind")
    plane.run_kubectl("delete", "pvc", "claim", "-n", ns, "--wait=false")
    wait_for(lambda: phase(plane, name) == "Failed", what="the PV to fail recycling")
    return name


def phase(plane: ControlPlane, name: str) -> str:
    return str(plane.get_json("pv", name).get("status", {}).get("phase", ""))


def entries(server: GlusterServer, volume: Any) -> list[str]:
    with server.mounted(volume) as mounted:
        return sorted(os.listdir(mounted))


def run_pod(
    plane: ControlPlane,
    root: Path,
    image: img.BuiltImage,
    overlay: Path,
    settings: dict[str, str],
    tmp_path: Path,
    *,
    command: list[str] | None = None,
) -> img.PodRun:
    """The rendered pod of `overlay` pointed at the built image, with `settings` layered over
    the ConfigMap."""
    pod, configmap = rendered(plane, overlay, image.name)
    container = pod["containers"][0]
    if command is not None:
        container["command"], container["args"] = command, []
    env = img.container_env(image.config, container, {**configmap, **settings}, NS)
    env.update(in_cluster(plane))
    workdir = tmp_path / f"pod-{len(list(tmp_path.glob('pod-*')))}"
    return img.run_like_a_pod(
        root, image.config, pod, env, service_account(plane, tmp_path), workdir
    )


# ---- what buildah stored ------------------------------------------------------------------


def label_problems(config: dict[str, Any]) -> list[str]:
    """What is wrong with the OCI labels of an image config (empty: nothing)."""
    labels = config.get("Labels") or {}
    problems = [
        f"no org.opencontainers.image.{k}"
        for k in OCI_LABELS
        if f"org.opencontainers.image.{k}" not in labels
    ]
    if labels.get("org.opencontainers.image.version") != VERSION:
        problems.append(f"version {labels.get('org.opencontainers.image.version')!r} != {VERSION}")
    if labels.get("org.opencontainers.image.licenses") != "Apache-2.0":
        problems.append(f"licenses {labels.get('org.opencontainers.image.licenses')!r}")
    return problems


def git(*args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_image_carries_the_oci_labels(image: img.BuiltImage) -> None:
    assert label_problems(image.config) == []
    labels = image.config["Labels"]
    assert labels["org.opencontainers.image.revision"] == git("rev-parse", "HEAD")
    source = labels["org.opencontainers.image.source"]
    # The clone URL, without any user:password@ part (empty when the clone has no remote).
    assert source == re.sub(r"://[^/@]*@", "://", git("remote", "get-url", "origin"))
    # The check can fail: the base image carries none of these labels.
    base = img.buildah("inspect", "--type", "image", img.base_image_name()).stdout
    assert len(label_problems(yaml.safe_load(base)["OCIv1"]["config"])) >= len(OCI_LABELS)


def test_image_config_is_what_the_manifests_rely_on(
    image: img.BuiltImage, control_plane: ControlPlane
) -> None:
    config = image.config
    assert config["Entrypoint"] == ["gluster-recycler"], "exec form: the program gets SIGTERM"
    assert config.get("User") == "10001", "non-root by default (overlays/restricted's uid)"
    env = dict(str(e).partition("=")[::2] for e in config["Env"])
    assert env["PATH"].startswith("/opt/gluster-recycler/bin:")
    pod, _ = rendered(control_plane, REPO / "manifests")
    assert pod["containers"][0]["command"] == config["Entrypoint"]


def test_image_is_small_and_holds_no_build_tools(image: img.BuiltImage, root: Path) -> None:
    for path in (
        "usr/sbin/gluster",
        "usr/sbin/glusterfs",
        "sbin/mount.glusterfs",
        "usr/bin/getfattr",
        "usr/lib/x86_64-linux-gnu/libgfapi.so.0",
        "opt/gluster-recycler/bin/gluster-recycler",
    ):
        assert (root / path).exists(), f"/{path} missing"
    leftovers = [
        p
        for p in (
            "usr/bin/gcc",
            "usr/bin/cc",
            "usr/bin/make",
            "usr/bin/ld",
            "usr/bin/pip3",
            "usr/sbin/glusterd",
        )
        if (root / p).exists() or (root / p).is_symlink()
    ]
    # The build's CA bundle and pip.conf were mounted for the RUN steps only: buildah leaves
    # the empty mount points behind, never their content.
    leftovers += [
        p
        for p in ("etc/pip.conf", "run/host-ca.crt")
        if (root / p).exists() and (root / p).stat().st_size > 0
    ]
    leftovers += [str(p) for p in (root / "opt/gluster-recycler/bin").glob("pip*")]
    leftovers += [str(p) for p in (root / "var/lib/apt/lists").glob("*Packages*")]
    site = next((root / "opt/gluster-recycler/lib").glob("python3*/site-packages"))
    leftovers += [str(p) for p in site.glob("kubernetes/aio")]
    leftovers += [str(p) for p in site.glob("aiohttp*")]
    leftovers += [str(p) for p in list((root / "opt").rglob("__pycache__"))[:3]]
    assert leftovers == []
    status = (root / "var/lib/dpkg/status").read_text()
    installed = {
        block.split("\n", 1)[0].removeprefix("Package: ")
        for block in status.split("\n\n")
        if "Status: install ok installed" in block
    }
    assert {"glusterfs-client", "glusterfs-cli", "libgfapi0", "python3", "attr"} <= installed
    extra = installed & {
        "glusterfs-server",
        "python3-venv",
        "python3-pip",
        "build-essential",
        "gcc",
        "cpp",
        "make",
        "libpython3.11-dev",
    }
    assert extra == set()
    added_mb = image.added_bytes / 1e6
    assert added_mb <= ADDED_BUDGET_MB, f"the Containerfile adds {added_mb:.0f} MB"
    assert len(image.layer_sizes) == len(image.base_layer_sizes) + 1, "one layer over the base"


def test_tools_run_in_the_image(
    installed: ControlPlane, image: img.BuiltImage, root: Path, tmp_path: Path
) -> None:
    run = run_pod(
        installed,
        root,
        image,
        REPO / "manifests",
        {},
        tmp_path,
        command=["sh", "-c", "gluster --version && glusterfs --version && gluster-recycler --help"],
    )
    assert run.returncode == 0, run.stderr
    assert "glusterfs 10.3" in run.stdout
    assert "usage: gluster-recycler" in run.stdout


# ---- passes in the image ------------------------------------------------------------------


@pytest.mark.gluster
def test_cronjob_pod_dry_runs_then_recycles_a_volume(
    installed: ControlPlane,
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    image: img.BuiltImage,
    root: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    """manifests/: root, privileged, FUSE, shareProcessNamespace, read-only root."""
    volume = gluster_volume()
    gluster_server.write_files(volume, {"data/a.txt": "a" * 4096, ".hidden": "h", "b.bin": b"\0"})
    name = failed_pv(installed, volume, unique)
    settings = {"PV_SELECTOR": f"grt-image={unique}", "MIN_AGE": "0"}

    dry = run_pod(
        installed, root, image, REPO / "manifests", {**settings, "DRY_RUN": "true"}, tmp_path
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "1 would-recycle" in dry.stdout, dry.stdout + dry.stderr
    assert entries(gluster_server, volume) == [".hidden", "b.bin", "data"]
    assert phase(installed, name) == "Failed"

    run = run_pod(installed, root, image, REPO / "manifests", settings, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 recycled, 0 failed" in run.stdout, output
    wait_for(lambda: phase(installed, name) == "Available", timeout=60, what="PV Available")
    assert entries(gluster_server, volume) == []
    assert run.termination_message.strip(), "no termination message in /dev/termination-log"
    token = service_account(installed, tmp_path)["token"]
    assert token[:40] not in output
    # The FUSE client's daemon, re-parented to the pod's init after the unmount, was reaped.
    reaped = re.search(r"pod init: reaped (\d+) orphaned", run.stderr)
    assert reaped and int(reaped.group(1)) >= 1, run.stderr[-2000:]
    installed.run_kubectl("delete", "pv", name, "--wait=false")
    installed.run_kubectl("delete", "namespace", name, "--wait=false")
    installed.run_kubectl("delete", "namespace", f"gl-{unique}", "--wait=false")


@pytest.mark.gluster
def test_restricted_pod_recycles_with_gfapi_as_10001_without_capabilities(
    installed: ControlPlane,
    gluster_server: GlusterServer,
    gluster_volume: VolumeFactory,
    image: img.BuiltImage,
    root: Path,
    unique: str,
    tmp_path: Path,
) -> None:
    """overlays/restricted: uid 10001, every capability dropped, no_new_privs, gfapi."""
    restricted = REPO / "overlays" / "restricted"
    probe = run_pod(
        installed,
        root,
        image,
        restricted,
        {},
        tmp_path,
        command=[
            "sh",
            "-c",
            "id -u; id -g; grep -E '^(Cap(Prm|Eff|Bnd)|NoNewPrivs)' "
            "/proc/self/status; touch /probe 2>&1 || true; echo $$",
        ],
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[:2] == ["10001", "10001"], probe.stdout
    caps = dict(line.split(":\t") for line in lines[2:6])
    assert caps == {
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
    }, caps
    assert "Read-only file system" in lines[6], probe.stdout
    assert lines[7] == "1", "the container's process is PID 1 (no shared process namespace)"

    volume = gluster_volume()
    gluster_server.write_files(volume, {"x/y/z.txt": "z" * 9000, ".dot": "d"})
    name = failed_pv(installed, volume, unique)
    run = run_pod(
        installed,
        root,
        image,
        restricted,
        {"PV_SELECTOR": f"grt-image={unique}", "MIN_AGE": "0"},
        tmp_path,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 recycled, 0 failed" in run.stdout, output
    wait_for(lambda: phase(installed, name) == "Available", timeout=60, what="PV Available")
    assert entries(gluster_server, volume) == []
    installed.run_kubectl("delete", "pv", name, "--wait=false")
    installed.run_kubectl("delete", "namespace", name, "--wait=false")
    installed.run_kubectl("delete", "namespace", f"gl-{unique}", "--wait=false")
