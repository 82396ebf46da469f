# shellcheck shell=bash
# What the deploy waits for after an apply: one function per WAIT rule of the plan (sourced by
# deploy.sh, migrate.sh and ops.sh, after lib.sh). Every wait has a timeout in seconds
# (TIMEOUT_<RULE>) and polls every POLL_INTERVAL seconds (0 in the tests).

POLL_INTERVAL=${POLL_INTERVAL:-5}
TIMEOUT_ACTIVE=${TIMEOUT_ACTIVE:-120}
TIMEOUT_APPLIED=${TIMEOUT_APPLIED:-300}
# The migration Job stops itself after activeDeadlineSeconds (900); the wait lasts a bit longer.
TIMEOUT_COMPLETE=${TIMEOUT_COMPLETE:-960}
# The Deployment reports a stuck rollout after progressDeadlineSeconds (600).
TIMEOUT_ROLLOUT=${TIMEOUT_ROLLOUT:-660}
# A first certificate waits for Let's Encrypt to validate the host.
TIMEOUT_READY=${TIMEOUT_READY:-600}
TIMEOUT_BACKUP=${TIMEOUT_BACKUP:-1800}
# How many log lines per pod a failed Job shows.
LOG_LINES=${LOG_LINES:-200}

# The rules this file implements; check_plan refuses a plan with any other.
WAIT_RULES=(none active applied complete rollout ready)

# What the last check saw, and why the last wait failed, for the caller's one error line.
LAST_SEEN=""
WAIT_PROBLEM=""

# poll TIMEOUT CHECK [ARGS...]: runs CHECK until it returns 0 (done) or 2 (failed for good);
# returns 0 when done, 1 when failed or after TIMEOUT seconds, with WAIT_PROBLEM saying which.
# Each new state seen while waiting is printed once.
poll() {
  local timeout=$1 start=$SECONDS rc shown=""
  shift
  LAST_SEEN=""
  while true; do
    rc=0
    "$@" || rc=$?
    case $rc in
      0) return 0 ;;
      2)
        WAIT_PROBLEM=$LAST_SEEN
        return 1
        ;;
    esac
    if ((SECONDS - start >= timeout)); then
      WAIT_PROBLEM="timed out after ${timeout}s, last seen: ${LAST_SEEN:-nothing}"
      return 1
    fi
    if [ -n "$LAST_SEEN" ] && [ "$LAST_SEEN" != "$shown" ]; then
      say "    $LAST_SEEN"
      shown=$LAST_SEEN
    fi
    sleep "$POLL_INTERVAL"
  done
}

# One jsonpath read of an object; prints nothing when it does not exist (yet). Several fields
# are joined with "|" (not a tab: read would merge empty fields), the free text last.
read_field() {
  local resource=$1 ns=$2 name=$3 path=$4
  kcn "$ns" get "$resource" "$name" -o "jsonpath=$path" 2>/dev/null || true
}

namespace_active() {
  LAST_SEEN=$(read_field namespace - "$1" '{.status.phase}')
  case $LAST_SEEN in
    Active) return 0 ;;
    Terminating) LAST_SEEN="Terminating (being deleted; wait until it is gone)" && return 2 ;;
    *) return 1 ;;
  esac
}

# cnpg Database and DatabaseRole: applied true at the current generation. Applied false at the
# current generation is cnpg's verdict on this spec (e.g. a role conflict): no use waiting.
cnpg_applied() {
  local generation observed applied message
  local fields='{.metadata.generation}|{.status.observedGeneration}|{.status.applied}|{.status.message}{"\n"}'
  IFS='|' read -r generation observed applied message < <(read_field "$1" "$2" "$3" "$fields") || true
  LAST_SEEN="generation ${generation:-?}, observed ${observed:-none}, applied ${applied:-unset}"
  LAST_SEEN+="${message:+: $message}"
  [ -n "$generation" ] && [ "$observed" = "$generation" ] || return 1
  case $applied in
    true) return 0 ;;
    false) return 2 ;;
    *) return 1 ;;
  esac
}

