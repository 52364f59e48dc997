#!/usr/bin/env bash
# Restore a logical backup (`mnemo export --all`) into the database of a running release.
#
#   deploy/scripts/restore.sh NAMESPACE BACKUP.jsonl.gz [RELEASE]
#
# 1. verifies the backup file locally (needs mnemo on this machine),
# 2. scales the server to zero and waits until no server pod is left that could write,
# 3. runs `mnemo import` in a pod with the release's image and database secret,
# 4. checks the import's own verification, then scales the server back.
# For point-in-time recovery use CloudNativePG instead (docs/deploy.md, "Restore drill").
set -euo pipefail

namespace=${1:?usage: restore.sh NAMESPACE BACKUP.jsonl.gz [RELEASE]}
backup=${2:?usage: restore.sh NAMESPACE BACKUP.jsonl.gz [RELEASE]}
release=${3:-mnemo}
selector="app.kubernetes.io/instance=$release,app.kubernetes.io/component=server"
pod="$release-restore"

[ -f "$backup" ] || { echo "restore.sh: no file $backup" >&2; exit 2; }
mnemo import --verify-only "$backup"

deployment=$(kubectl -n "$namespace" get deploy -l "$selector" -o name)
[ -n "$deployment" ] || { echo "restore.sh: no server deployment for $release" >&2; exit 2; }
replicas=$(kubectl -n "$namespace" get "$deployment" -o jsonpath='{.status.replicas}')
image=$(kubectl -n "$namespace" get "$deployment" -o jsonpath='{.spec.template.spec.containers[0].image}')
db_secret=$(kubectl -n "$namespace" get "$deployment" \
  -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="MNEMO_DATABASE_URL")].valueFrom.secretKeyRef.name}')
db_key=$(kubectl -n "$namespace" get "$deployment" \
  -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="MNEMO_DATABASE_URL")].valueFrom.secretKeyRef.key}')

restore_service() {
  kubectl -n "$namespace" scale "$deployment" --replicas "${replicas:-2}"
  kubectl -n "$namespace" delete pod "$pod" --ignore-not-found >/dev/null
}
trap restore_service EXIT

# An HPA leaves a deployment scaled to zero alone, and resumes once it is scaled back.
kubectl -n "$namespace" scale "$deployment" --replicas 0
kubectl -n "$namespace" wait --for=delete pod -l "$selector" --timeout 180s

overrides=$(cat <<JSON
{"spec": {"automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "restore", "image": "$image", "command": ["sleep", "3600"],
    "env": [{"name": "MNEMO_DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "$db_secret", "key": "$db_key"}}},
            {"name": "HOME", "value": "/tmp"}],
    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}
JSON
)
kubectl -n "$namespace" run "$pod" --image "$image" --restart Never --overrides "$overrides" \
  --labels "app.kubernetes.io/instance=$release,app.kubernetes.io/part-of=mnemo,app.kubernetes.io/component=migrate"
kubectl -n "$namespace" wait --for=condition=Ready "pod/$pod" --timeout 180s
# The pod's HOME is its writable scratch directory (set in the overrides above); $HOME
# expands in the pod, not here.
# shellcheck disable=SC2016
kubectl -n "$namespace" exec -i "$pod" -- sh -c 'cat > "$HOME/backup.jsonl.gz"' < "$backup"
# shellcheck disable=SC2016
kubectl -n "$namespace" exec "$pod" -- sh -c 'mnemo import "$HOME/backup.jsonl.gz"'
echo "restore.sh: restored and verified; scaling $deployment back to ${replicas:-2}"
