#!/usr/bin/env bash
# Builds the container image from the Containerfile with buildah, offline from any registry.
#
#   scripts/image.sh build          the base image if missing, then the image; prints its name
#   scripts/image.sh base           only the base image (localhost/debian:SUITE-slim)
#   scripts/image.sh buildah ARGS   buildah on the project's own image storage
#
# No container registry is needed (none is reachable from the build machines):
#  - The base image is made here: `debootstrap --variant=minbase SUITE`, given what the official
#    debian:SUITE-slim image adds on top (debuerreotype's docker and slimify steps: no docs,
#    man pages or translations installed, no .deb cache, no daemons started by postinst
#    scripts, deb822 sources), committed as localhost/debian:SUITE-slim. It is kept in the
#    storage below between runs: debootstrap runs once per suite, not once per build.
#  - The build reaches the Debian mirror and PyPI. This machine's CA bundle is lent to pip for
#    the RUN steps only (--volume, never in the image): it may sit behind a TLS-inspecting
#    proxy. It is mounted beside the image's own bundle, not over it: ca-certificates rewrites
#    /etc/ssl/certs/ca-certificates.crt when it is installed.
#
# Storage: buildah's vfs driver (works on any file system and inside containers) with chroot
# isolation (no runc, no user namespaces needed), in its own root under the cache directory,
# so the machine's own container storage is never touched. Needs root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${GLUSTER_RECYCLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gluster-recycler}/image
suite=${DEBIAN_SUITE:-bookworm}
base_image=localhost/debian:$suite-slim
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/pyproject.toml")
image=${IMAGE:-localhost/gluster-recycler:$version}

say() { echo "image: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

bh() {
  buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs "$@"
}

# The Debian mirror this machine uses (deb822 or one-line sources), else deb.debian.org.
mirror() {
  local found
  found=$(
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 |
      tr -d ' ' || true
  )
  found=${found:-http://deb.debian.org/debian}
  echo "${found%/}"
}

# What debian:SUITE-slim carries on top of a minbase debootstrap.
slimify() {
  local root=$1 mirror=$2
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  echo 'Acquire::GzipIndexes "true";' > "$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/docker-no-languages"
  cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
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
  # The files those rules exclude, removed from what debootstrap already installed.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
    -exec rm -rf {} +
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/var/log/apt/* "$root"/var/cache/ldconfig/aux-cache "$root/etc/resolv.conf" \
    "$root/etc/hostname" "$root"/dev/* "$root"/proc/* "$root"/sys/* "$root"/run/* "$root"/tmp/*
}

ensure_base() {
  if bh inspect --type image "$base_image" >/dev/null 2>&1; then
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap not installed (run 'make setup')"
  local started mirror rootfs ctr
  started=$(date +%s)
  mirror=$(mirror)
  rootfs=$(mktemp -d "${TMPDIR:-/tmp}/grt-debootstrap-XXXXXX")
  cleanup+=("$rootfs" "$rootfs.log")
  say "debootstrap --variant=minbase $suite from $mirror (once; kept as $base_image)"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    die "debootstrap failed; see $rootfs.log"
  slimify "$rootfs" "$mirror"
  ctr=$(bh from scratch)
  bh copy "$ctr" "$rootfs/" / >/dev/null
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash --label "org.opencontainers.image.base.name=debian:$suite-slim" "$ctr"
  bh commit --quiet --rm "$ctr" "$base_image" >/dev/null
  say "base image $base_image made in $(($(date +%s) - started))s"
}

build() {
  command -v buildah >/dev/null || die "buildah not installed (run 'make setup')"
  ensure_base
  local started work source revision
  started=$(date +%s)
  work=$(mktemp -d "${TMPDIR:-/tmp}/grt-image-build-XXXXXX")
  cleanup+=("$work")
  printf '[global]\ncert = /run/host-ca.crt\n' > "$work/pip.conf"
  # The clone URL without any user:password@ part: it goes into the image.
  source=${SOURCE_URL:-$(git -C "$repo" remote get-url origin 2>/dev/null | sed -E "s#://[^/@]*@#://#" || true)}
  revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)
  say "buildah bud $image from $base_image"
  bh bud --isolation chroot --pull=never --layers=false \
    --build-arg "BASE_IMAGE=$base_image" \
    --build-arg "VERSION=$version" \
    ${source:+--build-arg "SOURCE_URL=$source"} \
    ${revision:+--build-arg "REVISION=$revision"} \
    --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro \
    --volume "$work/pip.conf:/etc/pip.conf:ro" \
    --iidfile "$work/iid" \
    -f "$repo/Containerfile" -t "$image" "$repo" >&2
  # The build stage and the image this tag pointed at before: vfs keeps full copies of both.
  bh rmi --prune >/dev/null 2>&1 || true
  say "$image ($(cut -c1-19 "$work/iid")) built in $(($(date +%s) - started))s"
  echo "$image"
}

case ${1:-} in
  build) build ;;
  base) ensure_base ;;
  buildah) shift; bh "$@" ;;
  *) echo "usage: $0 build | base | buildah ARGS..." >&2; exit 2 ;;
esac
