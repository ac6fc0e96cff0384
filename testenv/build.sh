#!/usr/bin/env bash
# Builds one sandbox control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from
# the Go module pinned in testenv/k8s-MAJOR.MINOR/ into a cache outside the repository, keyed by
# version and by the hash of everything that goes into the build.
#   build.sh [MAJOR.MINOR]   (default: $K8S_VERSION, else the one marked default in versions)
# Does nothing when the binaries for this pin are already built. Prints the bin directory last.
# A version whose module lacks generated sources has a prepare.sh that writes a local copy of
# k8s.io/kubernetes with them (see testenv/k8s-1.21/prepare.sh); the build then uses that copy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
minor=${1:-${K8S_VERSION:-$(awk '$2 == "default" {print $1}' "$here/versions")}}
dir="$here/k8s-$minor"
[ -f "$dir/go.mod" ] || {
  echo "testenv: no Kubernetes $minor here; versions: $(cd "$here" && ls -d k8s-*/ | sed 's/^k8s-//; s/\/$//' | tr '\n' ' ')" >&2
  exit 2
}
version=$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$dir/go.mod")
inputs=("$dir/go.mod" "$dir/go.sum" "$dir/cmd/etcd/main.go" "$0")
[ -f "$dir/prepare.sh" ] && inputs+=("$dir/prepare.sh")
pin=$(cat "${inputs[@]}" | sha256sum | cut -c1-12)
cache=${GLUSTER_RECYCLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gluster-recycler}
root="$cache/testenv/$version-$pin"
bin="$root/bin"
commands=(etcd kube-apiserver kube-controller-manager kubectl)

missing=()
for c in "${commands[@]}"; do [ -x "$bin/$c" ] || missing+=("$c"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "testenv: control plane $version already built in $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "testenv: go is not installed; it is needed to build the control plane" >&2; exit 1; }
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
moddir=$dir
if [ -f "$dir/prepare.sh" ]; then
  # Build from a copy of the module whose k8s.io/kubernetes points at the prepared sources.
  src=$(bash "$dir/prepare.sh" "$root/src")
  moddir="$root/mod"
  rm -rf "$moddir"
  mkdir -p "$moddir"
  cp -r "$dir/go.mod" "$dir/go.sum" "$dir/cmd" "$moddir/"
  (cd "$moddir" && go mod edit -replace "k8s.io/kubernetes=$src")
fi
cd "$moddir"
# Stamp the real version so /version and kubectl's skew check see it.
vb=k8s.io/component-base/version
ldversion="-X $vb.gitVersion=$version -X $vb.gitMajor=$(echo "$version" | cut -d. -f1 | tr -d v) -X $vb.gitMinor=$(echo "$version" | cut -d. -f2) -X $vb.gitTreeState=clean -X $vb.buildDate=1970-01-01T00:00:00Z"
total=$(date +%s)
for c in "${missing[@]}"; do
  case $c in
    etcd) pkg=./cmd/etcd ;;
    *) pkg=k8s.io/kubernetes/cmd/$c ;;
  esac
  echo "testenv: building $c ($pkg, kubernetes $version) into $bin" >&2
  start=$(date +%s)
  go build -trimpath -ldflags="-s -w $ldversion" -o "$bin/$c.tmp" "$pkg"
  mv "$bin/$c.tmp" "$bin/$c"
  echo "testenv: built $c in $(($(date +%s) - start))s" >&2
done
echo "testenv: control plane $version built in $(($(date +%s) - total))s" >&2
echo "$bin"
