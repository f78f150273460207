#!/bin/bash
# Main container of a restore drill Job (the server's image). Restores the backup that the fetch
# container checked into a throwaway server inside this pod (physical: the prepared copy;
# logical: a new datadir loaded with the dump), then compares every table's row count and
# CHECKSUM TABLE with the manifest. Exits non-zero with RESTORE DRILL FAILED and the differences
# on any mismatch. Configured only by environment variables: see backup-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"

need_env DB_ENGINE RUN_DIR WORK_DIR
RESTORE_DIR=${RESTORE_DIR:-$WORK_DIR/restore}

fail() {
  log "RESTORE DRILL FAILED: $*"
  exit 1
}

main() {
  local manifest="$RESTORE_DIR/$MANIFEST" name method expected actual
  [[ -f $RESTORE_DIR/ready ]] || fail "no checked backup in $RESTORE_DIR: the fetch container did not finish"
  name=$(manifest_get "$manifest" name)
  method=$(manifest_get "$manifest" method)
  trap 'scratch_stop' EXIT
  if [[ $method == physical ]]; then
    log "starting a throwaway server on the prepared copy of $name"
    scratch_start "$RESTORE_DIR/data" --skip-grant-tables
  else
    local artifact compression
    artifact=$(manifest_get "$manifest" artifact)
    compression=$(manifest_get "$manifest" compression)
    log "loading the dump of $name into a throwaway server"
    scratch_init "$WORK_DIR/scratch"
    scratch_start "$WORK_DIR/scratch"
    if ! { printf 'SET SESSION sql_log_bin = 0;\n'; decompress "$compression" <"$RESTORE_DIR/$artifact"; } | scratch_session; then
      fail "the dump of $name does not load"
    fi
  fi
  expected=$(manifest_tables "$manifest")
  actual=$(table_checksums "$(scratch_cnf)") || fail "the restored tables of $name cannot be checksummed"
  if [[ $actual != "$expected" ]]; then
    log "differences (< manifest, > restored):"
    diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") >&2 || true
    fail "the restored tables of $name differ from its manifest"
  fi
  log "restore drill passed: $name restores, and its $(grep -c . <<<"$expected" || true) tables match the manifest's row counts and checksums"
}

main "$@"
