# shellcheck shell=bash
# The checks before a deploy changes anything (sourced after lib.sh and waits.sh). Each failure
# stops with one line saying what is wrong and what would be right.

# The Kubernetes versions the manifests are checked against (the API schemas 1.28 and 1.33).
K8S_MIN_MINOR=28
K8S_MAX_MINOR=33
# How many single `kubectl auth can-i` calls run at once (for what the lists did not grant).
CAN_I_PARALLEL=8

pass() { printf '  ok  %s\n' "$*"; }

# The plan as the deploy understands it: known sources and WAIT rules, every file present.
check_plan() {
  local id file source phases=" " _ resource ns name wait prune row
  [ "${#PHASE_ROWS[@]}" -gt 0 ] || die "$PLAN lists no phase: run make synth"
  for row in "${PHASE_ROWS[@]}"; do
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
  for row in "${OBJECT_ROWS[@]}"; do
    IFS=$'\t' read -r id resource ns name wait prune <<<"$row"
    [[ $phases == *" $id "* ]] ||
      die "$PLAN: object $(object_label "$resource" "$ns" "$name") is in phase $id," \
        "which the plan does not list"
    [[ " ${WAIT_RULES[*]} " == *" $wait "* ]] ||
      die "$PLAN: object $(object_label "$resource" "$ns" "$name") has WAIT $wait; known: ${WAIT_RULES[*]}"
    [[ $prune == prune || $prune == keep ]] ||
      die "$PLAN: object $(object_label "$resource" "$ns" "$name") has PRUNE $prune; known: prune, keep"
  done
  for row in "${SECRET_ROWS[@]}"; do
    IFS=$'\t' read -r id ns name _ <<<"$row"
    [[ $phases == *" $id "* ]] || die "$PLAN: Secret $ns/$name is in phase $id, which the plan does not list"
  done
  pass "plan $PLAN: ${#PHASE_ROWS[@]} phases, ${#OBJECT_ROWS[@]} objects, ${#SECRET_ROWS[@]} Secrets"
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
  local line paths=()
  while IFS= read -r line; do paths+=("${line:3}"); done <<<"$1"
  if [ "${#paths[@]}" -le 5 ]; then
    printf '%s\n' "${paths[*]}"
  else
    printf '%s ...\n' "${paths[*]:0:5}"
  fi
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
  local field='"gitVersion": *"([^"]*)"'
  version=""
  [[ ! $out =~ $field ]] || version=${BASH_REMATCH[1]}
  [[ $version =~ ^v1\.([0-9]+)\. ]] ||
    die "the server of $KUBE_CONTEXT reports no version v1.MINOR.PATCH (got ${version:-nothing})"
  minor=${BASH_REMATCH[1]}
  ((minor >= K8S_MIN_MINOR && minor <= K8S_MAX_MINOR)) || die "the server of $KUBE_CONTEXT runs Kubernetes" \
    "$version; the manifests are made for 1.$K8S_MIN_MINOR to 1.$K8S_MAX_MINOR"
  pass "server $version"
}

# plural VAR RESOURCE: kubectl's resource name of a kind into VAR: lower case, plural as
# Kubernetes guesses it (secret: secrets, networkpolicy.networking.k8s.io: networkpolicies...).
plural() {
  local -n _plural=$1
  local kind=${2%%.*} group=""
  [[ $2 != *.* ]] || group=".${2#*.}"
  case $kind in
    *s) kind+=es ;;
    *[^aeiou]y) kind=${kind%y}ies ;;
    *) kind+=s ;;
  esac
  _plural=$kind$group
}

# Backup before migrations: asked for this run, or by the environment's setting.
backup_wanted() { [ "${BACKUP:-0}" = 1 ] || [ "$(setting backupBeforeMigrate)" = true ]; }

# The resources the deploy reads or writes besides the plan's objects.
deploy_resources() {
  DEPLOY_RESOURCES=(secret configmap lease.coordination.k8s.io cluster.postgresql.cnpg.io
    clusterissuer.cert-manager.io)
  if backup_wanted; then DEPLOY_RESOURCES+=(backup.postgresql.cnpg.io); fi
}

