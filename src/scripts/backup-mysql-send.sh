#!/bin/bash
# Writes one physical copy of this pod's MySQL server to stdout (run by the backup sidecar for
# each connection): an xtrabackup xbstream (with --slave-info on a replica), then the end mark
# that tells the receiver the copy is complete. Sends nothing when this server is not a healthy
# member, so the receiver tries another one.
# Configured only by environment variables: see replication-lib.sh.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=replication-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/replication-lib.sh"
require_env "${CLUSTER_ENV[@]}" SEED_PORT

WORK=''

main() {
  local reason work cnf password options=()
  if ! reason=$(local_healthy); then
    die "refusing to send a copy: this server is not healthy ($reason)"
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/cdk8s-mysql-send.XXXXXX")
  # a global: the trap runs after main has returned
  WORK=$work
  trap 'rm -rf "$WORK"' EXIT
  # xtrabackup reads the server's options (datadir, …) and its login from one option file
  cnf="$work/xtrabackup.cnf"
  password=$(read_secret root-password)
  (
    umask 077
    {
      cat "${DB_CNF:?DB_CNF is not set}"
      printf '\n[xtrabackup]\nuser=root\npassword=%s\nsocket=%s\n' "$(cnf_quote "$password")" "${DB_SOCKET:?DB_SOCKET is not set}"
    } >"$cnf"
  )
  [[ $(role_of "$(pod_ordinal)") == primary ]] || options+=(--slave-info)
  log "sending a physical copy"
  mkdir "$work/backup" "$work/end"
  xtrabackup --defaults-file="$cnf" --backup --stream=xbstream --target-dir="$work/backup" "${options[@]}"
  printf 'complete\n' >"$work/end/$SEED_TRAILER"
  (cd "$work/end" && xbstream -c "$SEED_TRAILER")
  log "sent a complete copy"
}

main "$@"
