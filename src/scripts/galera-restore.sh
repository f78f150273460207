#!/bin/bash
# Init container of a GaleraCluster pod with restoreFrom, after restore-fetch.sh: builds the data
# directory of ordinal 0 from the backup that restore-fetch.sh fetched and checked into
# RESTORE_DIR (on the volume), so that galera-start.sh bootstraps the new cluster from it and the
# other nodes join by SST. It does nothing on other ordinals, on a volume that holds data, or
# once the restore is done (the marker file cdk8s-mysql-restored in the datadir).
#
# It restores only while every peer answers and none holds data or runs a server: a new cluster.
# (A node whose volume was lost in a running cluster receives its data from its peers instead.)
# The copy is prepared in RESTORE_DIR/data (physical), or a new data directory there is loaded
# with the dump (logical); a throwaway server without network and without Galera checks every
# table against the manifest and gives root and the SST account the Secret's passwords
# (physical). A copy of a Galera node keeps its position: its grastate.dat says the uuid:seqno of
# the backup's galera info with safe_to_bootstrap: 1, so the new cluster continues that history.
# A copy without one (e.g. of a replication cluster) or a dump starts a new history. Only then is
# the copy moved into the datadir, entry by entry, each a rename on the volume; the file
# RESTORE_DIR/installing says the copy is complete, so that a restart after a crash at any line
# finishes the move (and never starts over on a half-moved datadir).
#
# Environment: DB_ENGINE, DATADIR, STATE_DIR, POD_NAME, PEERS, STATUS_PORT (galera-lib.sh),
# SECRETS_DIR, SST_USER, RESTORE_DIR, RUN_DIR, TMPDIR.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "$0")" && pwd)
source "$SCRIPTS_DIR/backup-lib.sh"
source "$SCRIPTS_DIR/galera-lib.sh"

need_env DB_ENGINE DATADIR STATE_DIR POD_NAME PEERS STATUS_PORT SECRETS_DIR SST_USER RESTORE_DIR RUN_DIR

readonly MARKER_NAME=cdk8s-mysql-restored
STAGE="$RESTORE_DIR/data"

# Waits until every peer answers. Succeeds when none holds data or runs a server (a new
# cluster); fails when one does.
peers_are_new() {
  local answers said_at=-30
  while :; do
    answers=$(poll_all "waiting $ZERO_UUID -1 0")
    if awk -v zero="$ZERO_UUID" '$2 == "primary" || $2 == "non-primary" || ($2 == "waiting" && $3 != zero) { found = 1 } END { exit !found }' <<<"$answers"; then
      log "a peer holds data or runs a server: this node receives its data from the cluster, not from the backup. Answers:"
      printf '  %s\n' "${answers//$'\n'/$'\n'  }" >&2
      return 1
    fi
    if ! grep -qvE '^[0-9]+ waiting ' <<<"$answers"; then
      return 0
    fi
    if ((SECONDS - said_at >= 30)); then
      log "waiting for every peer to answer before restoring (a peer that does not may hold data): $(grep -vE '^[0-9]+ waiting ' <<<"$answers" | tr '\n' ' ')"
      said_at=$SECONDS
    fi
    sleep 2
  done
}

# The position of a copy of a Galera node: uuid:seqno of its galera info, or nothing.
galera_position() {
  local name position
  for name in mariadb_backup_galera_info xtrabackup_galera_info; do
    if [[ -s $STAGE/$name ]]; then
      position=$(awk 'NR == 1 { print $1 }' "$STAGE/$name")
      position=${position%%,*}
      [[ $position =~ ^[0-9a-f-]{36}:[0-9]+$ ]] || die "the copy's $name holds no Galera position ('$position')"
      [[ ${position%%:*} != "$ZERO_UUID" ]] || die "the copy's $name holds the zero UUID: it is not a copy of a cluster member"
      printf '%s' "$position"
      return 0
    fi
  done
}

# A physical copy restores only into the release series it was taken with.
check_series() {
  local manifest=$1 backup_version ours
  backup_version=$(manifest_get "$manifest" serverVersion) || backup_version=unknown
  ours=$(mariadbd --version | sed -n 's/.* Ver \([0-9]*\.[0-9]*\)\..*/\1/p')
  [[ $backup_version == unknown || -z $ours || $backup_version == "$ours".* ]] ||
    die "the backup is a physical copy of MariaDB $backup_version, this image runs MariaDB $ours: a physical copy restores only into its own release series. Use the image of the backup's series, or a logical backup"
}

# root (local and from other pods: the backup Jobs) and the SST account, with the Secret's passwords.
accounts_sql() {
  local root sst
  root=$(sql_quote "$(read_secret root-password)")
  sst=$(sql_quote "$(read_secret sst-password)")
  printf '%s\n' \
    "CREATE USER IF NOT EXISTS 'root'@'localhost' IDENTIFIED BY $root;" \
    "ALTER USER 'root'@'localhost' IDENTIFIED BY $root;" \
    "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $root;" \
    "ALTER USER 'root'@'%' IDENTIFIED BY $root;" \
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;" \
    "CREATE USER IF NOT EXISTS $(sql_quote "$SST_USER")@'localhost' IDENTIFIED BY $sst;" \
    "ALTER USER $(sql_quote "$SST_USER")@'localhost' IDENTIFIED BY $sst;" \
    "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICA MONITOR ON *.* TO $(sql_quote "$SST_USER")@'localhost';"
}

