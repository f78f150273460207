#!/bin/bash
# Container `backup` of a backup Job. Picks a ready source member and takes the backup into the
# target's staging directory (.incomplete/<name>/ on a claim, WORK_DIR/stage/<name>/ for S3),
# where it is never mistaken for a backup:
#   physical: receives the member sidecar's stream, compressed as it arrives, then extracts and
#             prepares the stored artifact into WORK_DIR/copy: a truncated or unpreparable copy
#             fails here (the verify container then checksums the prepared copy);
#   logical:  pauses the member (a replica: its SQL thread stops; a Galera node: desynchronized
#             and read-locked; a primary without replicas: read-locked), records its GTID position
#             and every table's row count and checksum, dumps the same frozen data, checks that
#             the position did not move, and resumes the member.
# Writes WORK_DIR/backup.env (name, source, position, …) and, logical, WORK_DIR/tables.json.
# On failure it removes what it staged. Configured only by environment variables: see backup-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"

need_env DB_ENGINE DB_PORT CLUSTER_NAME TOPOLOGY MEMBERS METHOD COMPRESSION SECRETS_DIR RUN_DIR WORK_DIR TARGET_KIND
[[ ${METHOD:?} != physical ]] || need_env STREAM_PORT

# How the source is paused: '', replica, locked or galera.
PAUSED=''
STAGE=''

# The member's position: MariaDB's GTID position, MySQL's executed GTID set; on Galera the
# cluster position uuid:seqno first (what a node without a binary log has).
position() {
  local cnf=$1
  if [[ $DB_ENGINE == mysql ]]; then
    sql "$cnf" <<<"SELECT REPLACE(@@GLOBAL.gtid_executed, '\n', '')"
  elif [[ $TOPOLOGY == galera ]]; then
    sql "$cnf" <<<"SELECT CONCAT((SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME DESC SEPARATOR ':') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE_UUID', 'WSREP_LAST_COMMITTED')), ' ', @@GLOBAL.gtid_current_pos)"
  else
    sql "$cnf" <<<"SELECT @@GLOBAL.gtid_current_pos"
  fi
}

# Takes the backup lock in a session that stays open for the backup.
hold_lock() {
  local host=$1 cnf=$2
  hold_open "$cnf"
  if ! hold_sql "SELECT GET_LOCK('$BACKUP_LOCK', 0)" || [[ ${HOLD_OUT[0]:-} != 1 ]]; then
    log "$host is busy: another backup holds its backup lock"
    hold_close
    return 1
  fi
}

# Pauses a member so that its data stays still, or fails (printing why) when it is not a
# healthy source.
pause_member() {
  local host=$1 cnf=$2 io sql_thread state
  if [[ $TOPOLOGY == replication ]]; then
    if ! io=$(replica_field "$cnf" Replica_IO_Running Slave_IO_Running); then
      log "$host does not answer"
      return 1
    fi
    if [[ -n $io ]]; then
      sql_thread=$(replica_field "$cnf" Replica_SQL_Running Slave_SQL_Running) || return 1
      if [[ $io != Yes || $sql_thread != Yes ]]; then
        log "$host is not a healthy replica (IO thread: $io, SQL thread: $sql_thread)"
        return 1
      fi
      hold_lock "$host" "$cnf" || return 1
      # with the lock held, the replica's agent leaves the SQL thread stopped
      hold_sql 'STOP REPLICA SQL_THREAD' || { hold_close; return 1; }
      PAUSED=replica
      log "paused the SQL thread of replica $host"
    else
      if [[ $MEMBERS != "$host" ]]; then
        log "$host is not a replica"
        return 1
      fi
      hold_lock "$host" "$cnf" || return 1
      log "$host is the only member: writes wait for the global read lock of this logical backup"
      hold_sql 'FLUSH TABLES WITH READ LOCK' || { hold_close; return 1; }
      PAUSED=locked
    fi
  elif [[ $TOPOLOGY == galera ]]; then
    if ! state=$(sql "$cnf" --connect-timeout=5 <<<"SELECT CONCAT_WS(' ', @@GLOBAL.wsrep_desync, (SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_STATUS', 'WSREP_LOCAL_STATE')), IS_FREE_LOCK('$BACKUP_LOCK'))"); then
      log "$host does not answer"
      return 1
    fi
    # desync, cluster status, local state, lock free
    read -r -a state <<<"$state"
    if [[ (${state[0]} == ON || ${state[0]} == 1) && ${state[3]} == 1 ]]; then
      log "$host is still desynchronized by a backup that ended: resynchronizing it"
      sql "$cnf" <<<'SET GLOBAL wsrep_desync = OFF' || return 1
      state[2]=4
    fi
    if [[ ${state[1]} != Primary || ${state[2]} != 4 ]]; then
      log "$host is not a synced member of the primary component (status ${state[1]}, state ${state[2]})"
      return 1
    fi
    hold_lock "$host" "$cnf" || return 1
    hold_sql 'SET GLOBAL wsrep_desync = ON' || { hold_close; return 1; }
    PAUSED=galera
    hold_sql 'FLUSH TABLES WITH READ LOCK' || return 1
    log "desynchronized and read-locked $host"
  else
    die "TOPOLOGY must be replication or galera, not '$TOPOLOGY'"
  fi
}

