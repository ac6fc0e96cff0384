#!/usr/bin/env bash
# Verifies the container image recipe without a container engine (none exists here).
#
#  1. A Debian bookworm root made with `debootstrap --variant=minbase`, given the settings the
#     official debian:bookworm-slim image carries (apt/dpkg configuration, policy-rc.d, sources,
#     no package lists), cached under ~/.cache/gluster-recycler/image-check/base.
#  2. The Containerfile itself is replayed into it: every stage, ARG, ENV, WORKDIR, COPY
#     (honouring .containerignore) and RUN, each RUN in a chroot. The result is the image's
#     root file system, cached (keyed by the hash of the recipe and every file it copies).
#  3. Checks on that root: the entrypoint's --help; the glusterfs client and CLI present;
#     no compiler, pip or glusterfs-server left behind.
#  4. A pod-like run against a real sandbox (control plane from testenv/, glusterd on this
#     machine, `kubectl apply -k manifests/`): the program runs in its own PID and mount
#     namespaces (under a pause-like init when the pod shares its process namespace, else as
#     PID 1), on a read-only root with the CronJob's volumeMounts as tmpfs, its environment
#     from the ConfigMap and the CronJob's env, in-cluster credentials of the gluster-recycler
#     ServiceAccount. A --dry-run pass must touch nothing; a real pass must wipe the volume,
#     make the PV Available and write the termination message.
#
# Usage: scripts/verify_image.sh [--rebuild] [--build-only]
# Needs root (debootstrap, chroot, mount), network to the Debian mirror and PyPI on a cold run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${GLUSTER_RECYCLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gluster-recycler}/image-check
rebuild=0
build_only=0
for arg in "$@"; do
  case $arg in
    --rebuild) rebuild=1 ;;
    --build-only) build_only=1 ;;
    *) echo "usage: $0 [--rebuild] [--build-only]" >&2; exit 2 ;;
  esac
done

