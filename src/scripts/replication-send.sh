#!/bin/bash
# Writes one physical copy of this pod's server to stdout (run by the donor sidecar for each
# connection): a mariadb-backup xbstream, then an end mark that tells the receiver the copy is
# complete. Sends nothing when this server is not a healthy member, so the receiver tries another donor.
# Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}" SEED_PORT

# The copy's work directory; global, because the EXIT trap runs after main's locals are gone.
WORK=""
trap '[[ -z $WORK ]] || rm -rf "$WORK"' EXIT

main() {
  local reason work
  if ! reason=$(local_healthy); then
    die "refusing to send a copy: this server is not healthy ($reason)"
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/cdk8s-mysql-send.XXXXXX")
  WORK=$work
  log "sending a physical copy"
  mkdir "$work/backup" "$work/end"
  # --parallel: copy 4 data files at a time, so that reading one (O_DIRECT) overlaps sending another
  mariadb-backup --defaults-file="$(backup_cnf)" --backup --stream=xbstream --parallel=4 --slave-info --target-dir="$work/backup"
  printf 'complete\n' >"$work/end/$SEED_TRAILER"
  (cd "$work/end" && mbstream -c "$SEED_TRAILER")
  log "sent a complete copy"
}

main "$@"