check_resources_served() {
  local served rc=0 row _ resource name missing=()
  local -A seen=()
  served=$'\n'$(kc api-resources -o name 2>/dev/null)$'\n' || rc=$?
  deploy_resources
  for row in "${OBJECT_ROWS[@]}"; do
    IFS=$'\t' read -r _ resource _ <<<"$row"
    seen[$resource]=1
  done
  for resource in "${DEPLOY_RESOURCES[@]}"; do seen[$resource]=1; done
  for resource in "${!seen[@]}"; do
    plural name "$resource"
    [[ $served == *$'\n'"$name"$'\n'* ]] || missing+=("$name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort)
    local hint="install or upgrade the operator that brings them"
    [[ " ${missing[*]} " != *" databaseroles.postgresql.cnpg.io "* ]] ||
      hint+=" (DatabaseRole needs CloudNativePG 1.30; the fallback is roleMode: ClusterManagedRole)"
    [ "$rc" = 0 ] || hint+="; kubectl api-resources also failed (exit $rc), an API service may be down"
    die "the cluster does not serve ${missing[*]}: $hint"
  fi
  pass "the cluster serves every resource the deploy uses"
}

# One "verb resource namespace" entry per permission the deploy needs into NEEDED, each once, in
# the plan's order; "-" is cluster-wide.
needed_permissions() {
  local namespace db_namespace row _ resource ns wait prune line lines=()
  local -A seen=()
  namespace=$(setting namespace)
  db_namespace=$(setting databaseNamespace)
  for row in "${OBJECT_ROWS[@]}"; do
    IFS=$'\t' read -r _ resource ns _ wait prune <<<"$row"
    lines+=("create $resource $ns" "patch $resource $ns")
    [ "$prune" != prune ] || lines+=("list $resource $ns" "delete $resource $ns")
    [ "$wait" != complete ] || lines+=("delete $resource $ns")
  done
  for row in "${SECRET_ROWS[@]}"; do
    IFS=$'\t' read -r _ ns _ <<<"$row"
    lines+=("create secret $ns" "patch secret $ns")
  done
  lines+=("create lease.coordination.k8s.io $namespace" "delete lease.coordination.k8s.io $namespace"
    "create configmap $namespace" "patch configmap $namespace"
    "get cluster.postgresql.cnpg.io $db_namespace" "get clusterissuer.cert-manager.io -")
  if backup_wanted; then lines+=("create backup.postgresql.cnpg.io $db_namespace"); fi
  NEEDED=()
  for line in "${lines[@]}"; do
    [ -n "${seen[$line]+set}" ] || NEEDED+=("$line")
    seen[$line]=1
  done
}

# What `kubectl auth can-i --list` granted: "namespace resource" -> its verbs, space-separated.
declare -gA GRANTS=()

# grants_from_list NAMESPACE: adds the rules that `kubectl auth can-i --list --no-headers` prints
# (on stdin) to GRANTS. Only rules for all objects of a resource count: those limited to resource
# names, subresources or non-resource URLs grant nothing the deploy asks for.
grants_from_list() {
  local ns=$1 line rule='^([^][:space:]/[]+)[[:space:]]+\[\][[:space:]]+\[\][[:space:]]+\[([^]]*)\]$'
  while read -r line; do
    [[ $line =~ $rule ]] || continue
    GRANTS["$ns ${BASH_REMATCH[1]}"]+=" ${BASH_REMATCH[2]} "
  done
}

# granted VERB RESOURCE NAMESPACE: whether GRANTS allows VERB on RESOURCE (kubectl's plural name,
# e.g. jobs.batch) in NAMESPACE, by name or by a wildcard: verb "*", resource "*.*", "*.<group>",
# "<name>.*", or "*" for the core group.
granted() {
  local verb=$1 resource=$2 ns=$3 candidate verbs=""
  local candidates=("$resource" "*.*" "${resource%%.*}.*")
  if [[ $resource == *.* ]]; then candidates+=("*.${resource#*.}"); else candidates+=("*"); fi
  for candidate in "${candidates[@]}"; do verbs+=${GRANTS["$ns $candidate"]:-}; done
  [[ $verbs == *" $verb "* || $verbs == *" * "* ]]
}

# can_i VERB RESOURCE NAMESPACE NEED: the server's verdict on one permission; prints NEED when denied.
can_i() {
  kcn "$3" auth can-i "$1" "$2" --quiet >/dev/null 2>&1 || printf '%s\n' "$4"
}

# RBAC only grants, so what one `kubectl auth can-i --list` per namespace grants is allowed. The
# rest is asked one by one: a list may be incomplete (an authorizer besides RBAC, e.g. a webhook,
# cannot list its rules), and only the single check is the server's verdict.
check_permissions() {
  local line verb resource ns name running=0 denied single=()
  local -A listed=()
  needed_permissions
  for line in "${NEEDED[@]}"; do
    read -r verb resource ns <<<"$line"
    if [ -z "${listed[$ns]+set}" ]; then
      listed[$ns]=1
      grants_from_list "$ns" < <(kcn "$ns" auth can-i --list --no-headers 2>/dev/null || true)
    fi
    plural name "$resource"
    granted "$verb" "$name" "$ns" || single+=("$verb $name $ns $line")
  done
  denied=$(
    for line in "${single[@]}"; do
      read -r verb name ns line <<<"$line"
      can_i "$verb" "$name" "$ns" "$line" &
      if ((++running >= CAN_I_PARALLEL)); then
        wait -n || true
        running=$((running - 1))
      fi
    done
    wait
  )
  [ -z "$denied" ] || die "the user of $KUBE_CONTEXT may not $(sort <<<"$denied" | awk '{
    printf "%s%s %s%s", sep, $1, $2, ($3 == "-" ? "" : " in " $3); sep = ", " }'): ask the cluster admin"
  pass "permissions: ${#NEEDED[@]} checked with kubectl auth can-i" \
    "(a list in each of ${#listed[@]} namespaces, ${#single[@]} asked singly)"
}

