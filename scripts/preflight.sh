# shellcheck shell=bash
# The checks before a deploy changes anything (sourced after lib.sh and waits.sh). Each failure
# stops with one line saying what is wrong and what would be right.

# The Kubernetes versions the manifests are checked against (the API schemas 1.28 and 1.33).
K8S_MIN_MINOR=28
K8S_MAX_MINOR=33
# How many `kubectl auth can-i` calls run at once.
CAN_I_PARALLEL=8

pass() { printf '  ok  %s\n' "$*"; }

# The plan as the deploy understands it: known sources and WAIT rules, every file present.
check_plan() {
  local id file source phases=" " _ resource ns name wait prune rows row objects
  mapfile -t rows < <(plan_rows phase)
  [ "${#rows[@]}" -gt 0 ] || die "$PLAN lists no phase: run make synth"
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r id file source _ <<<"$row"
    phases+="$id "
    case $source in
      dist | sops) ;;
      deploy)
        declare -F "step_${id#*-}" >/dev/null ||
          die "$PLAN: phase $id is made by the deploy, which has no step ${id#*-}"
        ;;
      *) die "$PLAN: phase $id has SOURCE $source; known: dist, sops, deploy" ;;
    esac
    [ "$file" = - ] || [ -f "$DIST/$file" ] ||
      die "$PLAN: phase $id names $DIST/$file, which does not exist: run make synth"
  done
  mapfile -t rows < <(plan_rows object)
  objects=${#rows[@]}
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r id resource ns name wait prune <<<"$row"
    [[ $phases == *" $id "* ]] ||
      die "$PLAN: object $(object_label "$resource" "$ns" "$name") is in phase $id, which the plan does not list"
    [[ " ${WAIT_RULES[*]} " == *" $wait "* ]] ||
      die "$PLAN: object $(object_label "$resource" "$ns" "$name") has WAIT $wait; known: ${WAIT_RULES[*]}"
    [[ $prune == prune || $prune == keep ]] ||
      die "$PLAN: object $(object_label "$resource" "$ns" "$name") has PRUNE $prune; known: prune, keep"
  done
  mapfile -t rows < <(plan_rows secret)
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r id ns name _ <<<"$row"
    [[ $phases == *" $id "* ]] || die "$PLAN: Secret $ns/$name is in phase $id, which the plan does not list"
  done
  pass "plan $PLAN: $(wc -w <<<"$phases") phases, $objects objects, ${#rows[@]} Secrets"
}

check_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || case $tool in
      sops) die "sops not found on PATH: install sops 3.9 or later (github.com/getsops/sops/releases)" ;;
      kubectl) die "kubectl not found on PATH: install kubectl 1.$K8S_MIN_MINOR to 1.$K8S_MAX_MINOR" ;;
      *) die "$tool not found on PATH: install it" ;;
    esac
  done
  pass "tools: $*"
}

# The committed configuration ships a zero tag until the first image is pushed.
check_image_tag() {
  local image tag
  image=$(setting image)
  tag=${image%@*}
  tag=${tag##*:}
  [[ ! $tag =~ ^0+$ ]] || die "image tag $tag in $PLAN is the placeholder: run make vergabe-bump TAG=<sha>" \
    "(the commit of the app whose image was pushed), review and commit dist/, then deploy"
  pass "image $image"
}

# What is applied is what was reviewed: a clean tree (checked first), whose dist/ is what the
# code synthesizes (checked last). ALLOW_DIRTY=1 deploys dist/ as it is on disk, unsynthesized.
check_clean_tree() {
  local dirty
  dirty=$(git status --porcelain 2>/dev/null) ||
    die "$ROOT is not a git checkout; the deploy applies only committed output"
  if [ "${ALLOW_DIRTY:-0}" = 1 ]; then
    warn "ALLOW_DIRTY=1: deploying $DIST as it is on disk, not as committed" \
      "${dirty:+(uncommitted: $(paths_of "$dirty"))}"
    return 0
  fi
  [ -z "$dirty" ] || die "the working tree has uncommitted changes ($(paths_of "$dirty")):" \
    "commit them, or deploy them knowingly with ALLOW_DIRTY=1"
  pass "working tree clean"
}

check_fresh_dist() {
  local dirty
  [ "${ALLOW_DIRTY:-0}" != 1 ] || return 0
  # What `npm run synth` runs, without npm's own start-up.
  node scripts/synth.js >/dev/null || die "npm run synth failed (above): nothing was deployed"
  dirty=$(git status --porcelain)
  [ -z "$dirty" ] || die "dist/ is stale: a fresh npm run synth changed $(paths_of "$dirty");" \
    "review (git diff dist/) and commit it"
  pass "dist/ is what the code synthesizes"
}

# The paths of `git status --porcelain` output, at most five, on one line.
paths_of() {
  local paths
  paths=$(cut -c4- <<<"$1" | head -n 5 | paste -sd ' ')
  [ "$(wc -l <<<"$1")" -le 5 ] || paths+=" ..."
  printf '%s\n' "$paths"
}

check_secret_contract() {
  local rc=0
  node scripts/secret-contract.js --env "$ENV" || rc=$?
  case $rc in
    0) pass "secret contract: secrets/$ENV/ holds every SOPS Secret of $DIST/secrets.yaml, encrypted" ;;
    1) die "secret contract: secrets/$ENV/ does not match $DIST/secrets.yaml (each problem above)" ;;
    *) die "secret contract check could not run (above)" ;;
  esac
}

