"""The container image: built for real with buildah (scripts/image.sh) and run like a pod.

`build()` runs `scripts/image.sh build` (a locally made Debian base, kept between runs; then
`buildah bud` of the Containerfile) and reads back what buildah stored: the image config and
the size of every layer. `working_root()` gives a fresh working container of the image,
mounted (`buildah from` + `buildah mount`). `run_like_a_pod()` starts the image's entrypoint
in that root the way a container runtime starts a pod's container: its own PID, mount, UTS
and IPC namespaces; /proc, /sys, a /dev with only the runtime's default devices (plus
/dev/fuse when privileged); the pod's emptyDirs as tmpfs; the ServiceAccount's token, CA and
namespace read-only at the in-cluster path; the root file system read-only when the
securityContext says so; then chroot, the capability bounding set emptied when all are
dropped, no_new_privs, the uid and gid, and exec of the command with the image's and the
pod's environment. The network namespace is the host's: the API server and glusterd of the
sandbox listen there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "image.sh"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The devices every OCI runtime creates (runc's default list); a privileged container gets the
# host's, of which the recycler needs /dev/fuse.
DEFAULT_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


class ImageError(RuntimeError):
    """The image could not be built or run."""


def unavailable_reason() -> str | None:
    """Why the image cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (buildah with the vfs driver and chroot isolation, mounts)"
    for tool in ("buildah", "debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} not installed (run `make setup`)"
    return None


def buildah(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """buildah on the project's own image storage (see scripts/image.sh)."""
    proc = subprocess.run(
        ["bash", str(SCRIPT), "buildah", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise ImageError(f"buildah {shlex.join(args)}: exit {proc.returncode}: {proc.stderr}")
    return proc


@dataclass(frozen=True)
class BuiltImage:
    """What buildah stored: the name, the OCI config and every layer's size (base first)."""

    name: str
    seconds: float
    log: str
    config: dict[str, Any]
    layer_sizes: tuple[int, ...]
    base_layer_sizes: tuple[int, ...]

    @property
    def added_bytes(self) -> int:
        """What the Containerfile adds over its base: the layers the base does not have."""
        return sum(self.layer_sizes[len(self.base_layer_sizes) :])


def _inspect(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image).stdout)
    return data


def _layer_sizes(image: str) -> tuple[int, ...]:
    """Uncompressed size of each layer, as containers/storage recorded it at commit."""
    diff_ids = _inspect(image)["OCIv1"]["rootfs"]["diff_ids"]
    info = json.loads(buildah("info").stdout)
    layers_json = Path(info["store"]["GraphRoot"]) / "vfs-layers" / "layers.json"
    sizes = {
        layer.get("diff-digest"): int(layer.get("diff-size", 0))
        for layer in json.loads(layers_json.read_text())
    }
    missing = [d for d in diff_ids if d not in sizes]
    if missing:
        raise ImageError(f"{image}: layers not in the store: {missing}")
    return tuple(sizes[d] for d in diff_ids)


def base_image_name() -> str:
    return f"localhost/debian:{os.environ.get('DEBIAN_SUITE', 'bookworm')}-slim"


def build() -> BuiltImage:
    """`scripts/image.sh build`: the base image if it is missing, then the Containerfile."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT), "build"],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise ImageError(f"image build failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    name = proc.stdout.strip().splitlines()[-1]
    return BuiltImage(
        name=name,
        seconds=seconds,
        log=proc.stderr,
        config=_inspect(name)["OCIv1"]["config"],
        layer_sizes=_layer_sizes(name),
        base_layer_sizes=_layer_sizes(base_image_name()),
    )


@contextlib.contextmanager
def working_root(image: str) -> Iterator[Path]:
    """A fresh working container of `image`, mounted; removed afterwards."""
    name = f"grt-run-{uuid.uuid4().hex[:8]}"
    buildah("from", "--pull=never", "--name", name, image)
    try:
        yield Path(buildah("mount", name).stdout.strip())
    finally:
        buildah("umount", name, check=False)
        buildah("rm", name, check=False)


# ---- running it like a pod ----------------------------------------------------------------

# PID 1 of a pod with shareProcessNamespace (what the pause container does): start the
# container's process, forward SIGTERM, reap every child including re-parented orphans.
PAUSE = """
import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
signal.signal(signal.SIGTERM, lambda s, f: child.send_signal(s))
orphans = 0
while True:
    pid, status = os.wait()
    if pid == child.pid:
        break
    orphans += 1
print(f"pod init: reaped {orphans} orphaned process(es)", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""

# The last steps of a runtime's container init (runc's): chroot into the prepared root, empty
# the capability bounding set when every capability is dropped, set no_new_privs, drop the
# supplementary groups, set gid and uid (from 0 to non-zero clears the permitted and
# effective capabilities), and exec the command with exactly the container's environment.
LAUNCH = """
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
os.chroot(spec["root"])
os.chdir(spec["cwd"])
if spec["drop_all_caps"]:
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP; EINVAL past the last one
            break
if spec["no_new_privs"] and libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
os.setgroups([])
os.setgid(spec["gid"])
os.setuid(spec["uid"])
os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
"""


@dataclass(frozen=True)
class PodRun:
    """What the container left: exit code, logs and the termination message."""

    returncode: int
    stdout: str
    stderr: str
    termination_message: str


def _resolve_in_root(root: Path, path: str) -> str:
    """`path` with symlinks resolved inside `root`, as a runtime does for mount points."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        candidate = os.path.join(current, part)
        host = root / candidate.lstrip("/")
        if host.is_symlink():
            link = os.readlink(host)
            current = os.path.normpath(
                link if link.startswith("/") else os.path.join(current, link)
            )
        else:
            current = candidate
    return current


def _home(root: Path, uid: int) -> str:
    """HOME as runtimes set it: the user's entry in the image's /etc/passwd, else /."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 5 and fields[2] == str(uid):
            return fields[5]
    return "/"


def container_env(
    image_config: Mapping[str, Any],
    container: Mapping[str, Any],
    configmap: Mapping[str, str],
    namespace: str,
) -> dict[str, str]:
    """The environment a kubelet gives the container: the image's Env, then envFrom, then env."""
    env: dict[str, str] = {}
    for item in image_config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    for source in container.get("envFrom") or []:
        if "configMapRef" not in source:
            raise ImageError(f"envFrom {source}: only configMapRef is simulated")
        env.update(configmap)
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
        else:
            raise ImageError(f"env {item['name']}: this valueFrom is not simulated")
    return env


def run_like_a_pod(
    root: Path,
    image_config: Mapping[str, Any],
    pod: Mapping[str, Any],
    env: Mapping[str, str],
    service_account: Mapping[str, str],
    workdir: Path,
    *,
    hostname: str = "gluster-recycler-pod",
    timeout: float = 600,
) -> PodRun:
    """Run the pod's first container from the mounted image `root` (see the module doc)."""
    container: Mapping[str, Any] = pod["containers"][0]
    pod_security = pod.get("securityContext") or {}
    security = {**pod_security, **(container.get("securityContext") or {})}
    privileged = bool(security.get("privileged"))
    image_user = str(image_config.get("User") or "0")
    uid = int(security.get("runAsUser", image_user.partition(":")[0] or 0))
    gid = int(security.get("runAsGroup", image_user.partition(":")[2] or 0))
    if security.get("runAsNonRoot") and uid == 0:
        raise ImageError("runAsNonRoot with uid 0: the kubelet would refuse to start it")
    drop_all = "ALL" in ((security.get("capabilities") or {}).get("drop") or [])
    no_new_privs = security.get("allowPrivilegeEscalation") is False
    argv = list(container.get("command") or image_config.get("Entrypoint") or [])
    argv += list(
        container.get("args") or ([] if container.get("command") else image_config.get("Cmd") or [])
    )
    emptydirs = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    mounts = []
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in emptydirs:
            raise ImageError(f"volume {mount['name']}: only emptyDir is simulated")
        mounts.append(_resolve_in_root(root, mount["mountPath"]))

    merged = workdir / "rootfs"
    merged.mkdir(parents=True, exist_ok=True)
    sa_host = workdir / "serviceaccount"
    sa_host.mkdir(exist_ok=True)
    for name, value in service_account.items():
        (sa_host / name).write_text(value)
        (sa_host / name).chmod(0o644)
    termination = workdir / "termination-log"
    termination.write_text("")
    termination.chmod(0o666)
    sa_dir = _resolve_in_root(root, SA_DIR)
    q = shlex.quote
    devices = [*DEFAULT_DEVICES, *(["fuse"] if privileged else [])]
    lines = [
        "set -e",
        f"M={q(str(merged))}",
        f'mount --bind {q(str(root))} "$M"',
        'for f in etc/hosts etc/resolv.conf etc/hostname; do [ -e "$M/$f" ] || : > "$M/$f"; done',
        'mount -t proc proc "$M/proc"',
        'mount -t sysfs -o ro sysfs "$M/sys"',
        'mount -t tmpfs -o mode=755,nosuid tmpfs "$M/dev"',
        f"for d in {' '.join(devices)}; do "
        ': > "$M/dev/$d"; mount --bind "/dev/$d" "$M/dev/$d"; done',
        'ln -s /proc/self/fd "$M/dev/fd"; mkdir "$M/dev/shm" "$M/dev/pts"',
        'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/dev/shm"',
        ': > "$M/dev/termination-log"',
        f'mount --bind {q(str(termination))} "$M/dev/termination-log"',
    ]
    # In path order, each mount point made right before its mount; emptyDirs are world
    # writable (the kubelet makes them 0777), the ServiceAccount's files read-only.
    for path in sorted([*mounts, sa_dir]):
        lines.append(f'mkdir -p "$M"{q(path)}')
        if path == sa_dir:
            lines.append(f'mount --bind {q(str(sa_host))} "$M"{q(path)}')
            lines.append(f'mount -o remount,bind,ro "$M"{q(path)}')
        else:
            lines.append(f'mount -t tmpfs -o mode=0777 tmpfs "$M"{q(path)}')
    lines += [
        'mount --bind /etc/hosts "$M/etc/hosts"',
        'mount --bind /etc/resolv.conf "$M/etc/resolv.conf"',
        f"hostname {q(hostname)}",
    ]
    if security.get("readOnlyRootFilesystem"):
        lines.append('mount -o remount,bind,ro "$M"')
    spec = {
        "root": str(merged),
        "cwd": str(image_config.get("WorkingDir") or "/"),
        "drop_all_caps": drop_all,
        "no_new_privs": no_new_privs,
        "uid": uid,
        "gid": gid,
        "argv": argv,
        "env": {"HOSTNAME": hostname, "HOME": _home(root, uid), **env},
    }
    launch = [sys.executable, "-c", LAUNCH, json.dumps(spec)]
    # shareProcessNamespace: a pause-like init (outside the image, as pause is) is PID 1 and
    # reaps orphans; otherwise the program itself is PID 1.
    init = [sys.executable, "-c", PAUSE] if pod.get("shareProcessNamespace") else []
    lines.append(f"exec {shlex.join([*init, *launch])}")
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
            "--uts",
            "--ipc",
            "sh",
            "-c",
            "\n".join(lines),
        ],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    return PodRun(proc.returncode, proc.stdout, proc.stderr, termination.read_text())