check_cluster_issuer() {
  local issuer out
  issuer=$(setting clusterIssuer)
  out=$(kc get clusterissuer.cert-manager.io "$issuer" -o "jsonpath=$READY_FIELDS" 2>&1) ||
    die "cannot read the ClusterIssuer $issuer: ${out%%$'\n'*}"
  ready_seen "$out" || die "the ClusterIssuer $issuer is not Ready" \
    "($LAST_SEEN): kubectl --context $KUBE_CONTEXT describe clusterissuer $issuer"
  pass "ClusterIssuer $issuer is Ready"
}

# The shared database cluster is healthy, the role is declared in exactly one place, and (when
# this deploy takes a backup) the Cluster is set up for the configured backup method.
check_database_cluster() {
  local cluster ns role mode fields out phase roles store plugins snapshot
  cluster=$(setting databaseCluster)
  ns=$(setting databaseNamespace)
  role=$(setting databaseRole)
  mode=$(setting roleMode)
  fields='{.spec.managed.roles[*].name}{"|"}{.status.phase}{"|"}'
  fields+='{.spec.backup.barmanObjectStore.destinationPath}{"|"}{.spec.plugins[*].name}{"|"}'
  # volumeSnapshot is a whole map (none of its fields is required), so it comes last.
  fields+='{.spec.backup.volumeSnapshot}'
  out=$(kcn "$ns" get cluster.postgresql.cnpg.io "$cluster" -o "jsonpath=$fields" 2>&1) ||
    die "cannot read the Cluster $ns/$cluster: ${out%%$'\n'*}"
  IFS='|' read -r roles phase store plugins snapshot <<<"$out"
  [ "$phase" = "Cluster in healthy state" ] ||
    die "the Cluster $ns/$cluster is not healthy (phase: ${phase:-none}):" \
      "ask the platform team before deploying"
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
  if backup_wanted; then check_backup_method "$ns/$cluster" "$store" "$plugins" "$snapshot"; fi
}

# A Backup whose method the Cluster is not set up for fails only after the deploy has begun:
# check it first. $1 the Cluster, then what it has: a barman object store's destination path,
# its plugins' names, its volumeSnapshot settings.
check_backup_method() {
  local cluster=$1 store=$2 plugins=$3 snapshot=$4 method plugin
  local fix="set migration.backupMethod in config/$ENV.yaml to how it backs up (the platform team knows)"
  method=$(setting backupMethod)
  case $method in
    barmanObjectStore)
      [ -n "$store" ] || die "the Cluster $cluster has no spec.backup.barmanObjectStore, so a Backup" \
        "with method barmanObjectStore would fail: $fix"
      ;;
    volumeSnapshot)
      [ -n "$snapshot" ] || die "the Cluster $cluster has no spec.backup.volumeSnapshot, so a Backup" \
        "with method volumeSnapshot would fail: $fix"
      ;;
    plugin)
      plugin=$(setting backupPlugin)
      [[ " $plugins " == *" $plugin "* ]] || die "the Cluster $cluster does not list the backup plugin" \
        "$plugin in spec.plugins (it lists: ${plugins:-none}): set migration.backupPlugin in" \
        "config/$ENV.yaml to the plugin it backs up with, or $fix"
      method="plugin $plugin"
      ;;
    *) die "$PLAN: backupMethod $method is not known; known: barmanObjectStore, volumeSnapshot, plugin" ;;
  esac
  pass "the Cluster $cluster is set up for backups by $method"
}

# A Certificate ordered before DNS points here fails validation and counts against Let's
# Encrypt's rate limits; any other address (an AAAA record too) may take the challenge.
check_dns() {
  local host address found ip addresses=()
  local -A seen=()
  host=$(setting host)
  address=$(setting ingressAddress)
  while read -r ip _; do
    [ -n "${seen[$ip]+set}" ] || addresses+=("$ip")
    seen[$ip]=1
  done < <(getent ahosts "$host" || true)
  found=${addresses[*]}
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
  [ "${#SECRET_ROWS[@]}" -eq 0 ] || tools+=(sops)
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
