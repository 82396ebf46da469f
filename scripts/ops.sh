#!/usr/bin/env bash
# The operator's small commands on a deployed environment (the Makefile's vergabe-* targets):
#
#   scripts/ops.sh logs           the web pods' logs (FOLLOW=0 prints and returns; TAIL lines)
#   scripts/ops.sh seed           manage.py seed in the running app
#   scripts/ops.sh superuser      manage.py createsuperuser in the running app, interactive
#   scripts/ops.sh restart        a rolling restart of the app, e.g. after a Secret changed
#   scripts/ops.sh rollback       emergency kubectl rollout undo of the Deployment (see below)
#   scripts/ops.sh smoke          the public smoke check of the environment's host
#   scripts/ops.sh secrets-edit   sops on secrets/$ENV/$NAME.sops.yaml
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/waits.sh
source "$ROOT/scripts/waits.sh"
# shellcheck source=scripts/lock.sh
source "$ROOT/scripts/lock.sh"
# shellcheck source=scripts/preflight.sh
source "$ROOT/scripts/preflight.sh"

deployment() { printf 'deployment.apps/%s\n' "$(setting deployment)"; }

logs() {
  local ns target follow=()
  ns=$(setting namespace)
  target=$(deployment)
  [ "${FOLLOW:-1}" = 0 ] || follow=(--follow)
  kcn "$ns" logs "$target" --all-containers --prefix --tail="${TAIL:-200}" "${follow[@]}"
}

# manage [-it] COMMAND...: manage.py COMMAND with the image's own Python, in a pod of the running app.
manage() {
  local ns target python manage_py flags=()
  ns=$(setting namespace)
  target=$(deployment)
  if [ "$1" = -it ]; then
    flags=(-it)
    shift
  fi
  python=$(setting python)
  manage_py=$(setting managePy)
  kcn "$ns" exec "${flags[@]}" "$target" -- "$python" "$manage_py" "$@"
}

# Pods read Secrets only when they start: after a Secret changed (a rotated key or password),
# new pods must start. One at a time, as in any rollout, so the app keeps serving.
restart() {
  local ns target
  ns=$(setting namespace)
  target=$(deployment)
  check_context
  lock_take restart
  announce "restarting $target"
  kcn "$ns" rollout restart "$target"
  kcn "$ns" rollout status "$target" --timeout="${TIMEOUT_ROLLOUT}s"
}

# The normal way back is to revert the image bump in git and deploy, so dist/ and the cluster
# agree. This is the emergency way, with limits: the migrations of the newer version stay
# (nothing reverses them; the older code must cope with the newer schema), and dist/ still names
# the newer image until the bump is reverted. The next deploy takes the fields that rollout undo
# changed back, because every apply passes --force-conflicts.
rollback() {
  local ns target
  ns=$(setting namespace)
  target=$(deployment)
  check_context
  lock_take rollback
  announce "rolling $target back to its previous revision${TO_REVISION:+ ($TO_REVISION)}"
  kcn "$ns" rollout undo "$target" ${TO_REVISION:+"--to-revision=$TO_REVISION"}
  kcn "$ns" rollout status "$target" --timeout="${TIMEOUT_ROLLOUT}s"
  say "now running: $(read_field deployment.apps "$ns" "${target#*/}" \
    '{.spec.template.spec.containers[0].image}')"
  say "not reversed: the migrations of the newer version. dist/ still names $(setting image):"
  say "revert the image bump in git and make vergabe-deploy, or the next deploy rolls forward again."
}

secrets_edit() {
  local row _ name secret_file names=() file=""
  for row in "${SECRET_ROWS[@]}"; do
    IFS=$'\t' read -r _ _ name secret_file <<<"$row"
    names+=("$name")
    [ "$name" != "${NAME:-}" ] || file=$secret_file
  done
  [ "${#names[@]}" -gt 0 ] || die "$PLAN lists no SOPS Secret for $ENV"
  [ -n "${NAME:-}" ] || die "NAME is required: make vergabe-secrets-edit NAME=<one of: ${names[*]}>"
  [ -n "$file" ] || die "NAME=$NAME is not a SOPS Secret of $ENV; one of: ${names[*]}"
  [ -f "$file" ] || die "$file does not exist: make vergabe-secrets-init ENV=$ENV creates it"
  # sops holds the plain text in a temporary file only while the editor is open, and encrypts on save.
  sops "$file"
}

main() {
  plan_load
  case ${1:-} in
    logs) logs ;;
    seed) manage seed ;;
    superuser) manage -it createsuperuser ;;
    restart) restart ;;
    rollback) rollback ;;
    smoke) smoke ;;
    secrets-edit) secrets_edit ;;
    *) die "usage: scripts/ops.sh logs|seed|superuser|restart|rollback|smoke|secrets-edit" ;;
  esac
}

main "$@"
