#!/usr/bin/env bash
# make vergabe-status: one screen about the environment in the cluster. What the plan lists is
# looked up; a part that does not exist says "not found" instead of failing the target.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/waits.sh
source "$(dirname "${BASH_SOURCE[0]}")/waits.sh"
# shellcheck source=scripts/lock.sh
source "$(dirname "${BASH_SOURCE[0]}")/lock.sh"

# get RESOURCE NAMESPACE NAME JSONPATH: the value, or "not found" / the error's first line.
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

main() {
  plan_load
  local ns deployment wanted running rows row _ resource ons name wait job
  ns=$(setting namespace)
  deployment=$(setting deployment)
  wanted=$(setting image)
  say "$ENV on $KUBE_CONTEXT, namespace $ns, https://$(setting host)/"

  announce "app"
  running=$(get deployment.apps "$ns" "$deployment" '{.spec.template.spec.containers[0].image}')
  line deployment "$(get deployment.apps "$ns" "$deployment" \
    '{.status.readyReplicas}/{.spec.replicas} ready, {.status.updatedReplicas} updated, commit {.metadata.annotations.vergabe-teilnahme\.whywhynot\.de/deployed-commit}')"
  line "image" "$running"
  if [ "$running" = "$wanted" ]; then
    line "in dist/" "the same"
  else
    line "in dist/" "$wanted (differs: deploy, or a rollback is in effect)"
  fi
  say "  pods:"
  kcn "$ns" get pods -o wide 2>&1 | sed 's/^/    /' || true

  announce "migration"
  # The namespace is the app's own: its Jobs are the migration Jobs.
  job=$(kcn "$ns" get jobs.batch --sort-by=.metadata.creationTimestamp -o name 2>/dev/null | tail -n 1) || true
  if [ -z "$job" ]; then
    line "last Job" "not found"
  else
    line "last Job" "${job#*/}: $(get job.batch "$ns" "${job#*/}" '{.status.conditions[?(@.status=="True")].type}')"
  fi
  line "dist/ wants" "$(setting migrationJob)"

  announce "objects the deploy waits for"
  mapfile -t rows < <(plan_rows object)
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r _ resource ons name wait _ <<<"$row"
    case $wait in
      applied) line "${resource%%.*}" "$name: $(get "$resource" "$ons" "$name" \
        'applied {.status.applied} at generation {.status.observedGeneration}/{.metadata.generation} {.status.message}')" ;;
      ready) line "${resource%%.*}" "$name: $(get "$resource" "$ons" "$name" \
        'Ready {.status.conditions[?(@.type=="Ready")].status}, expires {.status.notAfter}')" ;;
    esac
  done

  announce "exposure"
  mapfile -t rows < <(plan_rows object | awk -F'\t' '$2 ~ /^ingress\./')
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r _ resource ons name _ <<<"$row"
    line "ingress" "$name: address $(get "$resource" "$ons" "$name" '{.status.loadBalancer.ingress[*].ip}'), expected $(setting ingressAddress)"
  done
  local lock
  lock=$(get lease "$ns" "$LOCK_NAME" "held by $(lock_annotation locked-by) since $(lock_annotation locked-since)")
  line "deploy lock" "${lock/#not found/free}"

  announce "recent Warning events in $ns"
  kcn "$ns" get events --field-selector type=Warning --sort-by=.lastTimestamp 2>&1 | tail -n 10 | sed 's/^/  /' || true
}

main "$@"
