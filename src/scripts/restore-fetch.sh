#!/bin/bash
# Fetches one backup (BACKUP: its name, or latest) from the target into RESTORE_DIR and checks
# it: the artifact's SHA-256 must equal both its .sha256 file and the manifest's; a physical copy
# is extracted (its end mark must be there) and prepared; a dump must end with its end mark.
# Marks RESTORE_DIR/ready when everything passed; fails loudly otherwise.
# Run by the restore and drill Jobs (first container) and, with restoreFrom, by an init container
# of a new cluster's pods (DATA_ROOT set): there it acts only on ordinal 0 with an empty volume.
# Configured only by environment variables: see backup-lib.sh (METHOD, when set, makes latest mean
# the newest backup of that method).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"

need_env DB_ENGINE TARGET_KIND BACKUP RUN_DIR
RESTORE_DIR=${RESTORE_DIR:-${WORK_DIR:?WORK_DIR is not set}/restore}

main() {
  if [[ -n ${DATA_ROOT:-} ]]; then
    if [[ ${HOSTNAME:?HOSTNAME is not set} != *-0 ]]; then
      log "$HOSTNAME is not the first pod: it receives its data from its peers"
      return 0
    fi
    # a replication pod's datadir is DATA_ROOT/data; a Galera node's is the volume itself
    if [[ -f $DATA_ROOT/initialized || -d $DATA_ROOT/data || -d $DATA_ROOT/mysql ]]; then
      log "the volume holds data already: nothing to restore"
      return 0
    fi
    if [[ -f $RESTORE_DIR/ready ]]; then
      log "the backup was fetched already: $(tr '\n' ' ' <"$RESTORE_DIR/ready")"
      return 0
    fi
  fi
  local name manifest artifact compression method engine expected file_sha actual
  name=$(resolve_backup "$BACKUP" "${METHOD:-}")
  log "fetching backup $name from $(target_description)"
  rm -rf "$RESTORE_DIR"
  mkdir -p "$RESTORE_DIR"
  manifest="$RESTORE_DIR/$MANIFEST"
  target_get "$name" "$MANIFEST" "$manifest" || die "cannot read the manifest of $name"
  artifact=$(manifest_get "$manifest" artifact) || die "the manifest of $name names no artifact"
  compression=$(manifest_get "$manifest" compression) || die "the manifest of $name names no compression"
  method=$(manifest_get "$manifest" method) || die "the manifest of $name names no method"
  engine=$(manifest_get "$manifest" engine) || die "the manifest of $name names no engine"
  expected=$(manifest_get "$manifest" sha256) || die "the manifest of $name has no sha256"
  [[ $engine == "$DB_ENGINE" ]] || die "$name is a backup of $engine: it cannot be restored into $DB_ENGINE"
  [[ $artifact =~ ^backup\.(xbstream|sql)(\.zst|\.gz)?$ ]] || die "the manifest of $name names an unexpected artifact '$artifact'"
  target_get "$name" "$artifact.sha256" "$RESTORE_DIR/$artifact.sha256" || die "cannot read the checksum file of $name"
  target_get "$name" "$artifact" "$RESTORE_DIR/$artifact" || die "cannot read the artifact of $name"
  file_sha=$(awk 'NR == 1 { print $1 }' "$RESTORE_DIR/$artifact.sha256")
  actual=$(sha256sum <"$RESTORE_DIR/$artifact" | awk '{ print $1 }')
  if [[ $actual == "$expected" && $actual == "$file_sha" ]]; then
    log "the artifact of $name matches its checksum ($actual)"
  else
    die "BACKUP $name IS CORRUPT: the SHA-256 of $artifact is $actual, its checksum file says $file_sha and its manifest $expected"
  fi
  if [[ $method == physical ]]; then
    extract_physical "$RESTORE_DIR/$artifact" "$compression" "$RESTORE_DIR/data" || die "BACKUP $name CANNOT BE RESTORED: its copy does not extract or prepare"
    local gtid recorded
    gtid=$(copy_gtid "$RESTORE_DIR/data") || gtid=''
    recorded=$(manifest_get "$manifest" gtid) || recorded=''
    [[ $gtid == "$recorded" ]] || die "BACKUP $name IS INCONSISTENT: its copy is at position '$gtid', its manifest says '$recorded'"
    rm -f "$RESTORE_DIR/$artifact"
  else
    local last
    last=$(decompress "$compression" <"$RESTORE_DIR/$artifact" | tail -n 1) || die "BACKUP $name IS CORRUPT: $artifact does not decompress"
    [[ $last == "$DUMP_END_MARK" ]] || die "BACKUP $name IS TRUNCATED: its dump does not end with '$DUMP_END_MARK'"
  fi
  atomic_write "$RESTORE_DIR/ready" "$(printf 'name=%s\nmethod=%s\nfetched_at=%s\n' "$name" "$method" "$(now_utc)")"$'\n'
  log "backup $name is ready to restore ($method)"
}

main "$@"