resume_member() {
  local ok=0
  case $PAUSED in
    replica) hold_sql 'START REPLICA SQL_THREAD' || ok=1 ;;
    locked) hold_sql 'UNLOCK TABLES' || ok=1 ;;
    galera) { hold_sql 'UNLOCK TABLES' && hold_sql 'SET GLOBAL wsrep_desync = OFF'; } || ok=1 ;;
    *) ;;
  esac
  [[ -z $PAUSED ]] || hold_sql "DO RELEASE_LOCK('$BACKUP_LOCK')" || true
  hold_close
  if ((ok != 0)); then
    log "resuming the source failed; its session ended, which releases its locks (a replica's agent restarts its SQL thread)"
  fi
  PAUSED=''
  return "$ok"
}

take_logical() {
  local name=$1 artifact=$2 host cnf before after source=''
  for host in $MEMBERS; do
    cnf=$(member_cnf "$host")
    pause_member "$host" "$cnf" || continue
    source=$host
    break
  done
  [[ -n $source ]] || die "no member can be backed up now (tried: $MEMBERS)"
  before=$(position "$cnf") || die "cannot read the position of $source"
  SERVER_VERSION=$(sql "$cnf" <<<'SELECT @@version') || die "cannot read the version of $source"
  log "counting and checksumming every table of $source at position '$before'"
  table_checksums "$cnf" >"$WORK_DIR/tables.json" || die "checksumming the tables of $source failed"
  log "dumping $source"
  if ! dump_sql "$cnf" | compress "${COMPRESSION:?}" >"$STAGE/$artifact"; then
    die "dumping $source failed"
  fi
  after=$(position "$cnf") || die "cannot read the position of $source"
  [[ $after == "$before" ]] || die "the position of $source moved during the backup ('$before' → '$after'): its data did not stay still, the backup is discarded"
  resume_member || true
  SOURCE=$source
  GTID=$before
  if [[ $TOPOLOGY == galera ]]; then
    # the GTID position if the node has a binary log, else the cluster position
    GTID=${before#* }
    [[ -n $GTID ]] || GTID=${before%% *}
  fi
}

take_physical() {
  local name=$1 artifact=$2 host source=''
  for host in $MEMBERS; do
    log "receiving a physical copy from $host:$STREAM_PORT"
    # -b 1 MiB: socat moves 8 KiB per read and write by default, which slows the copy down
    if socat -b 1048576 -u -T 900 "TCP:$host:$STREAM_PORT,connect-timeout=10" STDOUT | compress "$COMPRESSION" >"$STAGE/$artifact" &&
      extract_physical "$STAGE/$artifact" "$COMPRESSION" "$WORK_DIR/copy"; then
      source=$host
      break
    fi
    log "no usable copy from $host"
    rm -f "$STAGE/$artifact"
  done
  [[ -n $source ]] || die "no member sent a complete copy (tried: $MEMBERS)"
  GTID=$(copy_gtid "$WORK_DIR/copy") || die "the copy from $source has no binlog info file"
  SERVER_VERSION=$(copy_server_version "$WORK_DIR/copy") || SERVER_VERSION=unknown
  SOURCE=$source
}

# A new backup's name that no backup or leftover in the target has (names have whole seconds).
unique_name() {
  local name entries tries=0
  entries=$(target_entries) || die "cannot list $(target_description)"
  for (( ; ; tries++)); do
    name=$(new_backup_name "$METHOD")
    awk -v n="$name" '$2 == n { found = 1 } END { exit !found }' <<<"$entries" || break
    ((tries < 5)) || die "the target has a backup named $name already"
    sleep 1
  done
  printf '%s' "$name"
}

cleanup() {
  local status=$?
  if [[ -n $PAUSED ]]; then
    resume_member || true
  fi
  if ((status != 0)); then
    [[ -z $STAGE ]] || rm -rf "$STAGE"
    rm -rf "$WORK_DIR/copy" "$WORK_DIR/backup.env" "$WORK_DIR/tables.json"
    log "the backup failed; nothing was kept"
  fi
  exit "$status"
}

main() {
  local name artifact started info
  started=$(now_utc)
  name=$(unique_name)
  artifact=$(artifact_name "$METHOD" "$COMPRESSION")
  rm -rf "$WORK_DIR/copy" "$WORK_DIR/backup.env" "$WORK_DIR/tables.json"
  STAGE=$(target_stage "$name")
  [[ ! -e $STAGE ]] || die "$STAGE exists already"
  trap cleanup EXIT
  trap 'exit 143' TERM INT
  mkdir -p "$STAGE"
  log "backing up $CLUSTER_NAME ($METHOD, $COMPRESSION) to $(target_description) as $name"
  if [[ $METHOD == physical ]]; then
    take_physical "$name" "$artifact"
    : >"$WORK_DIR/tables.json"
  elif [[ $METHOD == logical ]]; then
    take_logical "$name" "$artifact"
  else
    die "METHOD must be physical or logical, not '$METHOD'"
  fi
  info=$(printf '%s\n' "NAME=$name" "CLUSTER=$CLUSTER_NAME" "ENGINE=$DB_ENGINE" "SERVER_VERSION=$SERVER_VERSION" "METHOD=$METHOD" \
    "SOURCE=$SOURCE" "GTID=$GTID" "ARTIFACT=$artifact" "COMPRESSION=$COMPRESSION" "STARTED_AT=$started")
  atomic_write "$WORK_DIR/backup.env" "$info"$'\n'
  log "took $name from $SOURCE at position '$GTID'"
}

main "$@"
