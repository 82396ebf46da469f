#!/usr/bin/env bash
# Creates the missing encrypted Secret files secrets/<env>/<name>.sops.yaml that
# dist/<env>/secrets.yaml asks for, with freshly generated strong values:
#   - a Django secret key;
#   - ONE URL-safe database password, written to both the app's Secret and the role's Secret;
#   - the role name as the role Secret's username;
#   - a registry pull Secret from REGISTRY_USER / REGISTRY_TOKEN (skipped when they are unset).
# scripts/secret-manifest.js renders the new manifests (one process for all) into a pipe; the
# script holds them in memory only and pipes each into
# `sops --encrypt --filename-override <target> ... /dev/stdin`, so the creation rules of
# .sops.yaml apply and no plaintext file is ever written. The encrypted output goes to a temp
# file in the same folder, is checked by scripts/secret-contract.js and only then moved into
# place, all files or none. Existing files are never overwritten.
#
# Usage: scripts/secrets-init.sh <env> [--root <repo dir>]
# Exit 0 done (or nothing to do), 1 refused or failed (nothing written), 2 usage.
set -euo pipefail

readonly SOPS_MIN_MAJOR=3 SOPS_MIN_MINOR=9
readonly PLACEHOLDER_RECIPIENT='age1replace'

scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly scripts_dir
temp_files=()

say() { printf 'secrets-init: %s\n' "$*"; }
die() { printf 'secrets-init: %s\n' "$*" >&2; exit 1; }
usage() {
  printf 'secrets-init: %s\nusage: scripts/secrets-init.sh <env> [--root <repo dir>]\n' "$*" >&2
  exit 2
}

