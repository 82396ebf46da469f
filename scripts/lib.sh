# shellcheck shell=bash
# Shared by the deploy scripts (sourced, never run): the environment's plan, kubectl with an
# explicit context, messages and the dry-run switch. The callers run with `set -euo pipefail`.
#
# dist/$ENV/plan.tsv is the only source of phases, files, waits, Secrets and settings: these
# scripts read it and never keep a second list.

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
  printf 'error: bash %s is too old for the deploy scripts: they need 4.4 or later%s\n' \
    "$BASH_VERSION" " (macOS: brew install bash)" >&2
  exit 1
fi

# The repository: the parent of this file's folder (found without a dirname process).
ROOT=${BASH_SOURCE[0]%/*}
[[ ${BASH_SOURCE[0]} == */* ]] || ROOT=.
cd "$ROOT/.." || exit 1
ROOT=$PWD

ENV=${ENV:-production}
DIST="dist/$ENV"
PLAN="$DIST/plan.tsv"

# The annotations the deploy writes on live objects (never part of dist/).
ANNOTATION_DOMAIN=vergabe-teilnahme.whywhynot.de

# The jsonpath of one of those annotations (the dots of the key escaped).
annotation_path() { printf '{.metadata.annotations.%s/%s}' "${ANNOTATION_DOMAIN//./\\.}" "$1"; }

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
# One clear line on stderr, then a non-zero exit: the way every expected problem ends a script.
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
announce() { printf '\n==> %s\n' "$*"; }

dry_run() { [ "${DRY_RUN:-0}" = 1 ]; }

# --- the plan ---------------------------------------------------------------------------------

declare -gA SETTING=()
# The other rows of the plan by type, in the plan's order, tab-separated without the type.
PHASE_ROWS=()
SECRET_ROWS=()
OBJECT_ROWS=()

# Reads the plan once: its settings, and its phase, secret and object rows.
plan_load() {
  [[ $ENV =~ ^[a-z][a-z0-9-]*$ ]] || die "ENV=$ENV is not an environment name (config/<name>.yaml)"
  [ -f "$PLAN" ] || die "$PLAN not found: run make synth (ENV=$ENV; config/$ENV.yaml must exist)"
  local line rest key
  while IFS= read -r line || [ -n "$line" ]; do
    rest=${line#*$'\t'}
    case ${line%%$'\t'*} in
      setting)
        key=${rest%%$'\t'*}
        if [[ $rest == *$'\t'* ]]; then SETTING[$key]=${rest#*$'\t'}; else SETTING[$key]=""; fi
        ;;
      phase) PHASE_ROWS+=("$rest") ;;
      secret) SECRET_ROWS+=("$rest") ;;
      object) OBJECT_ROWS+=("$rest") ;;
    esac
  done <"$PLAN"
  KUBE_CONTEXT=${KUBE_CONTEXT:-${SETTING[kubeContext]:-}}
  [ -n "$KUBE_CONTEXT" ] || die "$PLAN has no setting kubeContext and KUBE_CONTEXT is not set"
}

# Prints one setting; a missing one is an error naming the plan (use as `x=$(setting key)`).
setting() {
  [ -n "${SETTING[$1]+set}" ] || die "$PLAN has no setting $1: run make synth"
  printf '%s\n' "${SETTING[$1]}"
}

# plan_select ARRAY TYPE [PHASE]: the plan rows of one type (phase, secret, object) into ARRAY,
# tab-separated without the type; with PHASE only the rows of that phase.
plan_select() {
  local -n _selected=$1
  local -n _rows="${2^^}_ROWS"
  local _phase=${3:-} _row
  _selected=()
  for _row in "${_rows[@]}"; do
    [ -z "$_phase" ] || [ "${_row%%$'\t'*}" = "$_phase" ] || continue
    _selected+=("$_row")
  done
}

# --- kubectl ----------------------------------------------------------------------------------

# Every kubectl call of the deploy goes through here, so none runs against the current context
# by accident.
kc() { kubectl --context "$KUBE_CONTEXT" "$@"; }

# kcn NAMESPACE ARGS...: kc in a namespace; the plan's "-" (cluster-scoped) adds no -n.
kcn() {
  local ns=$1
  shift
  if [ "$ns" = - ]; then kc "$@"; else kc -n "$ns" "$@"; fi
}

# "resource namespace/name", or "resource name" when cluster-scoped, for messages.
object_label() {
  if [ "$2" = - ]; then printf '%s %s\n' "$1" "$3"; else printf '%s %s/%s\n' "$1" "$2" "$3"; fi
}

# Shows a command as it would run (kc and kcn spelled out), for dry runs.
show() {
  local words=("$@")
  case ${words[0]} in
    kc) words=(kubectl --context "$KUBE_CONTEXT" "${words[@]:1}") ;;
    kcn) words=(kubectl --context "$KUBE_CONTEXT" -n "${words[1]}" "${words[@]:2}") ;;
  esac
  printf '  $'
  printf ' %q' "${words[@]}"
  printf '\n'
}

# Runs a command that changes the cluster, or only shows it in a dry run.
change() {
  if dry_run; then
    show "$@"
  else
    "$@"
  fi
}

# The server-side apply every phase uses. --force-conflicts: dist/ is the reviewed truth, so a
# field someone changed by hand (kubectl edit, scale, rollout undo) is taken back instead of
# stopping every later deploy with a conflict; `make vergabe-diff` shows such drift beforehand.
# shellcheck disable=SC2034 # used by the scripts that source this file
APPLY=(apply --server-side --field-manager=vergabe-deploy --force-conflicts)

# utc_now FORMAT: the time now in UTC, formatted as by strftime, without a date process.
utc_now() { TZ=UTC0 printf "%($1)T\n" -1; }

# --- the repo ---------------------------------------------------------------------------------

# The commit being deployed, marked when the working tree differs from it (ALLOW_DIRTY=1).
repo_commit() {
  local commit
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown
  [ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit-dirty"
  printf '%s\n' "$commit"
}

# --- the smoke check --------------------------------------------------------------------------

# The public check of the environment's host, with the plan's address and health path;
# SMOKE_ARGS adds or overrides flags (ports, a test CA).
smoke() {
  local args extra host address health untrusted
  host=$(setting host)
  address=$(setting ingressAddress)
  health=$(setting healthPath)
  untrusted=$(setting acceptUntrustedChain)
  args=(--host "$host" --address "$address" --health-path "$health")
  [ "$untrusted" = true ] && args+=(--accept-untrusted)
  read -r -a extra <<<"${SMOKE_ARGS:-}"
  if dry_run; then
    show node scripts/smoke.js "${args[@]}" "${extra[@]}"
    return 0
  fi
  node scripts/smoke.js "${args[@]}" "${extra[@]}"
}
