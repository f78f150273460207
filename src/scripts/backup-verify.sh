#!/bin/bash
# Container `verify` of a physical backup Job (the server's image). Starts a throwaway server on
# the copy that the backup container extracted from the stored artifact and prepared, and records
# every table's row count and checksum: they are exactly the backup's, whatever the source did
# meanwhile. Then removes the copy. Configured only by environment variables: see backup-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"

need_env DB_ENGINE RUN_DIR WORK_DIR

main() {
  local copy="$WORK_DIR/copy" name
  [[ -s $WORK_DIR/backup.env ]] || die "$WORK_DIR/backup.env is missing: the backup container did not finish"
  [[ -d $copy ]] || die "$copy is missing: the backup container did not prepare a copy"
  name=$(env_get "$WORK_DIR/backup.env" NAME)
  trap 'scratch_stop' EXIT
  log "starting a throwaway server on the prepared copy of $name"
  scratch_start "$copy" --skip-grant-tables
  table_checksums "$(scratch_cnf)" >"$WORK_DIR/tables.json.tmp" || die "checksumming the tables of the prepared copy failed"
  mv -f "$WORK_DIR/tables.json.tmp" "$WORK_DIR/tables.json"
  scratch_stop
  rm -rf "$copy"
  log "the prepared copy of $name has $(wc -l <"$WORK_DIR/tables.json") tables; their row counts and checksums go into the manifest"
}

main "$@"
