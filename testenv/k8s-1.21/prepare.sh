#!/usr/bin/env bash
# The k8s.io/kubernetes module of 1.21 does not ship pkg/generated/openapi/zz_generated.openapi.go
# (the release's build generates it), so kube-apiserver does not compile from the module alone.
# This writes a copy of the module into OUT/kubernetes with that file generated the way the
# release's build/root/Makefile.generated_files does (gen_openapi, KUBE target): openapi-gen from
# the kube-openapi this release pins, over every package tagged `+k8s:openapi-gen=` in the tree
# and in the staging modules except code-generator and the samples. Prints OUT/kubernetes.
#   prepare.sh OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
if [ -f "$out/kubernetes/pkg/generated/openapi/zz_generated.openapi.go" ]; then
  echo "$out/kubernetes"
  exit 0
fi
cd "$here"
export GOFLAGS=-mod=mod CGO_ENABLED=0
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)
moddir() { go mod download "$1" && go list -m -f '{{.Dir}}' "$1"; }
k8s=$(moddir k8s.io/kubernetes)
cp -r "$k8s" "$out/kubernetes"
chmod -R u+w "$out/kubernetes"

# Tagged directories, as the release's Makefile finds them: Go files with a `// +k8s:` tag line
# that mention +k8s:openapi-gen=, outside vendor/ and _*/.* directories.
tagged() { # ROOT IMPORT-PREFIX
  (cd "$1" && find . \( -name '_*' -o -name '.[^.]*' -o -path ./vendor \) -prune -o -type f -name '*.go' -print |
    { xargs -r grep -l '^// *+k8s:' || true; } | { xargs -r grep -l '+k8s:openapi-gen=' || true; } |
    xargs -r -n1 dirname | LC_ALL=C sort -u | sed "s|^\.\$|$2|; s|^\./|$2/|")
}
inputs=$(tagged "$out/kubernetes" k8s.io/kubernetes)
for mod in $(go list -m -f '{{.Path}}' all | grep '^k8s\.io/' | LC_ALL=C sort); do
  case $mod in
    k8s.io/kubernetes | k8s.io/code-generator | k8s.io/sample-*) continue ;;
  esac
  grep -q "^[[:space:]]$mod => ./staging/" "$k8s/go.mod" || continue
  inputs+=$'\n'$(tagged "$(moddir "$mod")" "$mod")
done
inputs=$(echo "$inputs" | grep -v '^$' | LC_ALL=C sort -u)
echo "testenv: generating OpenAPI definitions for $(echo "$inputs" | wc -l) packages" >&2

go build -o "$out/openapi-gen" k8s.io/kube-openapi/cmd/openapi-gen
"$out/openapi-gen" \
  --logtostderr \
  -i "$(echo "$inputs" | paste -sd, -)" \
  -p k8s.io/kubernetes/pkg/generated/openapi \
  -O zz_generated.openapi \
  -h "$out/kubernetes/hack/boilerplate/boilerplate.generatego.txt" \
  -r "$out/api-rule-violations.report" \
  -o "$out/gen" >&2
cp "$out/gen/k8s.io/kubernetes/pkg/generated/openapi/zz_generated.openapi.go" \
  "$out/kubernetes/pkg/generated/openapi/"
echo "testenv: generated OpenAPI definitions in $(($(date +%s) - start))s" >&2
echo "$out/kubernetes"
