#!/bin/bash
# Writes one physical copy of this Galera node to stdout, for a backup sidecar that serves it on a
# port with socat (as the replication donors do):
#   socat -U TCP-LISTEN:3307,reuseaddr,fork "EXEC:bash backup-galera-send.sh"
# The copy is a mariadb-backup xbstream (with --galera-info) followed by the end mark. While it
# streams, the node is desynchronized (wsrep_desync), so that its pauses never make the cluster
# wait (flow control), and the backup lock is held. Sends nothing when the node is not a synced
# member of the primary component or another backup is streaming from it.
# The node is always resynchronized: by an exit trap (also on a broken connection); if this
# script is killed outright, by a watcher process; and by `backup-galera-send.sh
# --resync-if-idle`, which the sidecar runs when it starts (a desync left without a backup
# holding the lock is undone).
# Reads: DB_ENGINE (mariadb), DB_SOCKET (the server's socket), DB_CNF (the server's option file,
# for the datadir), SECRETS_DIR (root-password), TMPDIR.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"
need_env DB_ENGINE DB_SOCKET DB_CNF SECRETS_DIR

WORK=''
DESYNCED=0

# Undoes a desync that no backup holds any more. Prints what it did.
resync_if_idle() {
  local cnf=$1 state
  state=$(sql "$cnf" <<<"SELECT CONCAT(@@GLOBAL.wsrep_desync, ' ', IS_FREE_LOCK('$BACKUP_LOCK'))") || return 1
  # wsrep_desync reads ON or 1
  if [[ $state == 'ON 1' || $state == '1 1' ]]; then
    sql "$cnf" <<<'SET GLOBAL wsrep_desync = OFF' || return 1
    log "resynchronized the node: it was desynchronized without a backup holding the lock"
  fi
}

# On any exit: resynchronize through the held session (or a new one), release the lock, clean up.
finish() {
  local status=$?
  if ((DESYNCED)); then
    if ! hold_sql 'SET GLOBAL wsrep_desync = OFF'; then
      sql "$WORK/client.cnf" <<<'SET GLOBAL wsrep_desync = OFF' || log "resynchronizing failed; the next backup or the sidecar's restart does it"
    fi
    log "resynchronized the node"
  fi
  hold_sql "DO RELEASE_LOCK('$BACKUP_LOCK')" 2>/dev/null || true
  hold_close
  [[ -z $WORK ]] || rm -rf "$WORK"
  exit "$status"
}

main() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdk8s-mysql-galera-send.XXXXXX")
  chmod 700 "$WORK"
  local cnf="$WORK/client.cnf" state backup_cnf="$WORK/backup.cnf"
  write_client_cnf "$cnf" root root-password
  if [[ ${1:-} == --resync-if-idle ]]; then
    resync_if_idle "$cnf"
    rm -rf "$WORK"
    return 0
  fi
  trap finish EXIT
  trap 'exit 141' PIPE
  trap 'exit 143' TERM INT HUP
  hold_open "$cnf"
  if ! hold_sql "SELECT GET_LOCK('$BACKUP_LOCK', 0)" || [[ ${HOLD_OUT[0]:-} != 1 ]]; then
    die "refusing to send a copy: another backup is streaming from this node"
  fi
  state=$(sql "$cnf" <<<"SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_STATUS', 'WSREP_LOCAL_STATE')") ||
    die "refusing to send a copy: the server does not answer"
  [[ $state == 'Primary 4' ]] || die "refusing to send a copy: the node is not a synced member of the primary component (status, state: $state)"
  # a watcher that outlives this script when it is killed outright: it resynchronizes once the
  # lock is free (its session ends with this script)
  local parent=$$
  (
    trap '' PIPE TERM INT HUP
    # the held session must end with this script: the watcher keeps none of its pipes
    eval "exec ${HOLD[0]}<&- ${HOLD[1]}>&-"
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    for _ in 1 2 3 4 5; do
      resync_if_idle "$cnf" >/dev/null 2>&1 && break
      sleep 1
    done
    rm -rf "$WORK"
  ) </dev/null >/dev/null 2>&1 &
  hold_sql 'SET GLOBAL wsrep_desync = ON' || die "desynchronizing the node failed"
  DESYNCED=1
  log "desynchronized the node; sending a physical copy"
  (
    umask 077
    cat "$DB_CNF" "$cnf" >"$backup_cnf"
  )
  mkdir "$WORK/backup" "$WORK/end"
  mariadb-backup --defaults-file="$backup_cnf" --backup --stream=xbstream --galera-info --target-dir="$WORK/backup"
  printf 'complete\n' >"$WORK/end/$STREAM_END_MARK"
  (cd "$WORK/end" && mbstream -c "$STREAM_END_MARK")
  log "sent a complete copy"
}

main "$@"
