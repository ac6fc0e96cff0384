#!/usr/bin/env bash
# Installs everything the demo, the tests and the benchmarks need on a fresh Debian 12 machine:
# the GlusterFS server and FUSE client, the pinned Python packages in .venv, and the sandbox
# control plane of the default Kubernetes version (testenv/versions; built from pinned Go
# modules, cached outside the repository). `make controlplanes` builds the other versions.
# Idempotent and quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# buildah and debootstrap: the image test builds the Containerfile (scripts/image.sh).
# prometheus: its promtool checks and unit-tests the PrometheusRule (tests/unit/test_monitoring.py;
# the package's service is not started here). shellcheck: actionlint checks the workflows'
# shell steps with it. iptables: a watch test cuts the API server's connections
# (tests/integration/test_watch.py).
debs=(glusterfs-server glusterfs-client rsync attr acl psmisc procps prometheus-pushgateway
  buildah debootstrap prometheus shellcheck iptables)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package starts glusterd through systemd, which a container may not have;
# the test harness starts it itself when it is not running.

stamp=.venv/.requirements-stamp
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned Python packages into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

# actionlint lints .github/workflows (tests/unit/test_release.py): a Go module, pinned, built
# once into the cache beside the control planes.
actionlint_version=v1.7.12
tools=${GLUSTER_RECYCLER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gluster-recycler}/tools
if [ ! -x "$tools/actionlint-$actionlint_version/actionlint" ]; then
  echo "setup: building actionlint $actionlint_version into $tools" >&2
  mkdir -p "$tools/actionlint-$actionlint_version"
  CGO_ENABLED=0 GOBIN="$tools/actionlint-$actionlint_version" \
    go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
fi

bash testenv/build.sh "${K8S_VERSION:-}" >/dev/null
