#!/usr/bin/env bash
# make vergabe-migrate: runs the migration Job of dist/$ENV/ (the plan's migrationJob) and waits
# for Complete or Failed, then prints its logs; non-zero when it failed. A Job is immutable and
# runs once: FORCE=1 deletes an existing Job of that name first, so it runs again.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/waits.sh
source "$ROOT/scripts/waits.sh"
# shellcheck source=scripts/lock.sh
source "$ROOT/scripts/lock.sh"
# shellcheck source=scripts/preflight.sh
source "$ROOT/scripts/preflight.sh"

main() {
  plan_load
  local job row id="" resource ns name wait file="" _
  job=$(setting migrationJob)
  for row in "${OBJECT_ROWS[@]}"; do
    IFS=$'\t' read -r id resource ns name wait _ <<<"$row"
    [ "$name" != "$job" ] || [ "$wait" != complete ] || break
    id=""
  done
  [ -n "$id" ] || die "$PLAN has no object row for the migration Job $job: run make synth"
  for row in "${PHASE_ROWS[@]}"; do
    [ "${row%%$'\t'*}" != "$id" ] || IFS=$'\t' read -r _ file _ <<<"$row"
  done
  [ -f "$DIST/$file" ] || die "$PLAN names $DIST/$file for phase $id, which does not exist: run make synth"

  announce "checks"
  check_tools kubectl
  check_image_tag
  check_clean_tree
  check_context
  [ -n "$(read_field namespace - "$ns" '{.metadata.name}')" ] ||
    die "namespace $ns does not exist: the first make vergabe-deploy creates it and runs the migrations"
  lock_take migrate

  announce "migration Job $ns/$job"
  if [ "${FORCE:-0}" = 1 ]; then
    say "  FORCE=1: deleting the Job of that name and its pods first"
    kcn "$ns" delete "$resource" "$job" --ignore-not-found --cascade=foreground --wait=true
  elif [ -n "$(read_field "$resource" "$ns" "$job" '{.metadata.name}')" ]; then
    say "  it exists already: showing its result (FORCE=1 runs it again)"
  fi
  kc "${APPLY[@]}" -f "$DIST/$file"

  local ok=0
  poll "$TIMEOUT_COMPLETE" job_finished "$resource" "$ns" "$job" || ok=$?
  job_logs "$ns" "$job"
  [ "$ok" = 0 ] ||
    die "migration Job $ns/$job did not complete ($WAIT_PROBLEM; logs above): fix the cause," \
      "then make vergabe-migrate FORCE=1"
  say "migration Job $ns/$job completed"
}

main "$@"
