#!/usr/bin/env bash
# make vergabe-deploy: preflight, the deploy lock, then every phase of dist/$ENV/plan.tsv in its
# order (apply, then wait as the plan says), the prune pass, a summary and the smoke check.
# The first failure stops it with the reason; nothing after it is applied.
#
#   DRY_RUN=1     print the phases and commands, call no cluster
#   BACKUP=1      back the database cluster up before the migrations (also: backupBeforeMigrate)
#   ALLOW_DIRTY=1 deploy dist/ as it is on disk, uncommitted changes included
#   SMOKE=0       skip the smoke check at the end; SMOKE_ARGS adds flags to it
#   TIMEOUT_<RULE>, POLL_INTERVAL  see scripts/waits.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/waits.sh
source "$ROOT/scripts/waits.sh"
# shellcheck source=scripts/lock.sh
source "$ROOT/scripts/lock.sh"
# shellcheck source=scripts/preflight.sh
source "$ROOT/scripts/preflight.sh"

# Objects marked `prune` in the plan form one ApplySet per environment, whose parent is this
# ConfigMap in the app namespace. Objects marked `keep` (the Namespace, volumes, the database and
# its role, Secrets) are never applied under it, so kubectl can never prune them; removing one of
# those is a manual step.
APPLYSET_PARENT="configmaps/applyset-$ENV"
APPLYSET_APPLY=(apply --server-side --field-manager=vergabe-deploy-applyset --force-conflicts
  "--applyset=$APPLYSET_PARENT" --prune)

# --- phases -----------------------------------------------------------------------------------

# A synthesized file: apply it whole, then wait for its objects in the plan's order.
phase_dist() {
  local id=$1 file=$2 rows row _ resource ns name wait
  if [ "$file" = - ]; then
    say "  nothing to apply"
    return 0
  fi
  change kc "${APPLY[@]}" -f "$DIST/$file"
  plan_select rows object "$id"
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r _ resource ns name wait _ <<<"$row"
    wait_for "$wait" "$resource" "$ns" "$name" || stop_at "$wait" "$(object_label "$resource" "$ns" "$name")"
    after_wait "$wait" "$resource" "$ns" "$name"
  done
}

# Why the deploy stops when a wait failed.
stop_at() {
  local wait=$1 what=$2
  case $wait in
    complete) die "$what did not complete ($WAIT_PROBLEM; logs above): nothing after it was applied, the" \
      "running version keeps serving; fix the cause and deploy again (or make vergabe-migrate FORCE=1)" ;;
    rollout) die "$what did not roll out ($WAIT_PROBLEM): the previous pods keep serving until new ones" \
      "are ready; make vergabe-status, make vergabe-logs, or make vergabe-rollback" ;;
    *) die "$what did not become $wait ($WAIT_PROBLEM): nothing after it was applied" ;;
  esac
}

# What follows a successful wait: a finished migration retires the older migration Jobs of the
# app; a rolled-out Deployment records the commit it came from.
after_wait() {
  local wait=$1 resource=$2 ns=$3 name=$4
  case $wait in
    complete) remove_older_jobs "$resource" "$ns" "$name" ;;
    rollout)
      change kcn "$ns" annotate "$resource/$name" "$ANNOTATION_DOMAIN/deployed-commit=$COMMIT" --overwrite
      ;;
  esac
}

# The other Jobs with the same component and instance labels as the one that just finished.
remove_older_jobs() {
  local resource=$1 ns=$2 name=$3 component instance jobs job older=()
  if dry_run; then
    say "  then: delete the other Jobs with the component and instance labels of $name"
    return 0
  fi
  local labels='.metadata.labels.app\.kubernetes\.io'
  IFS='|' read -r component instance < <(read_field "$resource" "$ns" "$name" \
    "{$labels/component}{\"|\"}{$labels/instance}{\"\\n\"}") || true
  if [ -z "$component" ] || [ -z "$instance" ]; then
    warn "$name has no component or instance label: older migration Jobs are left for the prune pass"
    return 0
  fi
  mapfile -t jobs < <(kcn "$ns" get "$resource" -o name \
    -l "app.kubernetes.io/component=$component,app.kubernetes.io/instance=$instance")
  for job in "${jobs[@]}"; do
    [ "${job#*/}" = "$name" ] || older+=("$job")
  done
  [ "${#older[@]}" -eq 0 ] || kcn "$ns" delete "${older[@]}" --ignore-not-found
}

# The SOPS Secrets, each decrypted straight into kubectl: never a file, never the terminal.
# pipefail makes a failing sops fail the phase even though kubectl reads on.
phase_sops() {
  local id=$1 rows row _ ns name file
  plan_select rows secret "$id"
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r _ ns name file <<<"$row"
    say "  Secret $ns/$name from $file"
    if dry_run; then
      printf '  $ sops --decrypt %q | kubectl --context %q %s --namespace %q -f -\n' \
        "$file" "$KUBE_CONTEXT" "${APPLY[*]}" "$ns"
      continue
    fi
    sops --decrypt "$file" | kc "${APPLY[@]}" --namespace "$ns" -f - ||
      die "Secret $ns/$name was not applied (sops or kubectl failed, above): nothing after it was applied"
  done
}

# A phase the deploy makes itself: the function step_<name of the phase>.
phase_deploy() {
  local id=$1
  "step_${id#*-}"
}

