#!/bin/bash
# Functions of the MySqlReplicationCluster scripts. Sourced, never run on its own:
#   source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
# Besides lib.sh's variables (DB_ENGINE, SECRETS_DIR, DB_SOCKET) it reads, all set by the construct:
#   DB_PORT           the server's TCP port
#   DB_CNF            the server's option file, written by the init container at every pod start
#   CONFIG_DIR        the mounted ConfigMap: server.cnf, primary.cnf, replica.cnf
#   RUN_DIR           a memory-backed directory shared by the pod's containers (socket, client option files)
#   DATA_ROOT         the pod's volume; the datadir is $DATA_ROOT/data
#   CLUSTER_NAME      the StatefulSet's name: pods are $CLUSTER_NAME-<ordinal>, ordinal 0 is the primary
#   HEADLESS_SERVICE  the headless Service: a peer's address is <pod>.$HEADLESS_SERVICE
#   SERVER_ID_BASE    server_id of ordinal 0; ordinal n gets SERVER_ID_BASE + n
#   MAX_LAG_SECONDS   a replica is healthy while it is at most this many seconds behind
#   REPLICAS          the number of pods the cluster was synthesized with (where to look for donors)
#   SEED_PORT         the port on which the donor sidecar sends physical copies (MariaDB)
#   TLS_DIR           (tls) the server's certificate files: tls.crt, tls.key and ca.crt. Replicas
#                     and the scripts' TCP connections then use TLS, verified against ca.crt
#   RESTORE_BACKUP    (restoreFrom) the backup a new cluster starts from; the restore init
#                     container fetched and checked it into RESTORE_DIR
# and HOSTNAME, which Kubernetes sets to the pod's name.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -n ${RESTORE_BACKUP:-} ]]; then
  # restoreFrom: the backup functions restore the primary (the construct ships backup-lib.sh then)
  # shellcheck source-path=SCRIPTDIR source=backup-lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"
fi

# The account replicas log in with, on the primary and on donors.
readonly REPLICATION_USER=repl
# The last file of every complete copy a donor sends: a copy without it is incomplete.
readonly SEED_TRAILER=cdk8s-mysql-seed-complete
# The named lock a logical backup holds on the replica whose SQL thread it pauses (BACKUP_LOCK of
# backup-lib.sh): while it is held, the agent leaves the SQL thread stopped.
readonly BACKUP_LOCK_NAME=cdk8s_mysql_backup

# --- where things are -------------------------------------------------------------------------

datadir() { printf '%s/data' "${DATA_ROOT:?DATA_ROOT is not set}"; }
# Present once the volume holds a complete, prepared copy (replicas).
seeded_marker() { printf '%s/seeded' "${DATA_ROOT:?DATA_ROOT is not set}"; }
# Present once the volume holds a complete, initialized datadir (the primary).
initialized_marker() { printf '%s/initialized' "${DATA_ROOT:?DATA_ROOT is not set}"; }
# Present once replication was configured on this copy: the copy's position is never applied again.
configured_marker() { printf '%s/replication-configured' "${DATA_ROOT:?DATA_ROOT is not set}"; }
seed_stage() { printf '%s/seed.tmp' "${DATA_ROOT:?DATA_ROOT is not set}"; }
init_stage() { printf '%s/init.tmp' "${DATA_ROOT:?DATA_ROOT is not set}"; }
root_cnf() { printf '%s/root.cnf' "${RUN_DIR:?RUN_DIR is not set}"; }
replication_cnf() { printf '%s/replication.cnf' "${RUN_DIR:?RUN_DIR is not set}"; }
backup_cnf() { printf '%s/backup.cnf' "${RUN_DIR:?RUN_DIR is not set}"; }

# A peer's address and ports; ordinal 0 is the primary.
peer_host() { printf '%s-%s.%s' "${CLUSTER_NAME:?CLUSTER_NAME is not set}" "$1" "${HEADLESS_SERVICE:?HEADLESS_SERVICE is not set}"; }
# shellcheck disable=SC2120 # the ordinal argument documents the call; every pod uses the same ports
peer_port() { printf '%s' "${DB_PORT:?DB_PORT is not set}"; }
# shellcheck disable=SC2120
seed_port() { printf '%s' "${SEED_PORT:?SEED_PORT is not set}"; }

# The variables the construct sets on every container (SEED_PORT only for MariaDB).
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly CLUSTER_ENV=(DB_ENGINE DB_PORT DB_SOCKET DB_CNF CONFIG_DIR SECRETS_DIR RUN_DIR DATA_ROOT CLUSTER_NAME
  HEADLESS_SERVICE SERVER_ID_BASE MAX_LAG_SECONDS REPLICAS)