cleanup() {
  if ((${#temp_files[@]} > 0)); then rm -f -- "${temp_files[@]}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The checks that need no sops: environment, synthesized contract, creation rules.
check_inputs() {
  local env="$1"
  [[ "$env" =~ ^[a-z][a-z0-9-]*$ ]] || usage "\"$env\" is not an environment name"
  [[ -f "config/$env.yaml" ]] || usage "unknown environment $env: there is no config/$env.yaml"
  [[ -f "dist/$env/secrets.yaml" && -f "dist/$env/plan.tsv" ]] \
    || usage "dist/$env/secrets.yaml or plan.tsv not found: run npm run synth"
}

check_creation_rules() {
  [[ -f .sops.yaml ]] || die ".sops.yaml not found: sops needs its creation rules to know the recipients"
  if grep -qi -- "$PLACEHOLDER_RECIPIENT" .sops.yaml; then
    die ".sops.yaml still holds the placeholder recipient (age1replace...): put the operators' age" \
      "public keys there first (age-keygen prints one; see the comment in .sops.yaml)"
  fi
}

check_sops() {
  command -v sops >/dev/null 2>&1 \
    || die "sops not found on PATH: install sops >= $SOPS_MIN_MAJOR.$SOPS_MIN_MINOR" \
      "(https://github.com/getsops/sops/releases)"
  local version
  # No network check for a newer release: just the version line.
  version="$(SOPS_DISABLE_VERSION_CHECK=1 sops --version 2>/dev/null | head -n 1)" || true
  if [[ ! "$version" =~ ([0-9]+)\.([0-9]+)\.[0-9]+ ]]; then
    die "cannot read the sops version (sops --version said \"$version\");" \
      "need >= $SOPS_MIN_MAJOR.$SOPS_MIN_MINOR"
  fi
  local major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
  if ((major < SOPS_MIN_MAJOR || (major == SOPS_MIN_MAJOR && minor < SOPS_MIN_MINOR))); then
    die "sops $major.$minor is too old: --filename-override needs sops >= $SOPS_MIN_MAJOR.$SOPS_MIN_MINOR"
  fi
}

# 256 random bits as 43 URL-safe characters, straight from the kernel through pipes.
new_password() {
  head -c 32 /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '='
}

# Renders the manifests of the Secrets named in $3... into MANIFESTS, in that order, with one
# node process; $2 is the database password, or empty when none of them needs it. They arrive
# through a pipe and stay in this shell's memory.
render_manifests() {
  local env="$1" password="$2" name
  shift 2
  local -a names=()
  for name in "$@"; do names+=(--name "$name"); done
  MANIFESTS=()
  # printf is a shell builtin: the password never appears in a process's arguments.
  mapfile -d '' -t MANIFESTS < <(printf '%s\n' "$password" \
    | node "$scripts_dir/secret-manifest.js" render --env "$env" --root . --null "${names[@]}")
  wait "$!" || return 1
  ((${#MANIFESTS[@]} == $#))
}

# Encrypts MANIFESTS[$1], the Secret $2, for the target file $3 into a temp file next to it and
# sets ENCRYPTED_TEMP to its path.
encrypt_one() {
  local index="$1" name="$2" target="$3" temp
  temp="$(mktemp "${target%/*}/.${name}.encrypting.XXXXXX")" || return 1
  temp_files+=("$temp")
  printf '%s' "${MANIFESTS[$index]}" \
    | sops --encrypt --filename-override "$target" --input-type yaml --output-type yaml /dev/stdin \
      >"$temp" || return 1
  ENCRYPTED_TEMP="$temp"
}

main() {
  local env="" root="$scripts_dir/.."
  while (($# > 0)); do
    case "$1" in
      --root) (($# >= 2)) || usage "--root needs a directory"; root="$2"; shift 2 ;;
      -*) usage "unknown option $1" ;;
      *) [[ -z "$env" ]] || usage "one environment only"; env="$1"; shift ;;
    esac
  done
  [[ -n "$env" ]] || usage "the environment is missing"
  cd "$root" || usage "--root $root is not a directory"
  check_inputs "$env"

  local listing
  listing="$(node "$scripts_dir/secret-manifest.js" list --env "$env" --root .)" \
    || die "cannot list the Secrets of dist/$env/secrets.yaml (see above)"

  # Decide before anything is generated: what exists, what to create, what to skip.
  local name file needs
  local -a create=() create_files=() kept=() skipped=() pw_existing=() pw_missing=()
  while IFS=$'\t' read -r name file needs; do
    [[ -n "$name" ]] || continue
    if [[ -e "$file" ]]; then
      kept+=("$file")
      [[ "$needs" != *database-password* ]] || pw_existing+=("$file")
      continue
    fi
    if [[ "$needs" == *registry-credentials* && ( -z "${REGISTRY_USER:-}" || -z "${REGISTRY_TOKEN:-}" ) ]]; then
      skipped+=("$file")
      continue
    fi
    [[ "$needs" != *database-password* ]] || pw_missing+=("$file")
    create+=("$name")
    create_files+=("$file")
  done <<<"$listing"

  for file in "${kept[@]}"; do
    say "kept $file: it exists and is never overwritten (change values with make vergabe-secrets-edit)"
  done
  for file in "${skipped[@]}"; do
    say "skipped $file: a registry pull Secret needs REGISTRY_USER and REGISTRY_TOKEN (a read-only token);" \
      "export both and run again"
  done
  if ((${#pw_existing[@]} > 0 && ${#pw_missing[@]} > 0)); then
    die "refusing: ${pw_existing[*]} exists but ${pw_missing[*]} does not; both must hold the same" \
      "database password, and init never decrypts. Either delete ${pw_existing[*]} and run again" \
      "(a new password for both: the next deploy sets it on the role, the app reads it when its pods" \
      "restart), or write the missing file with 'sops edit ${pw_missing[*]}', copying the password" \
      "over from 'sops edit ${pw_existing[*]}'."
  fi
  if ((${#create[@]} == 0)); then
    say "nothing to create for $env"
    return 0
  fi

  check_creation_rules
  check_sops
  local password=""
  if ((${#pw_missing[@]} > 0)); then
    password="$(new_password)"
  fi

  local i
  local -a temps=() checks=()
  mkdir -p "secrets/$env"
  render_manifests "$env" "$password" "${create[@]}" \
    || die "cannot make the manifests of ${create_files[*]} (see above); nothing was written"
  for i in "${!create[@]}"; do
    encrypt_one "$i" "${create[$i]}" "${create_files[$i]}" \
      || die "encrypting ${create_files[$i]} failed; nothing was written"
    temps+=("$ENCRYPTED_TEMP")
    checks+=(--check-file "$ENCRYPTED_TEMP" --secret "${create[$i]}")
  done
  MANIFESTS=()
  # What sops wrote must pass the contract (e.g. no value left in plain text by a changed rule).
  node "$scripts_dir/secret-contract.js" --env "$env" --root . "${checks[@]}" >/dev/null \
    || die "the sops output failed the secret contract (see above); nothing was written"

  # All encrypted and checked: move them into place (never over a file that appeared meanwhile).
  for file in "${create_files[@]}"; do
    [[ ! -e "$file" ]] || die "$file appeared while encrypting; nothing was written"
  done
  for i in "${!temps[@]}"; do
    mv -n -- "${temps[$i]}" "${create_files[$i]}"
    say "created ${create_files[$i]} (encrypted)"
  done
  say "commit the new files; the next make vergabe-deploy ENV=$env applies them"
}

main "$@"
