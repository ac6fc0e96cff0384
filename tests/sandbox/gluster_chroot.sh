#!/usr/bin/env bash
# Builds the root file system of one GlusterFS server version for the sandbox's version matrix
# (tests/sandbox/gluster_versions.py): a minimal Debian chroot of SUITE with glusterfs-server,
# in a cache outside the repository, keyed by suite and by the hash of this script.
#   gluster_chroot.sh SUITE      (bullseye: glusterfs 9.2, trixie: glusterfs 11.1)
# Does nothing when the chroot is already built (its `.ready` stamp is written last, so a build
# that was killed is redone). Prints the chroot's directory last. Quiet when cached.
# The packages come from the Debian mirror the host's apt uses (the only archive reachable).
set -euo pipefail
suite=${1:?usage: gluster_chroot.sh SUITE}
case $suite in
  bullseye | trixie) ;;
  *) echo "gluster_chroot: no server version for suite $suite (bullseye, trixie)" >&2; exit 2 ;;
esac
pin=$( (echo "$suite"; cat "$0") | sha256sum | cut -c1-12)
cache=${GLUSTER_RECYCLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gluster-recycler}
root="$cache/gluster-$suite-$pin"
if [ -f "$root/.ready" ]; then
  echo "$root"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/gluster-$suite.lock"
flock 9 # a second build of the same suite waits for the first, then finds it done
if [ -f "$root/.ready" ]; then
  echo "$root"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "gluster_chroot: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "gluster_chroot: debootstrap is not installed (scripts/setup.sh)" >&2; exit 1; }

# The host's Debian mirror: deb822 sources first, then the one-line format.
mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

# Leftovers of an interrupted build (never mounted: the build mounts nothing itself).
rm -rf "$root"
echo "gluster_chroot: building glusterfs-server of Debian $suite into $root ($mirror)" >&2
start=$(date +%s)
log="$cache/gluster-$suite.build.log"
if ! debootstrap --variant=minbase --include=glusterfs-server,attr "$suite" "$root" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "gluster_chroot: debootstrap $suite failed (log: $log)" >&2
  exit 1
fi
# Nothing in the chroot may start services on its own; the harness starts glusterd itself.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*_Packages
version=$(chroot "$root" dpkg-query -W -f='${Version}' glusterfs-server)
echo "$version" >"$root/.glusterfs-version"
touch "$root/.ready"
echo "gluster_chroot: glusterfs-server $version ($suite) built in $(($(date +%s) - start))s" >&2
echo "$root"
