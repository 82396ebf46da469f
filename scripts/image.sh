#!/usr/bin/env bash
# `make vergabe-image APP_DIR=<the app's checkout> [ENV=production]`, i.e.
#   scripts/image.sh <APP_DIR> [ENV]
# Builds the app's image from a clean git checkout, tags it with the checkout's commit, pushes
# it, and bumps config/<ENV>.yaml to that tag and the digest the registry reported for the push
# (then re-synthesizes dist/), so what is deployed is exactly what was pushed.
#
# The build context is `git archive` of the commit, streamed to `docker build -`: exactly the
# committed files, never a file git ignores (a local .env, a virtualenv, a db.sqlite3), whatever
# the app's .dockerignore says. Files of submodules and Git LFS content are not in an archive.
#
# The digest comes from `docker push`'s own last line, "<tag>: digest: sha256:<hex> size: <n>":
# that is the registry's answer for this very push of this very tag. `docker inspect`'s
# RepoDigests is a local list with one entry per repository the image was ever tagged for, in
# no promised order (index 0 may name another repository), and with the containerd image store
# it holds digests before anything was pushed.
set -euo pipefail

USAGE='usage: scripts/image.sh <APP_DIR> [ENV]   (ENV: an environment in config/, default production)'

PUSH_LOG=''
cleanup() { if [ -n "$PUSH_LOG" ]; then rm -f "$PUSH_LOG"; fi; }
trap cleanup EXIT

say() { printf '==> %s\n' "$*"; }
fail() { printf 'image: %s\n' "$*" >&2; exit 1; }

# The checkout must be a git work tree without any change: the image is built from its commit,
# and an uncommitted change (an untracked file too) is most likely one the operator meant to ship.
check_checkout() {
  local app_dir=$1 inside dirty
  inside=$(git -C "$app_dir" rev-parse --is-inside-work-tree 2>/dev/null) || inside=false
  [ "$inside" = true ] \
    || fail "$app_dir is not a git checkout; APP_DIR must be a clone of the app's repository"
  git -C "$app_dir" rev-parse --verify --quiet HEAD >/dev/null || fail "$app_dir has no commit yet"
  dirty=$(git -C "$app_dir" status --porcelain) || fail "git status failed in $app_dir"
  if [ -n "$dirty" ]; then
    printf '%s\n' "$dirty" >&2
    fail "$app_dir has uncommitted changes (above);" \
      "commit or remove them, the image must be exactly one commit"
  fi
  git -C "$app_dir" cat-file -e HEAD:Dockerfile 2>/dev/null \
    || fail "$app_dir has no Dockerfile in its commit (the build context is the commit's files)"
}

# Builds image $3 from the files of commit $2 of the checkout $1 (see the top of this file).
build_image() {
  local app_dir=$1 commit=$2 reference=$3 env=$4 statuses
  set +e
  git -C "$app_dir" archive --format=tar "$commit" | docker build -t "$reference" -
  statuses=("${PIPESTATUS[@]}")
  set -e
  [ "${statuses[1]}" = 0 ] || fail "docker build failed (above); nothing pushed, config/$env.yaml unchanged"
  [ "${statuses[0]}" = 0 ] \
    || fail "git archive $commit failed (above); nothing pushed, config/$env.yaml unchanged"
}

# image.repository of config/<env>.yaml with tag $1, from the output $2 of `bump.js --dry-run`,
# which validated the file and names the image it would write: "bump: the image would be <ref>".
image_repository() {
  local tag=$1 checked=$2
  if [[ $checked =~ (^|$'\n')bump:\ the\ image\ would\ be\ ([^[:space:]]+):${tag}($|$'\n') ]]; then
    printf '%s' "${BASH_REMATCH[2]}"
  fi
}

# The digest in `docker push`'s output for tag $2, from the file $1; empty when there is none.
pushed_digest() {
  local log=$1 tag=$2 line digest=''
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ (^|[[:space:]])${tag}:\ digest:\ (sha256:[0-9a-f]{64})\ size: ]]; then
      digest=${BASH_REMATCH[2]}
    fi
  done <"$log"
  printf '%s' "$digest"
}

main() {
  if [ "$#" -lt 1 ] || [ "$#" -gt 2 ] || [ -z "$1" ]; then fail "APP_DIR is required; $USAGE"; fi
  local env=${2:-production} app_dir root commit checked repository reference digest
  [ -d "$1" ] || fail "APP_DIR $1 is not a folder"
  app_dir=$(cd "$1" && pwd)
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$root"

  say "checking that $app_dir is a clean git checkout"
  check_checkout "$app_dir"
  commit=$(git -C "$app_dir" rev-parse HEAD)

  say "checking that config/$env.yaml accepts tag $commit"
  checked=$(node scripts/bump.js --env "$env" --tag "$commit" --dry-run) \
    || fail "stopped before the build: the configuration check above failed"
  repository=$(image_repository "$commit" "$checked")
  [ -n "$repository" ] \
    || fail "bump.js --dry-run did not name the image of tag $commit; stopped before the build"
  reference="$repository:$commit"

  command -v docker >/dev/null \
    || fail "docker is not installed (or not on PATH); it is needed to build and push $reference"

  say "git -C $app_dir archive $commit | docker build -t $reference -"
  build_image "$app_dir" "$commit" "$reference" "$env"

  say "docker push $reference"
  PUSH_LOG=$(mktemp)
  docker push "$reference" 2>&1 | tee "$PUSH_LOG" \
    || fail "docker push failed (above); config/$env.yaml unchanged"
  digest=$(pushed_digest "$PUSH_LOG" "$commit")
  [ -n "$digest" ] \
    || fail "docker push printed no \"$commit: digest: sha256:... size: ...\" line; config/$env.yaml unchanged"

  say "bumping config/$env.yaml to $reference@$digest"
  node scripts/bump.js --env "$env" --tag "$commit" --digest "$digest" \
    || fail "the bump failed (above); $reference@$digest is pushed: once fixed, run" \
      "make vergabe-bump ENV=$env TAG=$commit DIGEST=$digest"
}

main "$@"
