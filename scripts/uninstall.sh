#!/usr/bin/env bash
# Removes gluster-recycler without losing a PV (docs/deploy.md, "Uninstall"). kubectl only.
#
#   scripts/uninstall.sh [--namespace NS] [--kustomize-dir DIR] [--lease-name NAME] [--timeout S]
#
# `kubectl delete -k` alone removes the namespace, and with it the ConfigMap
# <lease-name>-recreate, which may hold the only copy of a PV being re-created (--mode
# recreate). So, in this order:
#   1. suspend the CronJob(s): no new pass starts;
#   2. wait (up to --timeout) until no Job of the recycler is active;
#   3. refuse while the record ConfigMap holds an entry or a pass holds the Lease, and say how to
#      finish them (one pass replays the records);
#   4. kubectl delete -k DIR.
# Exit 0: deleted. Exit 1: refused, nothing deleted (the CronJob stays suspended). Exit 2: usage.
set -euo pipefail

namespace=gluster-recycler
kustomize_dir="$(cd "$(dirname "$0")/.." && pwd)/manifests"
lease_name=gluster-recycler
timeout=600
kubectl=${KUBECTL:-kubectl}
selector=app.kubernetes.io/name=gluster-recycler

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) namespace=${2:?}; shift 2 ;;
    --kustomize-dir) kustomize_dir=${2:?}; shift 2 ;;
    --lease-name) lease_name=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "uninstall: unknown argument $1" >&2; usage ;;
  esac
done
case "$timeout" in ''|*[!0-9]*) echo "uninstall: --timeout $timeout: not a whole number of seconds" >&2; exit 2 ;; esac
[ -d "$kustomize_dir" ] || { echo "uninstall: --kustomize-dir $kustomize_dir: not a directory" >&2; exit 2; }
k() { "$kubectl" "$@"; }
refuse() { echo "uninstall: refused, nothing deleted: $*" >&2; exit 1; }

# 1. No new pass: suspend every CronJob of the recycler in the namespace.
cronjobs=$(k get cronjobs -n "$namespace" -l "$selector" -o name)
for cronjob in $cronjobs; do
  k patch "$cronjob" -n "$namespace" --type=merge -p '{"spec":{"suspend":true}}' >/dev/null
  echo "uninstall: suspended $cronjob"
done

# 2. Wait for running passes (scheduled or manual Jobs) to end.
# Count the seconds slept, not the clock's whole seconds: a deadline taken from
# `date +%s` can pass a moment after it was set, and the wait would be skipped.
waited=0
while :; do
  active=$(k get jobs -n "$namespace" -l "$selector" \
    -o jsonpath='{range .items[?(@.status.active)]}{.metadata.name}{" "}{end}')
  [ -z "$active" ] && break
  if [ "$waited" -ge "$timeout" ]; then
    refuse "Jobs still active after ${timeout}s: $active(wait, or delete them, then run this again)"
  fi
  step=$(( timeout - waited < 5 ? timeout - waited : 5 ))
  sleep "$step"
  waited=$(( waited + step ))
done

# 3. A pass outside the cluster may hold the Lease; the record must be empty.
holder=$(k get lease "$lease_name" -n "$namespace" -o jsonpath='{.spec.holderIdentity}' \
  --ignore-not-found)
[ -z "$holder" ] || refuse "lease $namespace/$lease_name is held by $holder: a pass is running"
records=$(k get configmap "$lease_name-recreate" -n "$namespace" --ignore-not-found \
  -o go-template='{{range $name, $_ := .data}}{{$name}} {{end}}')
if [ -n "$records" ]; then
  refuse "ConfigMap $namespace/$lease_name-recreate records PVs being re-created: $records
  It may hold the only copy of these PVs. Finish them with one pass (it replays the records):
    kubectl create job --from=cronjob/gluster-recycler gluster-recycler-finish -n $namespace
  wait for it to end (kubectl logs -n $namespace job/gluster-recycler-finish shows
  'recreate record: ...'), fix what it reports if a record stays, then run this again."
fi

# 4. Nothing in flight, nothing recorded: delete.
k delete -k "$kustomize_dir" --ignore-not-found --wait=true
echo "uninstall: removed gluster-recycler (namespace $namespace)"
