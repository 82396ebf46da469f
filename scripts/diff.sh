#!/usr/bin/env bash
# make vergabe-diff: server-side `kubectl diff` of each phase file of dist/$ENV/ against the
# cluster, as the deploy would apply it. Exit 0 with or without differences, non-zero when a
# diff could not be made. The Secrets from SOPS are not diffed: that would decrypt them.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  plan_load
  local row id file _ rc changed=()
  for row in "${PHASE_ROWS[@]}"; do
    IFS=$'\t' read -r id file _ <<<"$row"
    [ "$file" != - ] || continue
    [ -f "$DIST/$file" ] || die "$PLAN names $DIST/$file, which does not exist: run make synth"
    announce "diff $id ($DIST/$file)"
    rc=0
    kc diff --server-side --field-manager=vergabe-deploy --force-conflicts -f "$DIST/$file" || rc=$?
    case $rc in
      0) say "  no differences" ;;
      1) changed+=("$id") ;;
      *) die "kubectl diff of $DIST/$file failed (exit $rc, above); before the first deploy" \
        "the namespace does not exist, so its objects cannot be compared" ;;
    esac
  done
  announce "summary"
  say "  Secrets from SOPS are not compared (that would decrypt them)"
  if [ "${#changed[@]}" -eq 0 ]; then
    say "  the cluster matches $DIST"
  else
    say "  differences in ${changed[*]}: make vergabe-deploy ENV=$ENV applies them"
  fi
}

main "$@"