say() { echo "image-check: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mount)"
for tool in unshare chroot mount; do command -v "$tool" >/dev/null || die "$tool not found"; done
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
[ -x "$repo/.venv/bin/python" ] || die "no .venv: run 'make setup' first"

# The Debian mirror this machine uses (deb822 or one-line sources), else deb.debian.org.
mirror=$(
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 |
    tr -d ' ' || true
)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
security_mirror=${mirror%/debian}/debian-security

mkdir -p "$cache"
base=$cache/base
if [ ! -e "$base/.grt-complete" ]; then
  say "debootstrap --variant=minbase bookworm from $mirror (once; cached in $base)"
  rm -rf "$base" "$base.tmp"
  debootstrap --variant=minbase bookworm "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $cache/debootstrap.log"
fi
if [ ! -e "$base/.grt-slim" ]; then
  [ -d "$base.tmp" ] && target=$base.tmp || target=$base
  # What debian:bookworm-slim carries on top of a minbase debootstrap (debuerreotype's
  # docker and slimify steps): no daemons started by postinst scripts, no .deb cache, no
  # translations, no docs/man pages, and the three suites in deb822 form.
  printf '#!/bin/sh\nexit 101\n' > "$target/usr/sbin/policy-rc.d"
  chmod 755 "$target/usr/sbin/policy-rc.d"
  cat > "$target/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$target/etc/apt/apt.conf.d/docker-autoremove-suggests"
  echo 'Acquire::GzipIndexes "true";' > "$target/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' > "$target/etc/apt/apt.conf.d/docker-no-languages"
  cat > "$target/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  rm -f "$target/etc/apt/sources.list"
  cat > "$target/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  chroot "$target" apt-get clean
  rm -rf "$target"/var/lib/apt/lists/* "$target"/var/cache/apt/*.bin "$target/etc/resolv.conf" \
    "$target/etc/hostname"
  touch "$target/.grt-slim"
  if [ "$target" = "$base.tmp" ]; then
    touch "$target/.grt-complete"
    mv "$target" "$base"
  fi
fi

cd "$repo"
export GRT_IMAGE_CACHE=$cache GRT_REBUILD=$rebuild GRT_BUILD_ONLY=$build_only
exec "$repo/.venv/bin/python" - <<'PY'
"""Replay the Containerfile in a chroot, then check the result (see the top of the script)."""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path.cwd()
CACHE = Path(os.environ["GRT_IMAGE_CACHE"])
BASE = CACHE / "base"
ROOTFS = CACHE / "rootfs"
IMAGE_JSON = CACHE / "image.json"
SUPPORTED_BASE = "debian:bookworm-slim"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def say(message: str) -> None:
    print(f"image-check: {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    say(f"FAILED: {message}")
    raise SystemExit(1)


# ---- Containerfile ------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuations joined and comments dropped."""
    result: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and (not line or line.startswith("#")):
            continue  # comments and blank lines inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        text = " ".join(part for part in pending if part)
        pending = []
        word, _, rest = text.partition(" ")
        result.append((start, word.upper(), rest.strip()))
    if pending:
        fail(f"{path}: unfinished continuation at the end")
    return result


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", value, text)


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.containerignore (else .dockerignore) as (negated, regex) in order."""
    for name in (".containerignore", ".dockerignore"):
        path = REPO / name
        if path.exists():
            break
    else:
        return []
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        pattern = pattern.strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((negated, re.compile(f"^{regex}$")))
    return rules


RULES = ignore_rules()


def ignored(rel: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in RULES:
        if any(regex.match(p) for p in prefixes):
            excluded = not negated
    return excluded


def context_files(source: str) -> list[Path]:
    """The files of the build context under `source` that the ignore file lets through."""
    top = REPO / source
    if not top.exists():
        fail(f"COPY source {source} does not exist")
    candidates = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    files = [p for p in candidates if not ignored(p.relative_to(REPO).as_posix())]
    if not files:
        fail(f"COPY source {source}: everything is excluded by the ignore file")
    return files


# ---- running inside a root ----------------------------------------------------------------


# A build host behind a TLS-inspecting proxy (as this one) lends pip its CA bundle for the
# RUN steps only (copied in before, removed after, like resolv.conf), the way an engine would
# get it through a build secret; it never stays in the image.
HOST_CA = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE")
BUILD_CA = "/etc/grt-build-ca.crt"


def run_in_root(root: Path, command: list[str], env: dict[str, str], cwd: str) -> None:
    """Like a RUN step: own mount and PID namespaces, /proc, /dev and DNS from the host."""
    resolv = root / "etc" / "resolv.conf"
    shutil.copyfile("/etc/resolv.conf", resolv)
    build_ca = root / BUILD_CA.lstrip("/")
    if HOST_CA and os.path.isfile(HOST_CA):
        shutil.copyfile(HOST_CA, build_ca)
        env = {**env, "PIP_CERT": BUILD_CA}
    env_args = [f"{k}={v}" for k, v in env.items()]
    script = "\n".join(
        [
            "set -e",
            f"mount -t proc proc {shlex.quote(str(root / 'proc'))}",
            f"mount --rbind /dev {shlex.quote(str(root / 'dev'))}",
            f"exec chroot {shlex.quote(str(root))} /usr/bin/env -i "
            + " ".join(shlex.quote(a) for a in env_args)
            + " /bin/sh -c "
            + shlex.quote(f"cd {shlex.quote(cwd)} && exec " + shlex.join(command)),
        ]
    )
    try:
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
             "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        resolv.unlink(missing_ok=True)
        build_ca.unlink(missing_ok=True)
    if proc.returncode != 0:
        fail(f"step exited with {proc.returncode}: {shlex.join(command)}")


def fresh_root(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    subprocess.run(["cp", "-a", f"{BASE}/.", str(path)], check=True)
    for marker in (".grt-complete", ".grt-slim"):
        (path / marker).unlink(missing_ok=True)


def build(containerfile: Path, work: Path) -> dict[str, object]:
    """Replay every instruction; return the final stage's image config."""
    steps = instructions(containerfile)
    global_args: dict[str, str] = {}
    stages: dict[str, Path] = {}
    stage_index = -1
    root: Path | None = None
    config: dict[str, object] = {}
    variables: dict[str, str] = {}
    env: dict[str, str] = {}
    workdir = "/"
    for line, word, args in steps:
        where = f"Containerfile:{line} {word}"
        if word == "FROM":
            stage_index += 1
            tokens = substitute(args, global_args).split()
            image = tokens[0]
            name = tokens[2] if len(tokens) == 3 and tokens[1].upper() == "AS" else None
            if image in stages:
                fail(f"{where}: FROM an earlier stage is not supported here")
            if image != SUPPORTED_BASE:
                fail(f"{where}: base {image!r}: only {SUPPORTED_BASE} can be reproduced")
            root = work / f"stage-{stage_index}"
            say(f"{where} {image} (stage {name or stage_index}: fresh copy of the base root)")
            fresh_root(root)
            stages[str(stage_index)] = root
            if name:
                stages[name] = root
            variables = {}
            env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": "buildkitsandbox"}
            workdir = "/"
            config = {"env": {"PATH": DEFAULT_PATH}, "entrypoint": None, "user": "0"}
            continue
        if word == "ARG":
            name, sep, default = args.partition("=")
            if root is None:
                global_args[name] = default
            else:
                variables[name] = default if sep else global_args.get(name, "")
            continue
        if root is None:
            fail(f"{where}: before the first FROM")
        assert root is not None
        if word == "ENV":
            for token in shlex.split(substitute(args, {**variables, **env})):
                key, sep, value = token.partition("=")
                if not sep:
                    fail(f"{where}: use the KEY=value form")
                env[key] = value
                config["env"][key] = value  # type: ignore[index]
        elif word == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, substitute(args, {**variables, **env})))
            (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            tokens = shlex.split(substitute(args, {**variables, **env}))
            flags = [t for t in tokens if t.startswith("--")]
            paths = [t for t in tokens if not t.startswith("--")]
            sources, dest = paths[:-1], paths[-1]
            from_stage = None
            for flag in flags:
                if flag.startswith("--from="):
                    from_stage = flag.split("=", 1)[1]
                else:
                    fail(f"{where}: flag {flag} not supported here")
            target = dest if dest.startswith("/") else os.path.join(workdir, dest)
            if from_stage is not None:
                if from_stage not in stages:
                    fail(f"{where}: no stage {from_stage}")
                for source in sources:
                    src = stages[from_stage] / source.lstrip("/")
                    dst = root / target.lstrip("/")
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
                say(f"{where} --from={from_stage} {' '.join(sources)} -> {target}")
                continue
            for source in sources:
                top = REPO / source
                for file in context_files(source):
                    if top.is_dir():
                        rel = file.relative_to(top)
                        dst = root / target.lstrip("/") / rel
                    elif dest.endswith("/") or len(sources) > 1:
                        dst = root / target.lstrip("/") / file.name
                    else:
                        dst = root / target.lstrip("/")
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, dst)
            say(f"{where} {' '.join(sources)} -> {target}")
        elif word == "RUN":
            if args.startswith("["):
                command = json.loads(args)
            else:
                command = ["/bin/sh", "-c", args]
            run_env = {**env, **variables}
            say(f"{where} {args[:100]}{'...' if len(args) > 100 else ''}")
            started = time.monotonic()
            run_in_root(root, command, run_env, workdir)
            say(f"  done in {time.monotonic() - started:.0f}s")
        elif word == "ENTRYPOINT":
            config["entrypoint"] = json.loads(args) if args.startswith("[") else None
            if config["entrypoint"] is None:
                fail(f"{where}: use the exec (JSON) form so the program gets SIGTERM")
        elif word == "USER":
            config["user"] = args
        elif word in ("LABEL", "CMD", "STOPSIGNAL"):
            pass
        else:
            fail(f"{where}: instruction not supported by this check")
    if root is None:
        fail("no FROM in the Containerfile")
    assert root is not None
    config["workdir"] = workdir
    config["final"] = str(root)
    return config


def recipe_key() -> str:
    digest = hashlib.sha256()
    for name in ("Containerfile", ".containerignore"):
        digest.update(name.encode() + b"\0" + (REPO / name).read_bytes())
    for _line, word, args in instructions(REPO / "Containerfile"):
        if word == "COPY" and "--from=" not in args:
            for source in shlex.split(args)[:-1]:
                for file in context_files(source):
                    rel = file.relative_to(REPO).as_posix()
                    digest.update(rel.encode() + b"\0" + file.read_bytes())
    digest.update((BASE / ".grt-complete").read_bytes())
    return digest.hexdigest()[:16]


def ensure_image() -> dict[str, object]:
    key = recipe_key()
    if os.environ.get("GRT_REBUILD") != "1" and IMAGE_JSON.exists() and ROOTFS.is_dir():
        cached = json.loads(IMAGE_JSON.read_text())
        if cached.get("key") == key:
            say(f"image root for recipe {key} is cached in {ROOTFS}")
            return dict(cached["config"])
    work = CACHE / "build"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    started = time.monotonic()
    config = build(REPO / "Containerfile", work)
    final = Path(str(config.pop("final")))
    if ROOTFS.exists():
        shutil.rmtree(ROOTFS)
    final.rename(ROOTFS)
    shutil.rmtree(work)
    IMAGE_JSON.write_text(json.dumps({"key": key, "config": config}, indent=2))
    say(f"image root built in {time.monotonic() - started:.0f}s: {ROOTFS}")
    return config


# ---- checks -------------------------------------------------------------------------------


def chroot_output(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a command in the image root as a container would: on a throw-away overlay (the
    cached root stays as built), own mount and PID namespaces, /proc and /dev mounted."""
    with tempfile.TemporaryDirectory(prefix="grt-image-run-") as tmp:
        over = Path(tmp)
        for sub in ("upper", "work", "merged"):
            (over / sub).mkdir()
        q = shlex.quote
        script = "\n".join(
            [
                "set -e",
                f"M={q(str(over / 'merged'))}",
                f"mount -t overlay overlay -o lowerdir={q(str(ROOTFS))},"
                f"upperdir={q(str(over / 'upper'))},workdir={q(str(over / 'work'))} \"$M\"",
                "mount -t proc proc \"$M/proc\"",
                "mount --rbind /dev \"$M/dev\"",
                f"exec chroot \"$M\" /usr/bin/env -i PATH={DEFAULT_PATH} " + shlex.join(command),
            ]
        )
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
             "sh", "-c", script],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        )


def static_checks(config: dict[str, object]) -> None:
    entrypoint = config["entrypoint"]
    if entrypoint != ["gluster-recycler"]:
        fail(f"ENTRYPOINT is {entrypoint!r}, expected the exec form ['gluster-recycler']")
    env = dict(config["env"])  # type: ignore[call-overload]
    help_run = chroot_output(
        "/usr/bin/env", *[f"{k}={v}" for k, v in env.items()], *entrypoint, "--help"  # type: ignore[misc]
    )
    if help_run.returncode != 0 or "usage: gluster-recycler" not in help_run.stdout:
        fail(f"gluster-recycler --help: exit {help_run.returncode}: {help_run.stderr[-2000:]}")
    say(f"gluster-recycler --help: exit 0, {len(help_run.stdout.splitlines())} lines")
    for tool, args in (("gluster", ["--version"]), ("glusterfs", ["--version"]),
                       ("mount.glusterfs", ["-V"]), ("python3", ["--version"])):
        out = chroot_output(tool, *args)
        if out.returncode != 0:
            fail(f"{tool} {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")
        say(f"{tool}: {(out.stdout or out.stderr).splitlines()[0].strip()}")
    leftovers = chroot_output(
        "sh", "-c",
        "for t in gcc cc c++ make ld pip pip3 python3-config glusterd; do command -v $t; done; "
        "ls /opt/gluster-recycler/bin/pip* 2>/dev/null; "
        "dpkg-query -W -f='${db:Status-Status} ${Package}\\n' glusterfs-server python3-venv "
        "python3-pip build-essential gcc 2>/dev/null | awk '$1 == \"installed\" {print $2}'",
    ).stdout.split()
    if leftovers:
        fail(f"build tools or extra packages left in the image: {leftovers}")
    lists = list((ROOTFS / "var/lib/apt/lists").glob("*_Packages*"))
    if lists:
        fail(f"apt lists left in the image: {[p.name for p in lists][:3]}")
    size = subprocess.run(["du", "-sm", str(ROOTFS)], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    packages = len(chroot_output("dpkg-query", "-W").stdout.splitlines())
    say(f"no compiler, pip, glusterfs-server or apt lists left; root is {size} MiB, "
        f"{packages} Debian packages")


# ---- a pod-like run against the sandbox ---------------------------------------------------


def resolve_in_root(root: Path, path: str) -> str:
    """`path` with symlinks resolved inside `root` (as a runtime does for mount points)."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        candidate = os.path.join(current, part)
        host = root / candidate.lstrip("/")
        if host.is_symlink():
            link = os.readlink(host)
            current = os.path.normpath(link if link.startswith("/") else os.path.join(current, link))
        else:
            current = candidate
    return current


def pod_spec(kubectl: str) -> tuple[dict[str, object], dict[str, str]]:
    """The CronJob's container and the ConfigMap's data, as `kubectl kustomize` renders them."""
    import yaml

    rendered = subprocess.run([kubectl, "kustomize", str(REPO / "manifests")],
                              capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    configmap_name = pod["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    configmap = next(d for d in docs if d["kind"] == "ConfigMap"
                     and d["metadata"]["name"] == configmap_name)
    return pod, {k: str(v) for k, v in (configmap.get("data") or {}).items()}


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


def pod_run(
    config: dict[str, object],
    pod: dict[str, object],
    configmap: dict[str, str],
    extra_env: dict[str, str],
    secrets: dict[str, str],
    workdir: Path,
) -> tuple[int, str, str, str]:
    """Run the container as the CronJob describes it: (exit code, stdout, stderr, termination
    message)."""
    container = pod["containers"][0]  # type: ignore[index]
    namespace = "gluster-recycler"
    env: dict[str, str] = dict(config["env"])  # type: ignore[call-overload]
    env.update({"HOME": "/root", "HOSTNAME": "gluster-recycler-check-pod"})
    env.update({k: v for k, v in configmap.items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
        else:
            fail(f"env {item['name']}: valueFrom not simulated")
    env.update(extra_env)
    command = list(container.get("command") or config["entrypoint"])  # type: ignore[arg-type]
    command += list(container.get("args") or [])
    security = container.get("securityContext") or {}
    if not security.get("privileged"):
        fail("the simulation assumes a privileged container (as the CronJob says)")
    mounts = [m["mountPath"] for m in container.get("volumeMounts") or []]

    over = workdir / "overlay"
    for sub in ("upper", "work", "merged"):
        (over / sub).mkdir(parents=True, exist_ok=True)
    sa_host = workdir / "serviceaccount"
    sa_host.mkdir(exist_ok=True)
    for name, value in secrets.items():
        (sa_host / name).write_text(value)
    termination = workdir / "termination-log"
    termination.write_text("")
    merged = over / "merged"
    q = shlex.quote
    sa_dir = resolve_in_root(ROOTFS, "/var/run/secrets/kubernetes.io/serviceaccount")
    lines = [
        "set -e",
        f"M={q(str(merged))}",
        f"mount -t overlay overlay -o lowerdir={q(str(ROOTFS))},upperdir={q(str(over / 'upper'))},"
        f"workdir={q(str(over / 'work'))} \"$M\"",
        "touch \"$M/etc/hosts\" \"$M/etc/resolv.conf\" \"$M/etc/hostname\"",
        "mount -t proc proc \"$M/proc\"",
        "mount -t sysfs -o ro sysfs \"$M/sys\"",
        "mount -t tmpfs -o mode=755,nosuid tmpfs \"$M/dev\"",
        "for d in null zero full random urandom tty fuse; do "
        "touch \"$M/dev/$d\"; mount --bind \"/dev/$d\" \"$M/dev/$d\"; done",
        "ln -s /proc/self/fd \"$M/dev/fd\"; mkdir \"$M/dev/shm\" \"$M/dev/pts\"",
        "touch \"$M/dev/termination-log\"",
        f"mount --bind {q(str(termination))} \"$M/dev/termination-log\"",
        # like a runtime: in path order, each mount point created right before its mount
        *[
            line
            for path in sorted([*(resolve_in_root(ROOTFS, p) for p in mounts), sa_dir])
            for line in (
                [
                    f"mkdir -p \"$M\"{q(path)}",
                    f"mount --bind {q(str(sa_host))} \"$M\"{q(path)}",
                    f"mount -o remount,bind,ro \"$M\"{q(path)}",
                ]
                if path == sa_dir
                else [f"mkdir -p \"$M\"{q(path)}", f"mount -t tmpfs tmpfs \"$M\"{q(path)}"]
            )
        ],
        "mount --bind /etc/hosts \"$M/etc/hosts\"",
        "mount --bind /etc/resolv.conf \"$M/etc/resolv.conf\"",
    ]
    if security.get("readOnlyRootFilesystem"):
        lines.append("mount -o remount,bind,ro \"$M\"")
    # shareProcessNamespace: a pause-like init (outside the image's root, as pause is) is
    # PID 1 and reaps orphans; otherwise the program itself is PID 1.
    init = [sys.executable, "-c", PAUSE] if pod.get("shareProcessNamespace") else []
    lines.append(
        f"exec {shlex.join(init)} chroot \"$M\" /usr/bin/env -i "
        + " ".join(q(f"{k}={v}") for k, v in env.items())
        + " "
        + shlex.join(command)
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
         "sh", "-c", "\n".join(lines)],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, timeout=600,
    )
    shutil.rmtree(over, ignore_errors=True)
    return proc.returncode, proc.stdout, proc.stderr, termination.read_text()


def cluster_checks(config: dict[str, object]) -> None:
    sys.path.insert(0, str(REPO))
    from tests.sandbox.controlplane import ControlPlane
    from tests.sandbox.gluster import GlusterServer, new_volume_name
    from tests.sandbox.objects import endpoints, gluster_pv, pvc, wait_for

    plane = ControlPlane()
    plane.start()
    say(f"sandbox control plane up at {plane.server}")
    workdir = Path(tempfile.mkdtemp(prefix="grt-image-check-"))
    try:
        plane.run_kubectl("apply", "-k", str(REPO / "manifests"))
        pod, configmap = pod_spec(str(plane.kubectl))
        token = plane.run_kubectl(
            "create", "token", "gluster-recycler", "-n", "gluster-recycler", "--duration=1h"
        ).stdout.strip()
        secrets = {
            "token": token,
            "ca.crt": (plane.workdir / "pki" / "ca.crt").read_text(),
            "namespace": "gluster-recycler",
        }
        in_cluster = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(plane.api_port),
        }
        with GlusterServer() as server:
            server.ensure_running()
            volume = server.create_volume(new_volume_name("grt-img"))
            server.write_files(volume, {"data/a.txt": "a" * 4096, ".hidden": "h", "b.bin": b"\0"})
            unique = volume.name.rsplit("-", 1)[-1]
            ns, name = f"img-{unique}", f"img-{unique}"
            plane.run_kubectl("create", "namespace", ns)
            plane.apply(endpoints("glusterfs-cluster", ns, list(volume.hosts)))
            plane.apply(gluster_pv(name, volume.path, endpoints_namespace=ns,
                                   labels={"grt-image-check": unique}))
            plane.apply(pvc("claim", ns, volume_name=name))

            def phase() -> str:
                return str(plane.get_json("pv", name).get("status", {}).get("phase", ""))

            wait_for(lambda: phase() == "Bound", what="the PV to bind")
            plane.run_kubectl("delete", "pvc", "claim", "-n", ns, "--wait=false")
            wait_for(lambda: phase() == "Failed", what="the PV to fail recycling")
            selection = {"PV_SELECTOR": f"grt-image-check={unique}", "MIN_AGE": "0", **in_cluster}

            code, out, err, message = pod_run(
                config, pod, configmap, {**selection, "DRY_RUN": "true"}, secrets, workdir
            )
            if code != 0 or "1 would-recycle" not in out:
                fail(f"dry run in the image: exit {code}\n{out}{err[-3000:]}")
            with server.mounted(volume) as root:
                if sorted(os.listdir(root)) != [".hidden", "b.bin", "data"]:
                    fail(f"the dry run changed the volume: {os.listdir(root)}")
            if phase() != "Failed":
                fail(f"the dry run changed the PV: phase {phase()}")
            say(f"--dry-run pass in the image: exit 0, volume and PV untouched; "
                f"summary: {out.strip()}")

            code, out, err, message = pod_run(config, pod, configmap, selection, secrets, workdir)
            if code != 0:
                fail(f"pass in the image: exit {code}\n{out}{err[-3000:]}")
            wait_for(lambda: phase() == "Available", timeout=60, what="the PV to be Available")
            with server.mounted(volume) as root:
                if os.listdir(root):
                    fail(f"the volume is not empty after the pass: {os.listdir(root)}")
            if token in out + err:
                fail("the service-account token appears in the output")
            if not message.strip():
                fail("no termination message written to /dev/termination-log")
            say(f"real pass in the image (own PID and mount namespaces, read-only root, "
                f"in-cluster SA credentials): "
                f"exit 0, volume empty, PV Available; summary: {out.strip()}")
            say(f"termination message: {message.strip()[:300]}")
            reaped = [line for line in err.splitlines() if line.startswith("pod init:")]
            if reaped:
                say(reaped[-1] + " (e.g. each mount's glusterfs daemon, once unmounted)")
            plane.run_kubectl("delete", "pv", name, "--wait=false")
            plane.run_kubectl("delete", "namespace", ns, "--wait=false")
    finally:
        plane.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    started = time.monotonic()
    config = ensure_image()
    static_checks(config)
    if os.environ.get("GRT_BUILD_ONLY") != "1":
        cluster_checks(config)
    say(f"OK in {time.monotonic() - started:.0f}s")


main()
PY