# The jsonpath of cert-manager's Ready condition: status|reason|message.
READY_CONDITION='.status.conditions[?(@.type=="Ready")]'
READY_FIELDS="{$READY_CONDITION.status}{\"|\"}{$READY_CONDITION.reason}{\"|\"}"
READY_FIELDS+="{$READY_CONDITION.message}{\"\\n\"}"

# ready_seen FIELDS: whether READY_FIELDS read "True", with what was read in LAST_SEEN.
ready_seen() {
  local status reason message
  IFS='|' read -r status reason message <<<"$1" || true
  LAST_SEEN="Ready ${status:-unset}${reason:+ ($reason)}${message:+: $message}"
  [ "$status" = True ]
}

# cert-manager's Ready condition (a Certificate, a ClusterIssuer).
condition_ready() { ready_seen "$(read_field "$1" "$2" "$3" "$READY_FIELDS")"; }

# A Job's terminal condition. `kubectl wait --for=condition=Complete` would never return for a
# failed Job, so both are polled.
job_finished() {
  local types
  types=" $(read_field "$1" "$2" "$3" '{.status.conditions[?(@.status=="True")].type}') "
  case $types in
    *" Failed "*) LAST_SEEN=Failed && return 2 ;;
    *" Complete "*) LAST_SEEN=Complete && return 0 ;;
    *) LAST_SEEN=running && return 1 ;;
  esac
}

# A cnpg Backup: completed, or failed for good.
backup_finished() {
  local phase error
  IFS='|' read -r phase error < <(read_field "$1" "$2" "$3" '{.status.phase}{"|"}{.status.error}{"\n"}') ||
    true
  LAST_SEEN="${phase:-pending}${error:+: $error}"
  case $phase in
    completed) return 0 ;;
    failed | walArchivingFailing) return 2 ;;
    *) return 1 ;;
  esac
}

# The logs of a Job's pods (each retry), for the operator to see why it failed.
job_logs() {
  local ns=$1 name=$2
  say "--- logs of Job $ns/$name (last $LOG_LINES lines per pod) ---"
  kcn "$ns" logs -l "batch.kubernetes.io/job-name=$name" --all-containers --prefix --tail="$LOG_LINES" ||
    say "(no logs: the pods are gone or never started; kubectl -n $ns describe job $name)"
  say "--- end of logs ---"
}

# wait_for RULE RESOURCE NAMESPACE NAME: waits as the plan says; returns 1 when the object
# failed or the timeout passed, with WAIT_PROBLEM saying which. A failed Job's logs are printed.
wait_for() {
  local rule=$1 resource=$2 ns=$3 name=$4 timeout="TIMEOUT_${1^^}"
  [ "$rule" = none ] || say "  wait: $(object_label "$resource" "$ns" "$name") $rule, up to ${!timeout:-?}s"
  if dry_run; then return 0; fi
  case $rule in
    none) return 0 ;;
    active) poll "$TIMEOUT_ACTIVE" namespace_active "$name" ;;
    applied) poll "$TIMEOUT_APPLIED" cnpg_applied "$resource" "$ns" "$name" ;;
    ready) poll "$TIMEOUT_READY" condition_ready "$resource" "$ns" "$name" ;;
    rollout)
      # shellcheck disable=SC2034 # read by the caller
      kcn "$ns" rollout status "$resource/$name" --timeout="${TIMEOUT_ROLLOUT}s" ||
        { WAIT_PROBLEM="kubectl rollout status failed (above)" && return 1; }
      ;;
    complete)
      poll "$TIMEOUT_COMPLETE" job_finished "$resource" "$ns" "$name" || { job_logs "$ns" "$name" && return 1; }
      ;;
    *) die "$PLAN: object $(object_label "$resource" "$ns" "$name") has WAIT $rule; known: ${WAIT_RULES[*]}" ;;
  esac
}
