#!/usr/bin/env bash
# make vergabe-status: one screen about the environment in the cluster. What the plan lists is
# looked up; a part that does not exist says "not found" instead of failing the target.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/lock.sh
source "$ROOT/scripts/lock.sh"

# get RESOURCE NAMESPACE NAME JSONPATH: the value, "not found", or "unknown (<kubectl's error>)".
get() {
  local out
  if out=$(kcn "$2" get "$1" "$3" -o "jsonpath=$4" 2>&1); then
    printf '%s\n' "$out"
  elif [[ $out == *NotFound* || $out == *"not found"* ]]; then
    say "not found"
  else
    say "unknown (${out%%$'\n'*})"
  fi
}

line() { printf '  %-13s %s\n' "$1" "$2"; }

# kubectl's own table, indented; its errors shown, never fatal.
table() { kcn "$@" 2>&1 | sed 's/^/    /' || true; }

app() {
  local ns=$1 deployment wanted running
  deployment=$(setting deployment)
  wanted=$(setting image)
  announce "app"
  local state='{.status.readyReplicas}/{.spec.replicas} ready, {.status.updatedReplicas} updated, commit '
  line deployment "$(get deployment.apps "$ns" "$deployment" "$state$(annotation_path deployed-commit)")"
  running=$(get deployment.apps "$ns" "$deployment" '{.spec.template.spec.containers[0].image}')
  line image "$running"
  if [ "$running" = "$wanted" ]; then
    line "in dist/" "the same"
  else
    line "in dist/" "$wanted (differs: not deployed yet, or a rollback is in effect)"
  fi
  say "  pods:"
  table "$ns" get pods -o wide
}

migration() {
  local ns=$1 job
  announce "migration"
  # The namespace is the app's own: its Jobs are the migration Jobs.
  job=$(kcn "$ns" get jobs.batch --sort-by=.metadata.creationTimestamp -o name 2>/dev/null | tail -n 1) || true
  if [ -z "$job" ]; then
    line "last Job" "not found"
  else
    line "last Job" "${job#*/}: $(get job.batch "$ns" "${job#*/}" \
      '{.status.conditions[?(@.status=="True")].type}')"
  fi
  line "dist/ wants" "$(setting migrationJob)"
}

# The plan's objects that have a status worth a line: the database ones and the certificate.
waited_objects() {
  local row _ resource ns name wait
  announce "database and certificate"
  for row in "${OBJECT_ROWS[@]}"; do
    IFS=$'\t' read -r _ resource ns name wait _ <<<"$row"
    case $wait in
      applied) line "${resource%%.*}" "$name: $(get "$resource" "$ns" "$name" \
        'applied {.status.applied} at generation {.status.observedGeneration}/{.metadata.generation}')" ;;
      ready) line "${resource%%.*}" "$name: $(get "$resource" "$ns" "$name" \
        'Ready {.status.conditions[?(@.type=="Ready")].status}, expires {.status.notAfter}')" ;;
    esac
  done
}

exposure() {
  local ns=$1 row _ resource ons name address lock
  announce "exposure and lock"
  for row in "${OBJECT_ROWS[@]}"; do
    IFS=$'\t' read -r _ resource ons name _ <<<"$row"
    [[ $resource == ingress.* ]] || continue
    address=$(get "$resource" "$ons" "$name" '{.status.loadBalancer.ingress[*].ip}')
    line ingress "$name: address $address, expected $(setting ingressAddress)"
  done
  lock=$(get lease "$ns" "$LOCK_NAME" \
    "held by $(annotation_path locked-by) since $(annotation_path locked-since)")
  line "deploy lock" "${lock/#not found/free}"
}

main() {
  plan_load
  local ns
  ns=$(setting namespace)
  say "$ENV on $KUBE_CONTEXT: namespace $ns, https://$(setting host)/"
  app "$ns"
  migration "$ns"
  waited_objects
  exposure "$ns"
  announce "recent Warning events in $ns"
  table "$ns" get events --field-selector type=Warning --sort-by=.lastTimestamp | tail -n 10
}

main "$@"