# Builds the complete copy in STAGE and checks it; prints its Galera position (or nothing).
build_copy() {
  local manifest="$RESTORE_DIR/$MANIFEST" name method position='' matched
  name=$(manifest_get "$manifest" name)
  method=$(manifest_get "$manifest" method)
  log "restoring backup $name ($method) as the data directory of the new cluster"
  SCRATCH_DEFAULTS_FILE=''
  trap 'scratch_stop' EXIT
  if [[ $method == physical ]]; then
    [[ -d $STAGE ]] || die "the fetched backup has no prepared copy in $STAGE"
    check_series "$manifest"
    position=$(galera_position)
    rm -f "$STAGE/grastate.dat" "$STAGE/gvwstate.dat" "$STAGE/galera.cache"
    # the copy's passwords are unknown: the first session sets the throwaway server's
    scratch_start "$STAGE" --skip-grant-tables
    printf '' | scratch_session >/dev/null || die "cannot reach the accounts of the restored copy"
    scratch_stop
    scratch_start "$STAGE"
  else
    rm -rf "$STAGE"
    scratch_init "$STAGE"
    scratch_start "$STAGE"
    printf '' | scratch_session >/dev/null || die "the throwaway server does not answer"
    log "loading the dump"
    decompress "$(manifest_get "$manifest" compression)" <"$RESTORE_DIR/$(manifest_get "$manifest" artifact)" | sql "$(scratch_cnf)" ||
      die "loading the dump of $name failed"
  fi
  matched=$(expect_manifest_tables "$manifest" "$(scratch_cnf)" "$name")
  log "$matched tables match the manifest of $name"
  if [[ $method == physical ]]; then
    # galera-start.sh does not create the accounts of a datadir with a Galera position
    accounts_sql | sql "$(scratch_cnf)" || die "setting the accounts of the restored copy failed"
  fi
  scratch_stop
  trap - EXIT
  if [[ -n $position ]]; then
    atomic_write "$STAGE/grastate.dat" "$(printf '# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %s\nsafe_to_bootstrap: 1\n' "${position%%:*}" "${position#*:}")"$'\n'
  fi
  atomic_write "$RESTORE_DIR/position" "$position"
}

# Moves the complete copy into the datadir (the volume's root), mysql/ last, then marks it.
install_copy() {
  local entry base position name
  name=$(manifest_get "$RESTORE_DIR/$MANIFEST" name)
  position=$(cat "$RESTORE_DIR/position" 2>/dev/null || true)
  shopt -s dotglob nullglob
  for entry in "$STAGE"/*; do
    base=$(basename "$entry")
    [[ $base == mysql ]] || mv -T "$entry" "$DATADIR/$base"
  done
  [[ ! -e $STAGE/mysql ]] || mv -T "$STAGE/mysql" "$DATADIR/mysql"
  shopt -u dotglob nullglob
  sync -f "$DATADIR"
  atomic_write "$DATADIR/$MARKER_NAME" "$(printf 'restored_from=%s\nposition=%s\nrestored_at=%s\n' "$name" "${position:-new}" "$(now_utc)")"$'\n'
  rm -rf "$RESTORE_DIR"
  if [[ -n $position ]]; then
    log "restored $name: this node bootstraps the cluster at the backup's position $position"
  else
    log "restored $name: this node bootstraps a new cluster from it"
  fi
}

main() {
  local ordinal
  ordinal=$(my_ordinal)
  if ((ordinal != 0)); then
    log "$POD_NAME is not the first node: it receives its data from the cluster (SST)"
    return 0
  fi
  mkdir -p "$STATE_DIR"
  if [[ -f $DATADIR/$MARKER_NAME ]]; then
    log "the data directory was restored already ($(tr '\n' ' ' <"$DATADIR/$MARKER_NAME"))"
    rm -rf "$RESTORE_DIR"
    return 0
  fi
  if [[ -f $RESTORE_DIR/installing ]]; then
    log "finishing the move of a complete restored copy into the data directory"
    install_copy
    return 0
  fi
  if [[ -d $DATADIR/mysql ]]; then
    log "the volume holds data already: nothing to restore"
    rm -rf "$RESTORE_DIR"
    return 0
  fi
  [[ -f $RESTORE_DIR/ready ]] || die "restoreFrom is set but no checked backup is in $RESTORE_DIR: the restore init container fetches it (see its log)"
  if ! peers_are_new; then
    rm -rf "$RESTORE_DIR"
    return 0
  fi
  build_copy
  atomic_write "$RESTORE_DIR/installing" "$(now_utc)"$'\n'
  install_copy
}

main "$@"
