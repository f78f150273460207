#!/bin/bash
# Main container of a backup Job. Writes the artifact's checksum (<artifact>.sha256) and the
# manifest beside the staged artifact, makes the backup visible in one step (a rename on a claim;
# S3: upload under .incomplete/, then a move into place, manifest last), and only then prunes:
# the complete backups of this method that neither KEEP_LAST nor KEEP_SECONDS keeps (never the
# newest) and the leftovers of runs older than STALE_SECONDS.
# Configured only by environment variables: see backup-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"

need_env DB_ENGINE METHOD RUN_DIR WORK_DIR TARGET_KIND STALE_SECONDS

STAGE=''
COMMITTED=0

cleanup() {
  local status=$?
  if ((status != 0 && COMMITTED == 0)); then
    [[ -z $STAGE ]] || rm -rf "$STAGE"
    log "the backup failed; nothing was kept"
  fi
  exit "$status"
}

main() {
  local info="$WORK_DIR/backup.env" name artifact sha size full
  [[ -s $info ]] || die "$info is missing: the backup container did not finish"
  [[ -f $WORK_DIR/tables.json ]] || die "$WORK_DIR/tables.json is missing: the table checksums were not taken"
  name=$(env_get "$info" NAME)
  artifact=$(env_get "$info" ARTIFACT)
  STAGE=$(target_stage "$name")
  trap cleanup EXIT
  trap 'exit 143' TERM INT
  [[ -s $STAGE/$artifact ]] || die "$STAGE/$artifact is missing or empty"
  sha=$(sha256sum <"$STAGE/$artifact" | awk '{ print $1 }')
  printf '%s  %s\n' "$sha" "$artifact" >"$STAGE/$artifact.sha256"
  size=$(stat -c %s "$STAGE/$artifact")
  full="$WORK_DIR/backup-full.env"
  { cat "$info"; printf 'SIZE=%s\nSHA256=%s\nFINISHED_AT=%s\n' "$size" "$sha" "$(now_utc)"; } >"$full"
  write_manifest "$full" "$WORK_DIR/tables.json" "$STAGE/$MANIFEST.tmp"
  mv -f "$STAGE/$MANIFEST.tmp" "$STAGE/$MANIFEST"
  target_commit "$name"
  COMMITTED=1
  log "backup $name is complete in $(target_description): $artifact, $size bytes, sha256 $sha, from $(env_get "$info" SOURCE) at position '$(env_get "$info" GTID)', $(wc -l <"$WORK_DIR/tables.json") tables"
  prune "${METHOD:?}" >/dev/null
  rm -rf "$WORK_DIR/backup.env" "$full" "$WORK_DIR/tables.json"
}

main "$@"
