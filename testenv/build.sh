#!/usr/bin/env bash
# Builds the sandbox control plane (etcd, kube-apiserver, kube-controller-manager, kubectl)
# from the Go modules pinned in go.mod into a cache outside the repository.
# Does nothing when the binaries for this pin are already built. Prints the bin directory last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")
pin=$(cat "$here/go.mod" "$here/go.sum" "$here/cmd/etcd/main.go" "$0" | sha256sum | cut -c1-12)
cache=${GLUSTER_RECYCLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gluster-recycler}
bin="$cache/testenv/$version-$pin/bin"
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
cd "$here"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# Stamp the real version so /version and kubectl's skew check see it.
vb=k8s.io/component-base/version
ldversion="-X $vb.gitVersion=$version -X $vb.gitMajor=$(echo "$version" | cut -d. -f1 | tr -d v) -X $vb.gitMinor=$(echo "$version" | cut -d. -f2) -X $vb.gitTreeState=clean -X $vb.buildDate=1970-01-01T00:00:00Z"
for c in "${missing[@]}"; do
  case $c in
    etcd) pkg=./cmd/etcd ;;
    *) pkg=k8s.io/kubernetes/cmd/$c ;;
  esac
  echo "testenv: building $c ($pkg, kubernetes $version) into $bin" >&2
  start=$(date +%s)
  go build -trimpath -ldflags="-s -w $ldversion" -o "$bin/$c.tmp" "$pkg"
  mv "$bin/$c.tmp" "$bin/$c"
  echo "testenv: built $c in $(( $(date +%s) - start ))s" >&2
done
echo "$bin"
