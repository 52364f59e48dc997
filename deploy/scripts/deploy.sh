#!/usr/bin/env bash
# Install or upgrade mnemo with Helm, and wait until it serves.
#
#   deploy/scripts/deploy.sh NAMESPACE VALUES.yaml [RELEASE]
#
# Idempotent: run it again for an upgrade. `helm upgrade --install --atomic --wait` runs the
# migration job (a Helm hook), rolls the pods, and rolls back by itself if they never get ready.
# Prerequisites the chart does not install: the CloudNativePG operator (and its Barman Cloud
# plugin for backups) when database.mode=cnpg, and whichever CRDs your values turn on
# (Prometheus Operator, Gateway API, External Secrets).
set -euo pipefail

namespace=${1:?usage: deploy.sh NAMESPACE VALUES.yaml [RELEASE]}
values=${2:?usage: deploy.sh NAMESPACE VALUES.yaml [RELEASE]}
release=${3:-mnemo}
chart="$(cd "$(dirname "$0")/../helm/mnemo" && pwd)"
timeout=${MNEMO_DEPLOY_TIMEOUT:-10m}

for tool in kubectl helm; do
  command -v "$tool" >/dev/null || { echo "deploy.sh: $tool is required" >&2; exit 2; }
done
[ -f "$values" ] || { echo "deploy.sh: no values file $values" >&2; exit 2; }

require_crd() {
  if ! kubectl get crd "$1" >/dev/null 2>&1; then
    echo "deploy.sh: the cluster lacks CRD $1 ($2); install it first or turn the option off" >&2
    exit 2
  fi
}
rendered=$(helm template "$release" "$chart" --namespace "$namespace" -f "$values")
grep -q '^kind: Cluster$' <<<"$rendered" && require_crd clusters.postgresql.cnpg.io "CloudNativePG operator"
grep -q '^kind: ObjectStore$' <<<"$rendered" && require_crd objectstores.barmancloud.cnpg.io "Barman Cloud plugin"
grep -q '^kind: ServiceMonitor$' <<<"$rendered" && require_crd servicemonitors.monitoring.coreos.com "Prometheus Operator"
grep -q '^kind: HTTPRoute$' <<<"$rendered" && require_crd httproutes.gateway.networking.k8s.io "Gateway API"
grep -q '^kind: ExternalSecret$' <<<"$rendered" && require_crd externalsecrets.external-secrets.io "External Secrets Operator"

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$namespace" pod-security.kubernetes.io/enforce=restricted --overwrite

helm upgrade --install "$release" "$chart" \
  --namespace "$namespace" -f "$values" \
  --atomic --wait --timeout "$timeout"

deployment=$(kubectl -n "$namespace" get deploy -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=server" -o name)
kubectl -n "$namespace" rollout status "$deployment" --timeout "$timeout"
helm test "$release" --namespace "$namespace" --timeout 2m
echo "deploy.sh: $release is serving in $namespace"