# Every call passes --context, so kubectl's current context never steers the deploy; requiring
# them to agree keeps the operator's own kubectl commands on the same cluster, and stops a
# deploy started while the operator believes to be elsewhere.
check_context() {
  local current
  current=$(kc config current-context 2>/dev/null) || current="(none)"
  [ "$current" = "$KUBE_CONTEXT" ] || die "kubectl's current context is $current, but $ENV deploys to" \
    "$KUBE_CONTEXT: kubectl config use-context $KUBE_CONTEXT (or KUBE_CONTEXT=<name> when your context" \
    "for that cluster has another name)"
  pass "context $KUBE_CONTEXT"
}

check_server_version() {
  local out version minor
  out=$(kc get --raw /version 2>&1) || die "cannot reach the cluster of context $KUBE_CONTEXT: ${out%%$'\n'*}"
  version=$(sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' <<<"$out")
  [[ $version =~ ^v1\.([0-9]+)\. ]] ||
    die "the server of $KUBE_CONTEXT reports no version v1.MINOR.PATCH (got ${version:-nothing})"
  minor=${BASH_REMATCH[1]}
  ((minor >= K8S_MIN_MINOR && minor <= K8S_MAX_MINOR)) || die "the server of $KUBE_CONTEXT runs Kubernetes" \
    "$version; the manifests are made for 1.$K8S_MIN_MINOR to 1.$K8S_MAX_MINOR"
  pass "server $version"
}

# kubectl's resource name of a kind: lower case, plural as Kubernetes guesses it.
plural() {
  local kind=${1%%.*} group=""
  [[ $1 != *.* ]] || group=".${1#*.}"
  case $kind in
    *s) kind+=es ;;
    *[^aeiou]y) kind=${kind%y}ies ;;
    *) kind+=s ;;
  esac
  printf '%s%s\n' "$kind" "$group"
}

# Backup before migrations: asked for this run, or by the environment's setting.
backup_wanted() { [ "${BACKUP:-0}" = 1 ] || [ "$(setting backupBeforeMigrate)" = true ]; }

# The resources the deploy reads or writes besides the plan's objects.
deploy_resources() {
  printf '%s\n' secret configmap lease.coordination.k8s.io cluster.postgresql.cnpg.io \
    clusterissuer.cert-manager.io
  if backup_wanted; then printf '%s\n' backup.postgresql.cnpg.io; fi
}

check_resources_served() {
  local served rc=0 resource missing=()
  served=$'\n'$(kc api-resources -o name 2>/dev/null)$'\n' || rc=$?
  while read -r resource; do
    resource=$(plural "$resource")
    [[ $served == *$'\n'"$resource"$'\n'* ]] || missing+=("$resource")
  done < <({
    plan_rows object | cut -f2
    deploy_resources
  } | sort -u)
  if [ "${#missing[@]}" -gt 0 ]; then
    local hint="install or upgrade the operator that brings them"
    [[ " ${missing[*]} " != *" databaseroles.postgresql.cnpg.io "* ]] ||
      hint+=" (DatabaseRole needs CloudNativePG 1.30; the fallback is roleMode: ClusterManagedRole)"
    [ "$rc" = 0 ] || hint+="; kubectl api-resources also failed (exit $rc), an API service may be down"
    die "the cluster does not serve ${missing[*]}: $hint"
  fi
  pass "the cluster serves every resource the deploy uses"
}

# One "verb resource namespace" line per permission the deploy needs; "-" is cluster-wide.
needed_permissions() {
  local namespace db_namespace
  namespace=$(setting namespace)
  db_namespace=$(setting databaseNamespace)
  plan_rows object | awk -F'\t' '{
    print "create", $2, $3; print "patch", $2, $3
    if ($6 == "prune") { print "list", $2, $3; print "delete", $2, $3 }
    if ($5 == "complete") { print "delete", $2, $3 }
  }'
  plan_rows secret | awk -F'\t' '{ print "create secret", $2; print "patch secret", $2 }'
  printf '%s\n' "create lease.coordination.k8s.io $namespace" "delete lease.coordination.k8s.io $namespace" \
    "create configmap $namespace" "patch configmap $namespace" \
    "get cluster.postgresql.cnpg.io $db_namespace" "get clusterissuer.cert-manager.io -"
  if backup_wanted; then printf '%s\n' "create backup.postgresql.cnpg.io $db_namespace"; fi
}

