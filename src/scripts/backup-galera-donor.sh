#!/bin/bash
# Backup sidecar of a Galera node: first undoes a desync that no backup holds (one left by a
# sender that was killed with its container), then serves a physical copy of this node to every
# connection on STREAM_PORT with backup-galera-send.sh (desynchronized while it streams). socat -U:
# data flows only from the sender to the client; -b 1 MiB as the replication donors (bench/seed.ts).
# Reads STREAM_PORT and what backup-galera-send.sh reads (DB_ENGINE, DB_SOCKET, DB_CNF, SECRETS_DIR, TMPDIR).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup-lib.sh"
need_env STREAM_PORT DB_ENGINE DB_SOCKET DB_CNF SECRETS_DIR

sender="$(dirname "${BASH_SOURCE[0]}")/backup-galera-send.sh"
# the server may still be starting: retry until it answers
until bash "$sender" --resync-if-idle; do
  log "the server does not answer yet; retrying in 5s"
  sleep 5
done
log "serving physical copies on port $STREAM_PORT"
exec socat -b 1048576 -U "TCP-LISTEN:$STREAM_PORT,reuseaddr,fork" "EXEC:bash $sender"