# Fails unless every variable named is set: a missing one is a bug, not a reason to guess.
require_env() {
  local name missing=()
  for name in "$@"; do
    [[ -n ${!name:-} ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "environment variables missing: ${missing[*]} (the construct sets them)"
}

# The client options of a TCP connection to a peer (TLS when the cluster has it), one per line.
peer_tcp_options() {
  local option
  while IFS= read -r option; do printf -- '--%s\n' "$option"; done < <(tls_client_options)
}

# --- identity -----------------------------------------------------------------------------------

# The pod's ordinal, from its hostname <CLUSTER_NAME>-<ordinal>.
pod_ordinal() {
  local host=${HOSTNAME:?HOSTNAME is not set} prefix=${CLUSTER_NAME:?CLUSTER_NAME is not set}
  host=${host%%.*}
  [[ $host == "$prefix"-* ]] || die "hostname '$host' is not a pod of StatefulSet '$prefix' (expected $prefix-<ordinal>)"
  local ordinal=${host#"$prefix"-}
  [[ $ordinal =~ ^(0|[1-9][0-9]{0,8})$ ]] || die "hostname '$host' does not end in a pod ordinal (expected $prefix-<ordinal>)"
  printf '%s' "$ordinal"
}

role_of() {
  [[ $1 =~ ^[0-9]+$ ]] || die "'$1' is not a pod ordinal"
  if (($1 == 0)); then printf 'primary'; else printf 'replica'; fi
}

# server_id of an ordinal: SERVER_ID_BASE + ordinal, within MySQL's range 1..4294967295.
server_id() {
  local ordinal=$1 base=${SERVER_ID_BASE:?SERVER_ID_BASE is not set}
  [[ $ordinal =~ ^[0-9]+$ ]] || die "'$ordinal' is not a pod ordinal"
  [[ $base =~ ^[1-9][0-9]{0,9}$ ]] || die "SERVER_ID_BASE must be a positive integer, not '$base'"
  local id=$((base + ordinal))
  ((id <= 4294967295)) || die "server_id $base + $ordinal = $id is above 4294967295: lower serverIdBase or scale down"
  printf '%s' "$id"
}

# --- configuration ------------------------------------------------------------------------------

# Writes the server's option file: the cluster's settings, the role's settings, then this pod's
# identity (which nothing may override).
render_server_cnf() {
  local ordinal=$1 role id file
  role=$(role_of "$ordinal")
  id=$(server_id "$ordinal")
  for file in server.cnf "$role.cnf"; do
    [[ -r ${CONFIG_DIR:?CONFIG_DIR is not set}/$file ]] || die "$CONFIG_DIR/$file is missing: the ConfigMap of the cluster is not mounted"
  done
  local content
  content=$(
    printf '# Written at pod start for %s (%s); edit the construct, not this file.\n\n' "$(peer_host "$ordinal")" "$role"
    cat "$CONFIG_DIR/server.cnf"
    printf '\n'
    cat "$CONFIG_DIR/$role.cnf"
    printf '\n[mysqld]\nserver_id = %s\nreport_host = %s\n' "$id" "$(peer_host "$ordinal")"
  )
  atomic_write "${DB_CNF:?DB_CNF is not set}" "$content"$'\n'
  log "wrote $DB_CNF: role $role, server_id $id"
}

# Writes the client option files every container of the pod uses (mode 0600, in RUN_DIR), so
# that passwords never appear on a command line or in the environment.
write_client_files() {
  write_client_cnf "$(root_cnf)" root root-password
  write_client_cnf "$(replication_cnf)" "$REPLICATION_USER" replication-password
  if [[ $DB_ENGINE == mariadb ]]; then
    # mariadb-backup reads one option file first of all: the server's options plus a login
    local file tmp
    file=$(backup_cnf)
    tmp="$file.tmp.$$"
    (
      umask 077
      cat "${DB_CNF:?DB_CNF is not set}" "$(root_cnf)" >"$tmp"
    )
    mv -f "$tmp" "$file"
  fi
}

# --- SQL helpers --------------------------------------------------------------------------------

# Runs one statement: run_sql CNF STATEMENT [client options]. The statement travels on stdin,
# so a password inside it never reaches a command line.
run_sql() {
  local cnf=$1 statement=$2
  shift 2
  printf '%s;\n' "$statement" | sql "$cnf" "$@"
}

# True when a server answers (even with "access denied"): server_alive CNF [client options]
server_alive() {
  local cnf=$1
  shift
  "$(db_admin)" --defaults-extra-file="$cnf" --connect-timeout=3 "$@" ping >/dev/null 2>&1
}

# Prints the replication status as "Field<TAB>value" lines; nothing when replication is not
# configured. replica_status CNF [client options]
replica_status() {
  local cnf=$1
  shift
  printf 'SHOW REPLICA STATUS;\n' | "$(db_client)" --defaults-extra-file="$cnf" --batch "$@" |
    awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; next }
                NR == 2 { for (i = 1; i <= NF; i++) print name[i] "\t" $i }'
}

# One field of replica_status's output, by its MySQL or MariaDB name: status_field STATUS NAME [NAME]
status_field() {
  awk -F'\t' -v a="$2" -v b="${3:-}" '$1 == a || (b != "" && $1 == b) { print $2; exit }' <<<"$1"
}

# Prints 1 when the server refuses writes of ordinary users (MySQL: of everyone but replication).
read_only_state() {
  local cnf=$1
  shift
  if [[ $DB_ENGINE == mysql ]]; then
    run_sql "$cnf" 'SELECT @@global.read_only AND @@global.super_read_only' "$@"
  else
    run_sql "$cnf" 'SELECT @@global.read_only' "$@"
  fi
}

# --- health ---------------------------------------------------------------------------------------

# True when a server is a healthy replica: both replication threads run, it is at most
# MAX_LAG_SECONDS behind and it is read-only. Prints why not. replica_healthy CNF [client options]
replica_healthy() {
  local cnf=$1
  shift
  local status io sql_thread lag read_only
  if ! status=$(replica_status "$cnf" "$@"); then
    echo "its replication status cannot be read"
    return 1
  fi
  if [[ -z $status ]]; then
    echo "replication is not configured"
    return 1
  fi
  io=$(status_field "$status" Replica_IO_Running Slave_IO_Running)
  sql_thread=$(status_field "$status" Replica_SQL_Running Slave_SQL_Running)
  lag=$(status_field "$status" Seconds_Behind_Source Seconds_Behind_Master)
  if [[ $io != Yes ]]; then
    echo "the IO thread is not running ($io): $(status_field "$status" Last_IO_Error)"
    return 1
  fi
  if [[ $sql_thread != Yes ]]; then
    echo "the SQL thread is not running ($sql_thread): $(status_field "$status" Last_SQL_Error)"
    return 1
  fi
  if [[ ! $lag =~ ^[0-9]+$ ]]; then
    echo "its lag is unknown ($lag)"
    return 1
  fi
  if ((lag > ${MAX_LAG_SECONDS:?MAX_LAG_SECONDS is not set})); then
    echo "it is ${lag}s behind the primary (at most ${MAX_LAG_SECONDS}s allowed)"
    return 1
  fi
  if ! read_only=$(read_only_state "$cnf" "$@") || [[ $read_only != 1 ]]; then
    echo "it is not read-only"
    return 1
  fi
}

# True when a server accepts writes. Prints why not. primary_healthy CNF [client options]
primary_healthy() {
  local cnf=$1
  shift
  local read_only
  if ! read_only=$(run_sql "$cnf" 'SELECT @@global.read_only' "$@"); then
    echo "it does not answer queries"
    return 1
  fi
  if [[ $read_only != 0 ]]; then
    echo "it is read-only"
    return 1
  fi
}

# True when this pod's server does its role's job: a donor's check of itself (and, with the
# allowance of local_ready, the readiness probe).
local_healthy() {
  local ordinal
  ordinal=$(pod_ordinal)
  if [[ $(role_of "$ordinal") == primary ]]; then
    primary_healthy "$(root_cnf)"
  else
    replica_healthy "$(root_cnf)"
  fi
}

# When this replica last held everything the primary had written (epoch seconds): written by the
# readiness probe while both threads run (the time minus the lag). In RUN_DIR: a new pod starts
# without it.
fresh_mark() { printf '%s/replica-fresh-as-of' "${RUN_DIR:?RUN_DIR is not set}"; }

# True when the SQL thread has applied everything the IO thread received: replica_applied STATUS
replica_applied() {
  local status=$1
  [[ $(status_field "$status" Relay_Source_Log_File Relay_Master_Log_File) == "$(status_field "$status" Source_Log_File Master_Log_File)" &&
    $(status_field "$status" Exec_Source_Log_Pos Exec_Master_Log_Pos) == "$(status_field "$status" Read_Source_Log_Pos Read_Master_Log_Pos)" ]]
}

# The readiness of a replica: replica_healthy, with one allowance. While the IO thread only
# reconnects (the primary restarts or is out of reach), a replica that has applied everything it
# received holds the primary's data as of its fresh mark: it stays ready until that is
# MAX_LAG_SECONDS old, as a lagging replica would, so that the read Service keeps the replicas
# while the primary is away for less than maxLag. Prints why not (or, when ready by the
# allowance, why). replica_ready CNF
replica_ready() {
  local cnf=$1 status io sql_thread lag fresh age now
  now=$(date +%s)
  status=$(replica_status "$cnf") || status=''
  io=$(status_field "$status" Replica_IO_Running Slave_IO_Running)
  sql_thread=$(status_field "$status" Replica_SQL_Running Slave_SQL_Running)
  if [[ $io == Connecting && $sql_thread == Yes && -s $(fresh_mark) ]] && replica_applied "$status"; then
    fresh=$(<"$(fresh_mark)")
    age=$((now - fresh))
    if ((age > ${MAX_LAG_SECONDS:?MAX_LAG_SECONDS is not set})); then
      echo "the IO thread reconnects to the primary ($(status_field "$status" Last_IO_Error)) and the data is ${age}s old (at most ${MAX_LAG_SECONDS}s allowed)"
      return 1
    fi
    if [[ $(read_only_state "$cnf") != 1 ]]; then
      echo "it is not read-only"
      return 1
    fi
    echo "the IO thread reconnects to the primary; every transaction received is applied, the data is ${age}s old"
    return 0
  fi
  replica_healthy "$cnf" || return 1
  lag=$(status_field "$status" Seconds_Behind_Source Seconds_Behind_Master)
  if [[ $io == Yes && $lag =~ ^[0-9]+$ ]]; then
    atomic_write "$(fresh_mark)" "$((now - lag))"
  fi
}

# The readiness probe: local_healthy, with the allowance of replica_ready for a replica.
local_ready() {
  local ordinal
  ordinal=$(pod_ordinal)
  if [[ $(role_of "$ordinal") == primary ]]; then
    primary_healthy "$(root_cnf)"
  else
    replica_ready "$(root_cnf)"
  fi
}

# --- donors -------------------------------------------------------------------------------------

# Prints the ordinals to copy a new replica's data from, best first: every healthy replica other
# than SELF (the nearest lower ordinal first), then the primary, 0. Replicas spare the primary;
# the primary is the donor of last resort. donor_order SELF
donor_order() {
  local self=$1 replicas=${REPLICAS:?REPLICAS is not set} j reason tls=()
  local candidates=()
  mapfile -t tls < <(peer_tcp_options)
  for ((j = self - 1; j >= 1; j--)); do candidates+=("$j"); done
  for ((j = self + 1; j < replicas; j++)); do candidates+=("$j"); done
  for j in "${candidates[@]}"; do
    if reason=$(replica_healthy "$(replication_cnf)" --host="$(peer_host "$j")" --port="$(peer_port "$j")" --protocol=TCP "${tls[@]}" --connect-timeout=3 2>/dev/null); then
      printf '%s\n' "$j"
    else
      log "$(peer_host "$j") is not a donor: ${reason:-it does not answer}"
    fi
  done
  printf '0\n'
}

# --- seeding a replica (MariaDB: a mariadb-backup stream from a donor sidecar) -------------------

dir_is_empty() {
  local entries
  entries=$(find "$1" -mindepth 1 -maxdepth 1 -print -quit)
  [[ -z $entries ]]
}

# Receives a physical copy from a donor into STAGE and prepares it. Fails, leaving STAGE to be
# wiped, on a failed connection, an empty stream or a stream without the donor's end mark.
# receive_seed HOST PORT STAGE
receive_seed() {
  local host=$1 port=$2 stage=$3
  rm -rf "$stage"
  mkdir -p "$stage"
  log "receiving a physical copy from $host:$port"
  # -b 1 MiB, as the donor sends (socat moves 8 KiB at a time by default)
  if ! socat -b 1048576 -u -T 900 "TCP:$host:$port,connect-timeout=10" STDOUT | mbstream -x -C "$stage"; then
    log "the copy from $host:$port failed: the connection or the extraction broke"
    return 1
  fi
  if [[ ! -f $stage/$SEED_TRAILER ]]; then
    if dir_is_empty "$stage"; then
      log "the copy from $host:$port is empty: the donor refused or failed before sending anything"
    else
      log "the copy from $host:$port is incomplete: it ended without the donor's end mark"
    fi
    return 1
  fi
  rm -f "$stage/$SEED_TRAILER"
  log "preparing the copy"
  if ! mariadb-backup --prepare --target-dir="$stage"; then
    log "preparing the copy from $host:$port failed"
    return 1
  fi
}

# Prints the GTID position a copy was taken at (possibly empty: a primary without transactions).
# A copy of a replica has it in *_slave_info; any copy has it as the third field of
# *_binlog_info. MariaDB 10.11 names them xtrabackup_*, 11.1 and later mariadb_backup_*.
seed_gtid() {
  local dir=$1 name gtid
  for name in mariadb_backup_slave_info xtrabackup_slave_info; do
    if [[ -s $dir/$name ]]; then
      gtid=$(awk -F"'" '/^SET GLOBAL gtid_slave_pos = / { print $2; exit }' "$dir/$name")
      if [[ -n $gtid ]]; then
        valid_gtid "$gtid" "$name"
        printf '%s' "$gtid"
        return 0
      fi
    fi
  done
  for name in mariadb_backup_binlog_info xtrabackup_binlog_info; do
    if [[ -f $dir/$name ]]; then
      gtid=$(awk -F'\t' 'NR == 1 { print $3 }' "$dir/$name")
      valid_gtid "$gtid" "$name"
      printf '%s' "$gtid"
      return 0
    fi
  done
  log "the copy has no binlog info file (mariadb_backup_binlog_info or xtrabackup_binlog_info)"
  return 1
}

valid_gtid() {
  [[ $1 =~ ^([0-9]+-[0-9]+-[0-9]+(,[0-9]+-[0-9]+-[0-9]+)*)?$ ]] || die "$2 holds '$1', which is not a GTID position"
}

# The GTID position recorded in the seeded marker.
seeded_gtid() {
  awk '/^gtid=/ { print substr($0, 6); found = 1; exit } END { exit !found }' "$(seeded_marker)"
}

# Moves a complete, prepared copy into place, then marks the volume seeded. Until the marker is
# written the volume is not seeded, and the next attempt starts over.
install_seed() {
  local stage=$1 donor=$2 gtid=$3 data
  data=$(datadir)
  sync -f "$stage"
  rm -rf "$data"
  mv "$stage" "$data"
  sync -f "$data"
  atomic_write "$(seeded_marker)" "$(printf 'donor=%s\ngtid=%s\nseeded_at=%s\n' "$donor" "$gtid" "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"$'\n'
  log "seeded from $donor at GTID position '$gtid'"
}

# Seeds a MariaDB replica's volume from the best donor, unless it is seeded already.
seed_replica() {
  local self=$1 stage donor='' ordinal gtid
  if [[ -f $(seeded_marker) ]]; then
    log "the volume is seeded already ($(tr '\n' ' ' <"$(seeded_marker)"))"
    return 0
  fi
  # a new copy: replication has never been configured on it
  rm -f "$(configured_marker)"
  stage=$(seed_stage)
  for ordinal in $(donor_order "$self"); do
    if receive_seed "$(peer_host "$ordinal")" "$(seed_port "$ordinal")" "$stage"; then
      donor=$(peer_host "$ordinal")
      break
    fi
  done
  if [[ -z $donor ]]; then
    rm -rf "$stage"
    die "no donor sent a complete copy; Kubernetes restarts this init container to try again"
  fi
  gtid=$(seed_gtid "$stage") || die "the copy from $donor has no GTID position"
  install_seed "$stage" "$donor" "$gtid"
}

# --- TLS ----------------------------------------------------------------------------------------

# The REQUIRE clause of the replication account: SSL when the cluster has TLS, so that replicas
# can never log in over plaintext.
replication_require() {
  if [[ -n ${TLS_DIR:-} ]]; then printf 'REQUIRE SSL'; else printf 'REQUIRE NONE'; fi
}

# The TLS clause of CHANGE MASTER TO / CHANGE REPLICATION SOURCE TO: with TLS, the primary's
# certificate verified against the cluster's CA and its name (the primary's headless name); after
# TLS was turned off, plaintext again (the CA file is gone).
replication_tls_clause() {
  local prefix=SOURCE
  [[ $DB_ENGINE != mariadb ]] || prefix=MASTER
  if [[ -n ${TLS_DIR:-} ]]; then
    printf '%s_SSL = 1, %s_SSL_CA = %s, %s_SSL_VERIFY_SERVER_CERT = 1' "$prefix" "$prefix" "$(sql_quote "$TLS_DIR/ca.crt")" "$prefix"
  else
    printf "%s_SSL = 0, %s_SSL_CA = '', %s_SSL_VERIFY_SERVER_CERT = 0" "$prefix" "$prefix" "$prefix"
  fi
}

# ", <TLS clause>" for a new replication configuration with TLS; nothing without (server defaults).
replication_tls_option() {
  [[ -z ${TLS_DIR:-} ]] || printf ', %s' "$(replication_tls_clause)"
}

# True when the configured replication (STATUS of replica_status) uses TLS as the cluster wants:
# TLS verified against the cluster's CA; without TLS, no CA of this library (the server's own
# defaults are left alone).
replication_tls_matches() {
  local allowed verify ca
  allowed=$(status_field "$1" Source_SSL_Allowed Master_SSL_Allowed)
  verify=$(status_field "$1" Source_SSL_Verify_Server_Cert Master_SSL_Verify_Server_Cert)
  ca=$(status_field "$1" Source_SSL_CA_File Master_SSL_CA_File)
  if [[ -n ${TLS_DIR:-} ]]; then
    [[ $allowed == Yes && $verify == Yes && $ca == "$TLS_DIR/ca.crt" ]]
  else
    [[ $ca != */cdk8s-mysql/tls/ca.crt ]]
  fi
}

# Gives the replication account the REQUIRE clause the cluster wants (on the primary; the
# replicas receive it through replication). Changes nothing when it has it already.
ensure_replication_account_tls() {
  local cnf=$1 ssl_type want=''
  ssl_type=$(run_sql "$cnf" "SELECT ssl_type FROM mysql.user WHERE user = '$REPLICATION_USER' AND host = '%'") || return 1
  [[ -z ${TLS_DIR:-} ]] || want=ANY
  if [[ $ssl_type != "$want" ]]; then
    log "the replication account: $(replication_require)"
    run_sql "$cnf" "ALTER USER '$REPLICATION_USER'@'%' $(replication_require)"
  fi
}

# Reloads the server's certificate when the mounted files changed (a renewed certificate), so
# that new connections get it without a restart. RUN_DIR remembers the files last loaded.
reload_tls_if_changed() {
  [[ -n ${TLS_DIR:-} ]] || return 0
  local cnf=$1 sum seen
  sum=$(cat "$TLS_DIR/tls.crt" "$TLS_DIR/tls.key" "$TLS_DIR/ca.crt" | cksum) || return 1
  seen="${RUN_DIR:?RUN_DIR is not set}/tls-loaded"
  if [[ ! -f $seen ]]; then
    # the server loaded these files when it started
    atomic_write "$seen" "$sum"
    return 0
  fi
  [[ $(<"$seen") != "$sum" ]] || return 0
  log "the certificate files changed: reloading them"
  if [[ $DB_ENGINE == mariadb ]]; then
    run_sql "$cnf" 'FLUSH SSL' || return 1
  else
    run_sql "$cnf" 'ALTER INSTANCE RELOAD TLS' || return 1
  fi
  atomic_write "$seen" "$sum"
}

# --- initializing a datadir ---------------------------------------------------------------------

# The SQL that gives a new datadir its accounts: root (socket and network) and the replication
# account, with the passwords of the credentials Secret.
bootstrap_sql() {
  local root_password replication_password
  root_password=$(sql_secret root-password)
  replication_password=$(sql_secret replication-password)
  if [[ $DB_ENGINE == mariadb ]]; then
    # mariadb-install-db runs this with the grant tables not yet loaded
    printf '%s\n' \
      'FLUSH PRIVILEGES;' \
      "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';" \
      "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS ''root''@''', @@hostname, '''');"
  fi
  printf '%s\n' \
    "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_password;" \
    "CREATE USER 'root'@'%' IDENTIFIED BY $root_password;" \
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;" \
    "CREATE USER '$REPLICATION_USER'@'%' IDENTIFIED BY $replication_password $(replication_require);"
  if [[ $DB_ENGINE == mariadb ]]; then
    # replicate, and let a new replica check that this server is a healthy donor
    printf '%s\n' "GRANT REPLICATION SLAVE, REPLICA MONITOR ON *.* TO '$REPLICATION_USER'@'%';"
  else
    # replicate, check that this server is a healthy donor, and be the donor of a clone
    printf '%s\n' "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO '$REPLICATION_USER'@'%';"
  fi
}

# Creates a new datadir with the cluster's accounts, next to the real one, then moves it into
# place: the datadir either does not exist or is complete.
initialize_datadir() {
  initialize_stage
  install_stage
}

# Creates a new datadir with the cluster's accounts in the staging directory.
initialize_stage() {
  local stage init_sql rc=0
  stage=$(init_stage)
  rm -rf "$stage"
  mkdir -p "$stage"
  init_sql=$(mktemp "${TMPDIR:-/tmp}/cdk8s-mysql-init.XXXXXX")
  bootstrap_sql >"$init_sql"
  log "initializing a new datadir"
  if [[ $DB_ENGINE == mariadb ]]; then
    mariadb-install-db --defaults-file="$DB_CNF" --datadir="$stage" --auth-root-authentication-method=normal \
      --skip-test-db --extra-file="$init_sql" >&2 || rc=$?
  else
    mysqld --defaults-file="$DB_CNF" --datadir="$stage" --initialize-insecure --init-file="$init_sql" >&2 || rc=$?
  fi
  rm -f "$init_sql"
  ((rc == 0)) || die "initializing the datadir failed (exit $rc)"
}

# Moves the complete staging directory into place as the datadir.
install_stage() {
  local stage
  stage=$(init_stage)
  sync -f "$stage"
  rm -rf "$(datadir)"
  mv "$stage" "$(datadir)"
  sync -f "$(datadir)"
}

# Makes sure the primary has a datadir. An empty volume is initialized, unless a replica is still
# running: a new, empty primary would silently replace the data the replicas follow.
prepare_primary() {
  if [[ -f $(initialized_marker) ]]; then
    log "the datadir is initialized"
    return 0
  fi
  if [[ -d $(datadir) ]]; then
    # moved into place by an earlier attempt, or restored by hand: complete either way
    atomic_write "$(initialized_marker)" "adopted_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"$'\n'
    log "adopted the existing datadir"
    return 0
  fi
  local j tls=()
  mapfile -t tls < <(peer_tcp_options)
  for ((j = 1; j < ${REPLICAS:?REPLICAS is not set}; j++)); do
    if server_alive "$(replication_cnf)" --host="$(peer_host "$j")" --port="$(peer_port "$j")" --protocol=TCP "${tls[@]}"; then
      die "the primary's volume is empty but replica $(peer_host "$j") is running: refusing to start an empty primary in front of replicas that hold data. Restore the primary's volume, or delete the replicas' volumes to start a new cluster"
    fi
  done
  if [[ -n ${RESTORE_BACKUP:-} ]]; then
    restore_primary
    return 0
  fi
  initialize_datadir
  atomic_write "$(initialized_marker)" "initialized_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"$'\n'
}

# --- starting a new cluster from a backup (restoreFrom) -------------------------------------------

# The accounts of a restored datadir: root and the replication account with the Secret's
# passwords, whatever the backup had.
restored_accounts_sql() {
  local root_password replication_password
  root_password=$(sql_secret root-password)
  replication_password=$(sql_secret replication-password)
  printf '%s\n' \
    "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $root_password;" \
    "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_password;" \
    "ALTER USER 'root'@'%' IDENTIFIED BY $root_password;" \
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;" \
    "CREATE USER IF NOT EXISTS '$REPLICATION_USER'@'%' IDENTIFIED BY $replication_password;" \
    "ALTER USER '$REPLICATION_USER'@'%' IDENTIFIED BY $replication_password $(replication_require);"
  if [[ $DB_ENGINE == mariadb ]]; then
    printf '%s\n' "GRANT REPLICATION SLAVE, REPLICA MONITOR ON *.* TO '$REPLICATION_USER'@'%';"
  else
    printf '%s\n' "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO '$REPLICATION_USER'@'%';"
  fi
}

# Makes a restored datadir a primary without a past: no replication source, a new binary log
# that continues the backup's GTID position (so replicas seeded from it agree with it).
restored_position_sql() {
  local gtid=$1 version=$2
  if [[ $DB_ENGINE == mariadb ]]; then
    printf '%s\n' 'STOP SLAVE;' 'RESET SLAVE ALL;' 'RESET MASTER;'
    if [[ -n $gtid ]]; then
      printf '%s\n' "SET GLOBAL gtid_slave_pos = $(sql_quote "$gtid");" "SET GLOBAL gtid_binlog_state = $(sql_quote "$gtid");"
    fi
  else
    printf '%s\n' 'STOP REPLICA;' 'RESET REPLICA ALL;'
    if [[ $version == 8.0.* ]]; then printf '%s\n' 'RESET MASTER;'; else printf '%s\n' 'RESET BINARY LOGS AND GTIDS;'; fi
    [[ -z $gtid ]] || printf '%s\n' "SET GLOBAL gtid_purged = $(sql_quote "$gtid");"
  fi
}

# Builds the primary's datadir from the backup that the restore init container fetched and
# checked into RESTORE_DIR: the prepared copy, or a new datadir loaded with the dump. A temporary
# server (no network) gives it the Secret's accounts and the backup's GTID position, and its
# tables must match the manifest; only then is it moved into place and marked initialized. Any
# failure leaves the volume without a datadir, and the next start tries again.
restore_primary() {
  local dir=${RESTORE_DIR:?RESTORE_DIR is not set} manifest name method gtid stage cnf first version matched
  manifest="$dir/$MANIFEST"
  [[ -f $dir/ready ]] || die "restoreFrom is set but no checked backup is in $dir: the restore init container fetches it (see its log)"
  name=$(manifest_get "$manifest" name)
  method=$(manifest_get "$manifest" method)
  gtid=$(manifest_get "$manifest" gtid) || gtid=''
  stage=$(init_stage)
  rm -rf "$stage"
  log "restoring backup $name ($method) as the new primary's datadir"
  SCRATCH_DEFAULTS_FILE=${DB_CNF:?DB_CNF is not set}
  trap 'scratch_stop' EXIT
  if [[ $method == physical ]]; then
    mv "$dir/data" "$stage"
    # MySQL: a new server_uuid, not the backup source's
    rm -f "$stage/auto.cnf"
    scratch_start "$stage" --skip-grant-tables
    printf '' | scratch_session >/dev/null || die "cannot reach the accounts of the restored copy"
    scratch_stop
  else
    initialize_stage
  fi
  # root logs in with the scratch password (a copy) or the Secret's (a new datadir); the
  # accounts statements then give root the Secret's password in any case
  cnf="$RUN_DIR/restore.cnf"
  write_client_cnf "$cnf" root root-password
  sed -i "s|^socket=.*|socket=$(scratch_socket)|" "$cnf"
  first=$cnf
  [[ $method != physical ]] || first=$(scratch_cnf)
  scratch_start "$stage"
  version=$(sql "$first" <<<'SELECT @@version') || die "the restored server does not answer"
  if [[ $method == logical ]]; then
    log "loading the dump"
    if ! { printf 'SET SESSION sql_log_bin = 0;\n' && decompress "$(manifest_get "$manifest" compression)" <"$dir/$(manifest_get "$manifest" artifact)"; } | sql "$first"; then
      die "loading the dump of $name failed"
    fi
  fi
  { printf 'SET SESSION sql_log_bin = 0;\n'; restored_accounts_sql; restored_position_sql "$gtid" "$version"; } | sql "$first" ||
    die "setting the accounts and the position of the restored datadir failed"
  matched=$(expect_manifest_tables "$manifest" "$cnf" "$name")
  scratch_stop
  trap - EXIT
  install_stage
  rm -rf "$dir" "$cnf"
  atomic_write "$(initialized_marker)" "$(printf 'restored_from=%s\ngtid=%s\nrestored_at=%s\n' "$name" "$gtid" "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"$'\n'
  log "restored $name: $matched tables match its manifest; the primary continues from GTID position '$gtid'"
}

# Gives a MySQL replica an empty instance to clone into, unless its volume is seeded.
prepare_clone_recipient() {
  if [[ -f $(seeded_marker) ]]; then
    log "the volume is seeded already ($(tr '\n' ' ' <"$(seeded_marker)"))"
    return 0
  fi
  rm -f "$(configured_marker)"
  initialize_datadir
  log "an empty instance is ready; the agent clones a donor into it once the server runs"
}

# --- MySQL: seeding a replica with the CLONE plugin ---------------------------------------------

# True when the running server runs on the data of a completed clone. An in-place clone stays
# 'In Progress' until the restart that swaps its data in; the server's startup then marks it
# 'Completed' (or 'Failed'), so 'Completed' is only ever seen on the cloned data.
clone_completed() {
  local count
  count=$(run_sql "$(root_cnf)" "SELECT COUNT(*) FROM performance_schema.clone_status WHERE STATE = 'Completed' AND ERROR_NO = 0") || return 1
  [[ $count == 1 ]]
}

# Clones the best donor into the running server. CLONE INSTANCE replaces the data, then stops
# the server with ERROR 3707 because no supervisor can restart it: that is success, and Kubernetes
# restarts the container on the cloned data. clone_from_donor SELF
clone_from_donor() {
  local self=$1 ordinal host port out password statement
  password=$(sql_secret replication-password)
  for ordinal in $(donor_order "$self"); do
    host=$(peer_host "$ordinal")
    port=$(peer_port "$ordinal")
    log "cloning $host:$port"
    statement="SET GLOBAL clone_valid_donor_list = $(sql_quote "$host:$port");"
    if [[ -n ${TLS_DIR:-} ]]; then
      # the clone connection: TLS with the cluster's CA, as the replication account requires
      statement+="
SET GLOBAL clone_ssl_ca = $(sql_quote "$TLS_DIR/ca.crt");
SET GLOBAL clone_ssl_cert = $(sql_quote "$TLS_DIR/tls.crt");
SET GLOBAL clone_ssl_key = $(sql_quote "$TLS_DIR/tls.key");"
    fi
    statement+="
CLONE INSTANCE FROM '$REPLICATION_USER'@$(sql_quote "$host"):$port IDENTIFIED BY $password"
    [[ -z ${TLS_DIR:-} ]] || statement+=" REQUIRE SSL"
    if out=$(run_sql "$(root_cnf)" "$statement" 2>&1); then
      log "the clone of $host is complete"
      return 0
    fi
    if [[ $out == *"ERROR 3707"* ]]; then
      log "the clone of $host is complete; the server stops (ERROR 3707) and Kubernetes restarts it on the cloned data"
      return 0
    fi
    log "cloning $host failed: $out"
  done
  return 1
}

# Waits until the server stops answering, at most TIMEOUT seconds.
wait_for_server_stop() {
  local timeout=$1 waited=0
  while server_alive "$(root_cnf)"; do
    ((waited < timeout)) || return 1
    sleep 1
    waited=$((waited + 1))
  done
}

# --- replication ----------------------------------------------------------------------------------

# Makes this replica replicate from the primary, with GTIDs. Idempotent, and safe to re-run after
# a crash at any statement: the copy's GTID position is applied at most once, before the
# replication source is configured; a configured source (stored by the server itself) or the
# configured marker mean the position was applied, and then the threads are only started.
configure_replication() {
  local cnf status host io sql_thread primary port
  cnf=$(root_cnf)
  primary=$(peer_host 0)
  port=$(peer_port 0)
  status=$(replica_status "$cnf")
  host=$(status_field "$status" Source_Host Master_Host)
  if [[ -n $status && $host == "$primary" ]] && ! replication_tls_matches "$status"; then
    # TLS was turned on or off: only the connection's TLS settings change, the position stays
    log "replication from $primary: changing its TLS settings to $(replication_tls_clause)"
    run_sql "$cnf" 'STOP REPLICA'
    if [[ $DB_ENGINE == mariadb ]]; then
      run_sql "$cnf" "CHANGE MASTER TO $(replication_tls_clause)"
    else
      run_sql "$cnf" "CHANGE REPLICATION SOURCE TO $(replication_tls_clause)"
    fi
    status=$(replica_status "$cnf")
  fi
  if [[ -n $status && $host == "$primary" ]]; then
    io=$(status_field "$status" Replica_IO_Running Slave_IO_Running)
    sql_thread=$(status_field "$status" Replica_SQL_Running Slave_SQL_Running)
    if [[ $io == Yes && $sql_thread != Yes ]] && backup_holds_lock "$cnf"; then
      # a logical backup paused the SQL thread to keep the data still; the server releases the
      # lock when the backup ends or dies, and the next pass starts the thread again. (Were the
      # IO thread down too, both start: the backup then sees its source move and fails safely.)
      :
    elif [[ $io != Yes || $sql_thread != Yes ]]; then
      log "starting replication from $primary (IO thread: $io, SQL thread: $sql_thread)"
      run_sql "$cnf" 'START REPLICA'
    fi
    [[ -f $(configured_marker) ]] || atomic_write "$(configured_marker)" "source=$primary"$'\n'
    return 0
  fi
  if [[ -n $status ]]; then
    log "replication is configured from '$host', not from $primary: reconfiguring it"
    run_sql "$cnf" 'STOP REPLICA'
  fi
  local password
  password=$(sql_secret replication-password)
  if [[ $DB_ENGINE == mariadb ]]; then
    if [[ ! -f $(configured_marker) ]]; then
      local gtid
      gtid=$(seeded_gtid) || die "$(seeded_marker) records no GTID position"
      log "starting from the copy's GTID position '$gtid'"
      run_sql "$cnf" "SET GLOBAL gtid_slave_pos = $(sql_quote "$gtid")"
    fi
    run_sql "$cnf" "CHANGE MASTER TO MASTER_HOST = $(sql_quote "$primary"), MASTER_PORT = $port, MASTER_USER = '$REPLICATION_USER', MASTER_PASSWORD = $password, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 10$(replication_tls_option)"
  else
    run_sql "$cnf" "CHANGE REPLICATION SOURCE TO SOURCE_HOST = $(sql_quote "$primary"), SOURCE_PORT = $port, SOURCE_USER = '$REPLICATION_USER', SOURCE_PASSWORD = $password, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_CONNECT_RETRY = 10$(replication_tls_option)"
  fi
  log "replicating from $primary"
  run_sql "$cnf" 'START REPLICA'
  atomic_write "$(configured_marker)" "source=$primary"$'\n'
}

# True while a backup holds its lock on this server (see backup-take.sh).
backup_holds_lock() {
  [[ $(run_sql "$1" "SELECT IS_USED_LOCK('$BACKUP_LOCK_NAME') IS NOT NULL") == 1 ]]
}

# MySQL replicas refuse writes even from administrators; set at run time, because a
# super_read_only option would also block the server's own initialization.
ensure_super_read_only() {
  local cnf state
  cnf=$(root_cnf)
  state=$(run_sql "$cnf" 'SELECT @@global.super_read_only')
  if [[ $state != 1 ]]; then
    log "setting super_read_only"
    run_sql "$cnf" 'SET GLOBAL super_read_only = ON'
  fi
}

# One pass of the agent on a replica: seed (MySQL: clone), configure replication, read-only.
reconcile_replica() {
  local ordinal=$1
  if [[ ! -f $(seeded_marker) ]]; then
    if [[ $DB_ENGINE != mysql ]]; then
      log "the volume is not seeded: the init container seeds it at the next pod start"
      return 1
    fi
    if clone_completed; then
      atomic_write "$(seeded_marker)" "cloned_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"$'\n'
      log "the server runs on a completed clone: the volume is seeded"
    else
      clone_from_donor "$ordinal" || return 1
      wait_for_server_stop 300 || log "the server still runs after the clone"
      return 0
    fi
  fi
  configure_replication
  if [[ $DB_ENGINE == mysql ]]; then
    ensure_super_read_only
  fi
}
