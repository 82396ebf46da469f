# shellcheck shell=bash
# The deploy lock (sourced after lib.sh): a coordination.k8s.io Lease named deploy-lock in the
# app namespace. `kubectl create` fails when it exists, so of two deploys exactly one gets it.
# Holder (user@host), start time, commit and action are on the Lease; it is deleted when the
# script exits, however it exits, unless someone broke and re-took it meanwhile.
#
# A first deploy finds no namespace to hold the Lease: deploy.sh then takes the lock right after
# the namespace phase (applying a Namespace twice is harmless; the second of two concurrent first
# deploys stops there). A lock left by a killed deploy (kill -9, a lost laptop) stays until
# someone deletes it; the message when it is held says how.

LOCK_NAME=deploy-lock
LOCK_HELD=0
LOCK_TOKEN=""

# lock_manifest NAMESPACE HOLDER ACTION: the Lease, into LOCK_MANIFEST.
lock_manifest() {
  local ns=$1 holder=$2 action=$3 since
  since=$(utc_now %Y-%m-%dT%H:%M:%SZ)
  IFS= read -r -d '' LOCK_MANIFEST <<EOF || true
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: $LOCK_NAME
  namespace: $ns
  annotations:
    $ANNOTATION_DOMAIN/locked-by: "$holder"
    $ANNOTATION_DOMAIN/locked-since: "$since"
    $ANNOTATION_DOMAIN/locked-for: "$action of $ENV at ${COMMIT:-$(repo_commit)}"
    $ANNOTATION_DOMAIN/lock-token: "$LOCK_TOKEN"
spec:
  holderIdentity: "$holder"
  acquireTime: "${since%Z}.000000Z"
EOF
}

# Who holds the lock, since when and for what, as one phrase.
lock_holder() {
  local ns=$1 path info by since what
  path="$(annotation_path locked-by)|$(annotation_path locked-since)|$(annotation_path locked-for)"
  info=$(kcn "$ns" get lease "$LOCK_NAME" -o "jsonpath=$path" 2>/dev/null) || info=""
  IFS='|' read -r by since what <<<"$info" || true
  printf '%s since %s (%s)\n' "${by:-someone}" "${since:-an unknown time}" "${what:-unknown action}"
}

# lock_take ACTION: takes the lock for ACTION (deploy, migrate, rollback) or stops with who holds it.
lock_take() {
  local action=$1 ns holder out
  ns=$(setting namespace)
  holder="${USER:-$(id -un)}@${HOSTNAME:-unknown}"
  holder=${holder//[\"\\]/}
  LOCK_TOKEN="$$-${EPOCHREALTIME/[.,]/}"
  if dry_run; then
    say "  lock: would create lease $ns/$LOCK_NAME for $holder"
    return 0
  fi

  lock_manifest "$ns" "$holder" "$action"
  if out=$(kc create -f - <<<"$LOCK_MANIFEST" 2>&1); then
    LOCK_HELD=1
    trap 'lock_exit $?' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    say "  lock: lease $ns/$LOCK_NAME taken by $holder"
    return 0
  fi
  case $out in
    *AlreadyExists* | *"already exists"*)
      die "the deploy lock of $ENV is held by $(lock_holder "$ns"): wait until it ends; if nothing runs any" \
        "more, break it with kubectl --context $KUBE_CONTEXT -n $ns delete lease $LOCK_NAME" ;;
    *) die "cannot take the deploy lock (lease $ns/$LOCK_NAME): ${out%%$'\n'*}" ;;
  esac
}

# Releases the lock if this script holds it; leaves a lock alone that someone broke and re-took.
lock_release() {
  [ "$LOCK_HELD" = 1 ] || return 0
  local ns token
  ns=$(setting namespace)
  token=$(kcn "$ns" get lease "$LOCK_NAME" -o "jsonpath=$(annotation_path lock-token)" 2>/dev/null) || token=""
  if [ "$token" = "$LOCK_TOKEN" ]; then
    if kcn "$ns" delete lease "$LOCK_NAME" --ignore-not-found >/dev/null; then
      say "  lock: lease $ns/$LOCK_NAME released"
    else
      warn "could not delete lease $ns/$LOCK_NAME: delete it by hand"
    fi
  else
    warn "lease $ns/$LOCK_NAME is no longer this run's (broken and taken by someone else); left alone"
  fi
  LOCK_HELD=0
}

# The EXIT trap: release, keep the exit status.
lock_exit() {
  local status=$1
  lock_release || true
  exit "$status"
}
