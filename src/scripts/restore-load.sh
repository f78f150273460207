#!/bin/bash
# Main container of a restore Job (the server's image): restores the backup that the fetch
# container checked into the running cluster, through WRITE_HOST (so replicas and Galera peers
# follow): drops every user database, loads the backup (a dump; a physical copy is dumped from a
# throwaway server in this pod) with its user accounts (root and the cluster's own accounts stay
# as they are), then checks every table against the manifest.
# Galera: WRITE_HOST is the client Service, so each of these sessions may reach another node, and
# a node applies the write sets of the others only after they committed. Every session therefore
# reads causally (wsrep_sync_wait): it sees every write the cluster committed before it reads, such
# as the load of an earlier session on another node.
# Stop the applications first: writes during the restore are lost or break the check.
# Configured only by environment variables: see backup-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"

need_env DB_ENGINE DB_PORT TOPOLOGY WRITE_HOST RUN_DIR WORK_DIR SECRETS_DIR
RESTORE_DIR=${RESTORE_DIR:-$WORK_DIR/restore}

# Client options of every session with WRITE_HOST.
SESSION=()
if [[ $TOPOLOGY == galera ]]; then
  SESSION=(--init-command='SET SESSION wsrep_sync_wait = 1')
fi

# The backup as SQL: the dump, or a dump of the throwaway server on the prepared copy.
backup_sql() {
  local manifest=$1 method=$2
  if [[ $method == physical ]]; then
    dump_sql "$(scratch_cnf)"
  else
    decompress "$(manifest_get "$manifest" compression)" <"$RESTORE_DIR/$(manifest_get "$manifest" artifact)"
  fi
}

main() {
  local manifest="$RESTORE_DIR/$MANIFEST" name method cnf read_only dbs db drops='' expected actual
  [[ -f $RESTORE_DIR/ready ]] || die "no checked backup in $RESTORE_DIR: the fetch container did not finish"
  name=$(manifest_get "$manifest" name)
  method=$(manifest_get "$manifest" method)
  cnf=$(member_cnf "$WRITE_HOST")
  read_only=$(sql "$cnf" "${SESSION[@]}" <<<'SELECT @@GLOBAL.read_only') || die "$WRITE_HOST does not answer"
  [[ $read_only == 0 ]] || die "$WRITE_HOST is read-only: a restore needs the writable member"
  dbs=$(sql "$cnf" "${SESSION[@]}" --raw <<<"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ($SYSTEM_SCHEMAS) ORDER BY 1") || die "cannot list the databases of $WRITE_HOST"
  while IFS= read -r db; do
    [[ -n $db ]] || continue
    drops+="DROP DATABASE \`${db//\`/\`\`}\`;"$'\n'
  done <<<"$dbs"
  trap 'scratch_stop' EXIT
  if [[ $method == physical ]]; then
    log "starting a throwaway server on the prepared copy of $name, to dump it"
    # without grant tables the event scheduler is disabled and the events cannot be dumped: set a
    # root password first, then serve the copy normally
    scratch_start "$RESTORE_DIR/data" --skip-grant-tables
    printf '' | scratch_session >/dev/null || die "cannot open the prepared copy's accounts"
    scratch_stop
    scratch_start "$RESTORE_DIR/data"
  fi
  log "restoring $name into $WRITE_HOST: replacing the databases $(tr '\n' ' ' <<<"$dbs")"
  if ! { printf '%s' "$drops" && backup_sql "$manifest" "$method"; } | sql "$cnf" "${SESSION[@]}"; then
    die "RESTORE OF $name FAILED while loading: the databases of $WRITE_HOST are incomplete; run the restore again"
  fi
  expected=$(manifest_tables "$manifest")
  actual=$(table_checksums "$cnf" "${SESSION[@]}") || die "cannot checksum the restored tables"
  if [[ $actual != "$expected" ]]; then
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") >&2 || true
    die "RESTORE OF $name DIFFERS from its manifest (above: < manifest, > restored): were there writes during the restore?"
  fi
  log "restored $name into $WRITE_HOST: $(grep -c . <<<"$expected" || true) tables match the manifest"
}

main "$@"