# A cnpg Backup of the database cluster before migrations that are never reversed.
step_backup() {
  local cluster ns name method how manifest
  if ! backup_wanted; then
    say "  skipped: BACKUP=1, or backupBeforeMigrate: true in config/$ENV.yaml, turns it on"
    return 0
  fi
  cluster=$(setting databaseCluster)
  ns=$(setting databaseNamespace)
  name="$cluster-$(setting namespace)-$(utc_now %Y%m%d%H%M%S)"
  # The preflight checked that the Cluster is set up for this method.
  method=$(setting backupMethod)
  how="  method: $method"
  if [ "$method" = plugin ]; then
    how+=$'\n'"  pluginConfiguration:"$'\n'"    name: $(setting backupPlugin)"
  fi
  manifest="apiVersion: postgresql.cnpg.io/v1
kind: Backup
metadata:
  name: $name
  namespace: $ns
  annotations:
    $ANNOTATION_DOMAIN/reason: before the migrations of $ENV at $COMMIT
spec:
  cluster:
    name: $cluster
$how"
  if dry_run; then
    show kc create -f -
    say "  wait: backup.postgresql.cnpg.io $ns/$name (completed)"
    return 0
  fi
  printf '%s\n' "$manifest" | kc create -f -
  poll "$TIMEOUT_BACKUP" backup_finished backup.postgresql.cnpg.io "$ns" "$name" ||
    die "backup $ns/$name did not complete ($WAIT_PROBLEM): the migrations did not run;" \
      "kubectl --context $KUBE_CONTEXT -n $ns describe backup $name"
}

run_phases() {
  local row id file source title i=0
  for row in "${PHASE_ROWS[@]}"; do
    IFS=$'\t' read -r id file source title <<<"$row"
    i=$((i + 1))
    announce "phase $i/${#PHASE_ROWS[@]} $id: $title"
    case $source in
      dist) phase_dist "$id" "$file" ;;
      sops) phase_sops "$id" ;;
      deploy) phase_deploy "$id" ;;
    esac
    # A first deploy takes the lock as soon as the namespace phase made the namespace.
    [ "$LOCK_HELD" = 1 ] || dry_run || lock_take deploy
  done
}

# --- prune ------------------------------------------------------------------------------------

# Re-applies exactly the `prune` objects as one ApplySet; kubectl deletes the members of earlier
# deploys that are no longer among them. Its own field manager: the per-phase applies (manager
# vergabe-deploy) then never own, and so never strip, the ApplySet labels this pass sets.
# What only a first real run shows: that the workstation's kubectl accepts a ConfigMap parent
# with --server-side (ApplySet is alpha, behind KUBECTL_APPLYSET), that the user may list and
# delete every pruned kind, and which objects the first pass adopts; run make vergabe-diff first.
prune_pass() {
  local ns row prunable=0
  ns=$(setting namespace)
  announce "prune: the prunable objects again, as ApplySet $APPLYSET_PARENT;" \
    "kubectl deletes the ones gone from $DIST"
  for row in "${OBJECT_ROWS[@]}"; do
    [[ $row != *$'\t'prune ]] || prunable=$((prunable + 1))
  done
  if [ "$prunable" = 0 ]; then
    say "  the plan marks no object prune: nothing to do"
    return 0
  fi
  if dry_run; then
    printf '  $ node scripts/prune-set.js --env %q' "$ENV"
    printf ' | KUBECTL_APPLYSET=true kubectl --context %q %s -n %q -f -\n' \
      "$KUBE_CONTEXT" "${APPLYSET_APPLY[*]}" "$ns"
    return 0
  fi
  node scripts/prune-set.js --env "$ENV" | KUBECTL_APPLYSET=true kc "${APPLYSET_APPLY[@]}" -n "$ns" -f - ||
    die "the prune pass failed (above): every phase is applied, but objects removed from the code may remain"
}

# --- summary ----------------------------------------------------------------------------------

summary() {
  local ns image expiry
  ns=$(setting namespace)
  if dry_run; then
    announce "end of the dry run of $ENV"
    return 0
  fi
  announce "deployed $ENV in $((SECONDS / 60))m$((SECONDS % 60))s"
  image=$(read_field deployment.apps "$ns" "$(setting deployment)" '{.spec.template.spec.containers[0].image}')
  expiry=$(read_field certificate.cert-manager.io "$ns" "$(setting certificate)" '{.status.notAfter}')
  say "  image        ${image:-unknown}"
  say "  url          https://$(setting host)/"
  say "  certificate  expires ${expiry:-unknown}"
  say "  commit       $COMMIT"
}

main() {
  plan_load
  COMMIT=$(repo_commit)
  if dry_run; then
    announce "dry run of the $ENV deploy to $KUBE_CONTEXT: no cluster is called, nothing changes"
    check_plan
    say "  preflight (not run): tools, image tag, clean tree, secret contract, context, server version," \
      "served resources, ClusterIssuer, database cluster, DNS, permissions, fresh dist/"
    lock_take deploy
  else
    preflight
    if [ -n "$(read_field namespace - "$(setting namespace)" '{.metadata.name}')" ]; then
      lock_take deploy
    else
      say "  lock: namespace $(setting namespace) does not exist yet (first deploy):" \
        "the lock is taken right after the namespace phase"
    fi
  fi

  run_phases
  prune_pass
  lock_release
  summary

  if [ "${SMOKE:-1}" = 0 ]; then
    say "smoke check skipped (SMOKE=0)"
    return 0
  fi
  announce "smoke check of https://$(setting host)/"
  smoke || die "the smoke check failed (above); the deploy itself is complete: make vergabe-status"
}

main "$@"