can_i() {
  local verb resource ns
  read -r verb resource ns <<<"$1"
  kcn "$ns" auth can-i "$verb" "$resource" --quiet >/dev/null 2>&1 || printf '%s\n' "$1"
}

check_permissions() {
  local line running=0 denied lines
  mapfile -t lines < <(needed_permissions | sort -u)
  denied=$(
    for line in "${lines[@]}"; do
      can_i "$line" &
      if ((++running >= CAN_I_PARALLEL)); then
        wait -n || true
        running=$((running - 1))
      fi
    done
    wait
  )
  [ -z "$denied" ] || die "the user of $KUBE_CONTEXT may not $(sort <<<"$denied" | awk '{
    printf "%s%s %s%s", sep, $1, $2, ($3 == "-" ? "" : " in " $3); sep = ", " }'): ask the cluster admin"
  pass "permissions: ${#lines[@]} checked with kubectl auth can-i"
}

check_cluster_issuer() {
  local issuer out
  issuer=$(setting clusterIssuer)
  out=$(kc get clusterissuer.cert-manager.io "$issuer" -o name 2>&1) ||
    die "cannot read the ClusterIssuer $issuer: ${out%%$'\n'*}"
  condition_ready clusterissuer.cert-manager.io - "$issuer" || die "the ClusterIssuer $issuer is not Ready" \
    "($LAST_SEEN): kubectl --context $KUBE_CONTEXT describe clusterissuer $issuer"
  pass "ClusterIssuer $issuer is Ready"
}

# The shared database cluster is healthy, and the role is declared in exactly one place.
check_database_cluster() {
  local cluster ns role mode out phase roles
  cluster=$(setting databaseCluster)
  ns=$(setting databaseNamespace)
  role=$(setting databaseRole)
  mode=$(setting roleMode)
  out=$(kcn "$ns" get cluster.postgresql.cnpg.io "$cluster" \
    -o 'jsonpath={.spec.managed.roles[*].name}{"|"}{.status.phase}' 2>&1) ||
    die "cannot read the Cluster $ns/$cluster: ${out%%$'\n'*}"
  IFS='|' read -r roles phase <<<"$out"
  [ "$phase" = "Cluster in healthy state" ] ||
    die "the Cluster $ns/$cluster is not healthy (phase: ${phase:-none}): ask the platform team before deploying"
  case $mode in
    DatabaseRole)
      [[ " $roles " != *" $role "* ]] || die "the Cluster $ns/$cluster lists role $role in" \
        "spec.managed.roles: it would win over the DatabaseRole, which then reports a conflict;" \
        "ask the platform team to remove it there"
      ;;
    ClusterManagedRole)
      [[ " $roles " == *" $role "* ]] || die "the Cluster $ns/$cluster does not list role $role in" \
        "spec.managed.roles: roleMode ClusterManagedRole needs the platform team to apply" \
        "$DIST/platform-team/ first"
      ;;
    *) die "$PLAN: roleMode $mode is not known; known: DatabaseRole, ClusterManagedRole" ;;
  esac
  pass "Cluster $ns/$cluster is healthy; role $role is declared by $mode"
}

# A Certificate ordered before DNS points here fails validation and counts against Let's
# Encrypt's rate limits; any other address (an AAAA record too) may take the challenge.
check_dns() {
  local host address found
  host=$(setting host)
  address=$(setting ingressAddress)
  found=$(getent ahosts "$host" | awk '{ print $1 }' | sort -u | paste -sd ' ') || true
  [ -n "$found" ] || die "$host does not resolve: create its DNS record (A $address) first"
  [ "$found" = "$address" ] ||
    die "$host resolves to $found, not only to the ingress address $address: fix its DNS records"
  pass "$host resolves to $address"
}

# Cheap and local checks first; the synthesis, which rewrites dist/ (to the same content on a
# clean tree), comes last.
preflight() {
  announce "preflight of $ENV (context $KUBE_CONTEXT): nothing changes until every check passed"
  check_plan
  local tools=(git node kubectl)
  [ -z "$(plan_rows secret)" ] || tools+=(sops)
  check_tools "${tools[@]}"
  check_image_tag
  check_clean_tree
  check_secret_contract
  check_context
  check_server_version
  check_resources_served
  check_cluster_issuer
  check_database_cluster
  check_dns
  check_permissions
  check_fresh_dist
}
